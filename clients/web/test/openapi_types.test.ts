// The server's /openapi.json, turned into TypeScript by openapi-typescript (what a client
// author would run), compiles under `tsc --strict`, together with code that uses the generated
// types: a chat completion request body, a project list response. The operations are keyed by
// operationId, so every operation must have one, unique.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import { artifacts, TestServer, webRoot, withLog } from './harness.js';

let server: TestServer;
let dir: string;

before(async () => {
  server = await TestServer.start();
  dir = mkdtempSync(join(tmpdir(), 'switchyard-openapi-ts-'));
});

after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

/** Code a client would write against the generated types; `@ts-expect-error` lines prove they are not `any`. */
const USAGE = `import type { components, operations, paths } from './api';

type ChatRequest = operations['createChatCompletion']['requestBody']['content']['application/json'];
type ProjectList = operations['listProjects']['responses'][200]['content']['application/json'];
type Project = components['schemas']['Project'];

export const request: ChatRequest = {
  model: 'echo',
  messages: [{ role: 'user', content: 'Say hi' }],
  stream: false,
  temperature: 0.2,
  max_completion_tokens: null,
};

const project: Project = {
  id: '00000000-0000-0000-0000-000000000000',
  owner_id: '00000000-0000-0000-0000-000000000001',
  name: 'switchyard',
  description: 'the realtime backend',
  settings: { theme: 'dark' },
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-02T00:00:00Z',
};
export const list: ProjectList = { data: [project] };
export const names: string[] = list.data.map((p) => p.name);

// The path table points at the same operations.
export type ChatPost = paths['/v1/chat/completions']['post'];
export const sameOperation: operations['createChatCompletion'] extends ChatPost ? true : false = true;

// @ts-expect-error model is required
export const noModel: ChatRequest = { messages: [] };
// @ts-expect-error a project's name is a string
export const badProject: ProjectList = { data: [{ ...project, name: 42 }] };
`;

test('openapi-typescript types of /openapi.json compile under tsc --strict', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const r = await fetch(`${server.url}/openapi.json`);
    assert.equal(r.status, 200, '/openapi.json is served');
    const doc = (await r.json()) as { paths: Record<string, Record<string, { operationId?: string }>> };

    // Free-form objects (`{"type":"object"}`: chat messages, project settings) are
    // `Record<string, never>` by default, which no real message fits; JSON Schema lets them hold
    // anything, so `unknown` it is.
    const source = astToString(await openapiTS(JSON.stringify(doc), { emptyObjectsUnknown: true }));
    const apiFile = join(dir, 'api.ts');
    writeFileSync(apiFile, source);
    // Kept where a failure can be looked at.
    writeFileSync(join(artifacts, 'openapi-types.ts'), source);

    assert.ok(source.trim().length > 0, 'openapi-typescript generated something');
    assert.match(source, /^export interface paths \{$/m, 'the generated file has `paths`');
    assert.match(source, /^export interface components \{$/m, 'the generated file has `components`');
    const ops = /^export interface operations \{$([\s\S]*?)^\}$/m.exec(source)?.[1];
    assert.ok(ops, 'the generated file has `operations`');
    const ids = Object.values(doc.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
    for (const id of ['createChatCompletion', 'listModels', 'listProjects']) assert.ok(ids.includes(id), `the document has operationId ${id}`);
    for (const id of ids) {
      assert.ok(id, 'every operation has an operationId');
      assert.ok(ops.includes(`\n    ${id}: {`), `\`operations\` has an entry for ${id}`);
    }

    const usageFile = join(dir, 'usage.ts');
    writeFileSync(usageFile, USAGE);
    const tsc = join(webRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', apiFile, usageFile];
    const run = spawnSync(process.execPath, [tsc, ...args], { cwd: dir, encoding: 'utf8' });
    assert.equal(run.status, 0, `tsc ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
  }),
);
