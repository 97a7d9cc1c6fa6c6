/// <reference types="node" />
/**
 * Node-only additions: a queue store in a JSON file. Everything else is in the main entry.
 */

export { JsonFileQueueStore } from './storage/json-file.js';
export * from './index.js';
