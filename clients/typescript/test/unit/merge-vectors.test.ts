// The replica's reducer against the shared merge vectors (the Rust merge replays the same file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { applyMutation, emptyDoc, liveRegisters, transcript, type Doc } from '../../src/merge.js';
import type { Change, Json } from '../../src/protocol.js';

interface ExpectedMessage {
  id: string;
  role: string;
  content: string;
  position: number;
  seq: number;
  streaming: boolean;
  metadata?: Json;
  author_client?: string;
}
interface Case {
  name: string;
  any_order?: boolean;
  changes: Change[];
  expect: {
    fields: Record<string, Json>;
    context: Record<string, Json>;
    tags: string[];
    transcript: ExpectedMessage[];
    deleted: string[];
    refused: number[];
    session_deleted?: boolean;
  };
}

const file = new URL('../../../test/fixtures/merge-vectors.json', import.meta.url);
const { cases } = JSON.parse(readFileSync(file, 'utf8')) as { cases: Case[] };

function replay(changes: Change[]): { doc: Doc; refused: number[] } {
  const doc = emptyDoc();
  const refused: number[] = [];
  for (const c of changes) {
    const r = applyMutation(doc, c, c.version, 'strict');
    if (!r.ok) refused.push(c.version);
  }
  return { doc, refused };
}

test('the vectors file has cases', () => {
  assert.ok(cases.length >= 15, `only ${cases.length} cases`);
});

for (const c of cases) {
  test(`merge vector: ${c.name}`, () => {
    const { doc, refused } = replay(c.changes);
    const live = liveRegisters(doc);
    assert.deepEqual(live.fields, c.expect.fields, 'fields');
    assert.deepEqual(live.context, c.expect.context, 'context');
    assert.deepEqual(live.tags, c.expect.tags, 'tags');
    assert.deepEqual(refused, c.expect.refused, 'refused versions');
    const got = transcript(doc).map((m, i) => {
      const want = c.expect.transcript[i];
      const out: ExpectedMessage = { id: m.id, role: m.role, content: m.content, position: m.position, seq: m.seq, streaming: m.streaming };
      if (want && 'metadata' in want) out.metadata = m.metadata;
      if (want && 'author_client' in want) out.author_client = m.authorClient ?? '';
      return out;
    });
    assert.deepEqual(got, c.expect.transcript, 'transcript');
    const deleted = [...doc.messages.values()].filter((m) => m.deleted).map((m) => m.id).sort();
    assert.deepEqual(deleted, c.expect.deleted, 'deleted messages');
    assert.equal(doc.sessionDeleted, c.expect.session_deleted === true, 'session deleted');
    if (c.any_order) {
      const reversed = replay([...c.changes].reverse()).doc;
      assert.deepEqual(liveRegisters(reversed), live, 'registers do not depend on arrival order');
    }
  });
}
