/**
 * Client-side tools: functions the app runs when the model calls them. Declared in
 * `chat.send.tools` (name, description, JSON Schema parameters); when the turn emits a
 * `tool.call` with `side: "client"`, the handler runs and its answer goes back as `tool.result`
 * (`result`, or `error` with the message when the handler throws).
 */

import { SwitchyardError } from './errors.js';
import type { Json, JsonObject, ToolCall, ToolDeclaration } from './protocol.js';

export interface ToolContext {
  call: ToolCall;
  /** Aborted when the turn ends (cancelled, timed out) before the handler finished. */
  signal: AbortSignal;
}

export interface ClientTool {
  description?: string;
  /** JSON Schema of the arguments, `"type": "object"`. */
  parameters?: JsonObject;
  /** Returns the result (any JSON; a string reaches the model as is). Throw to report a failure. */
  run(args: JsonObject, ctx: ToolContext): Json | Promise<Json>;
}

export type ToolSet = Record<string, ClientTool>;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The `tools` array of `chat.send`; throws for a name the server would refuse. */
export function declareTools(tools: ToolSet): ToolDeclaration[] {
  return Object.entries(tools).map(([name, t]) => {
    if (!NAME.test(name) || name.includes('__')) {
      throw new SwitchyardError('invalid_request', `tool name ${JSON.stringify(name)} must match [A-Za-z0-9_-]{1,64} without "__"`);
    }
    const d: ToolDeclaration = { name };
    if (t.description !== undefined) d.description = t.description;
    if (t.parameters !== undefined) d.parameters = t.parameters;
    return d;
  });
}

export type ToolAnswer = { result: Json } | { error: string };

/** Runs the handler for `call`; never throws (a failure becomes an `error` answer). */
export async function runTool(tools: ToolSet, call: ToolCall, signal: AbortSignal): Promise<ToolAnswer> {
  const name = typeof call.tool === 'string' ? call.tool : call.name;
  const tool = Object.prototype.hasOwnProperty.call(tools, name) ? tools[name] : undefined;
  if (!tool) return { error: `this client has no tool named ${JSON.stringify(name)}` };
  const args = call.arguments !== null && typeof call.arguments === 'object' && !Array.isArray(call.arguments) ? call.arguments : {};
  try {
    const result = await tool.run(args, { call, signal });
    return { result: result === undefined ? null : result };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
