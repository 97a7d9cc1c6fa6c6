"""Writes test/fixtures/merge-vectors.json. The expected states were worked out by hand from
src/sync/merge.rs (they are not produced by either implementation), so replaying the file
through the Rust merge and through the SDK's reducer checks both against the same rules.
Run: python3 scripts/gen-merge-vectors.py"""
import json, os

def ch(version, client, mid, hlc, *ops):
    return {"version": version, "client_id": client, "mutation_id": mid, "hlc": hlc, "ops": list(ops)}

def title(v): return {"op": "set_field", "field": "title", "value": v}
def setf(f, v): return {"op": "set_field", "field": f, "value": v}
def setc(k, v): return {"op": "set_context", "key": k, "value": v}
def delc(k): return {"op": "delete_context", "key": k}
def add(t): return {"op": "add_tag", "tag": t}
def rm(t): return {"op": "remove_tag", "tag": t}
def app(mid, content, role="user", metadata=None):
    o = {"op": "append_message", "message_id": mid, "role": role, "content": content}
    if metadata is not None: o["metadata"] = metadata
    return o
def edit(mid, content): return {"op": "edit_message", "message_id": mid, "content": content}
def dele(mid): return {"op": "delete_message", "message_id": mid}
ABSENT = object()
def msg(id, content, position, seq, role="user", streaming=False, metadata=ABSENT, author=None):
    m = {"id": id, "role": role, "content": content, "position": position, "seq": seq, "streaming": streaming}
    if metadata is not ABSENT: m["metadata"] = metadata
    if author is not None: m["author_client"] = author
    return m

def expect(fields=None, context=None, tags=None, transcript=None, deleted=None, refused=None, session_deleted=False):
    e = {"fields": fields or {}, "context": context or {}, "tags": tags or [], "transcript": transcript or [],
         "deleted": deleted or [], "refused": refused or []}
    if session_deleted: e["session_deleted"] = True
    return e

cases = [
  {"name": "concurrent set_field: the larger hlc wins, whatever the arrival order",
   "any_order": True,
   "changes": [ch(1, "a", 1, "20:0", title("from a")), ch(2, "b", 1, "10:0", title("from b"))],
   "expect": expect(fields={"title": "from a"})},
  {"name": "equal hlc: the tie is broken by client_id (byte order, larger wins)",
   "any_order": True,
   "changes": [ch(1, "b", 1, "10:0", title("B")), ch(2, "a", 1, "10:0", title("A")), ch(3, "B", 1, "10:0", title("upper B"))],
   "expect": expect(fields={"title": "B"})},
  {"name": "the hlc counter orders writes within one millisecond, before client_id",
   "any_order": True,
   "changes": [ch(1, "z", 1, "10:0", setf("pinned", True)), ch(2, "a", 1, "10:1", setf("pinned", False))],
   "expect": expect(fields={"pinned": False})},
  {"name": "hlc milliseconds compare as numbers, not strings",
   "any_order": True,
   "changes": [ch(1, "a", 1, "9:0", setf("model", "nine")), ch(2, "a", 2, "10:0", setf("model", "ten"))],
   "expect": expect(fields={"model": "ten"})},
  {"name": "a delete tombstone beats an older set that arrives later",
   "any_order": True,
   "changes": [ch(1, "a", 1, "10:0", setc("k", 1)), ch(2, "b", 1, "20:0", delc("k")), ch(3, "a", 2, "15:0", setc("k", 2))],
   "expect": expect()},
  {"name": "a newer set beats the tombstone",
   "any_order": True,
   "changes": [ch(1, "a", 1, "10:0", setc("k", {"url": "x"})), ch(2, "b", 1, "20:0", delc("k")), ch(3, "a", 2, "30:0", setc("k", [1, 2]))],
   "expect": expect(context={"k": [1, 2]})},
  {"name": "add/remove tag races: the largest stamp per tag decides",
   "any_order": True,
   "changes": [ch(1, "a", 1, "10:0", add("x"), add("beta")), ch(2, "b", 1, "20:0", rm("x")), ch(3, "c", 1, "15:0", add("x")),
               ch(4, "b", 2, "5:0", rm("y")), ch(5, "c", 2, "6:0", add("y"), add("Alpha"))],
   "expect": expect(tags=["Alpha", "beta", "y"])},
  {"name": "one key written twice in one mutation: the first op wins (equal stamps do not beat)",
   "changes": [ch(1, "a", 1, "10:0", title("first"), title("second"), add("t"), rm("t"), delc("gone"), setc("gone", 1))],
   "expect": expect(fields={"title": "first"}, tags=["t"])},
  {"name": "field values are any JSON the field allows, including null",
   "changes": [ch(1, "a", 1, "10:0", setf("project_id", "0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d"), setf("system_prompt", "be brief")),
               ch(2, "a", 2, "11:0", setf("project_id", None))],
   "expect": expect(fields={"project_id": None, "system_prompt": "be brief"})},
  {"name": "message edits are last-writer-wins by clock, not by arrival",
   "changes": [ch(1, "a", 1, "10:0", app("m1", "hi")), ch(2, "b", 1, "30:0", edit("m1", "b-edit")), ch(3, "a", 2, "20:0", edit("m1", "a-edit"))],
   "expect": expect(transcript=[msg("m1", "b-edit", 1, 0, author="a")])},
  {"name": "an edit older than the append's own stamp loses",
   "changes": [ch(1, "a", 1, "50:0", app("m1", "original")), ch(2, "b", 1, "40:0", edit("m1", "stale"))],
   "expect": expect(transcript=[msg("m1", "original", 1, 0)])},
  {"name": "an edit in the same mutation as its append does not win (equal stamps)",
   "changes": [ch(1, "a", 1, "10:0", app("m", "orig"), edit("m", "changed"))],
   "expect": expect(transcript=[msg("m", "orig", 1, 0)])},
  {"name": "a delete is final and beats any edit, even a later one",
   "changes": [ch(1, "a", 1, "10:0", app("m", "hi")), ch(2, "b", 1, "20:0", dele("m")), ch(3, "a", 2, "50:0", edit("m", "late")),
               ch(4, "c", 1, "60:0", dele("m"))],
   "expect": expect(deleted=["m"])},
  {"name": "positions: the version of the append, then the op index; a client's own messages keep their order",
   "changes": [ch(1, "a", 1, "100:0", title("t"), app("a1", "one"), app("a2", "two")),
               ch(2, "b", 1, "200:0", app("b1", "bee")),
               ch(3, "a", 2, "101:0", app("a3", "three, offline, older clock"))],
   "expect": expect(fields={"title": "t"}, transcript=[msg("a1", "one", 1, 1, author="a"), msg("a2", "two", 1, 2, author="a"),
                                                       msg("b1", "bee", 2, 0, author="b"), msg("a3", "three, offline, older clock", 3, 0, author="a")])},
  {"name": "append metadata defaults to null and roles are kept",
   "changes": [ch(1, "a", 1, "10:0", app("s", "you are terse", role="system"), app("u", "hi", metadata={"client": "ios"}))],
   "expect": expect(transcript=[msg("s", "you are terse", 1, 0, role="system", metadata=None), msg("u", "hi", 1, 1, metadata={"client": "ios"})])},
  {"name": "a reused message id refuses the whole mutation, its valid ops too",
   "changes": [ch(1, "a", 1, "10:0", app("m", "first")), ch(2, "a", 2, "20:0", add("x"), title("no"), app("m", "again")),
               ch(3, "b", 1, "30:0", dele("m")), ch(4, "b", 2, "40:0", app("m", "after delete"))],
   "expect": expect(deleted=["m"], refused=[2, 4])},
  {"name": "editing or deleting a message the session does not have is refused",
   "changes": [ch(1, "a", 1, "10:0", add("kept")), ch(2, "a", 2, "20:0", add("lost"), edit("nope", "x")), ch(3, "a", 3, "30:0", dele("nope"))],
   "expect": expect(tags=["kept"], refused=[2, 3])},
  {"name": "stream_start, stream_update, stream_end: a streaming message refuses client edits and deletes, then is ordinary",
   "changes": [ch(1, "a", 1, "99:0", app("u1", "question")),
               ch(2, "~turn-t1", 1, "100:0", {"op": "stream_start", "message_id": "r1", "metadata": {"turn_id": "t1"}}),
               ch(3, "a", 2, "100:5", edit("r1", "hijack")),
               ch(4, "a", 3, "100:6", dele("r1")),
               ch(5, "~turn-t1", 2, "101:0", {"op": "stream_update", "message_id": "r1", "content": "Hel"}),
               ch(6, "~turn-t1", 3, "102:0", {"op": "stream_end", "message_id": "r1", "content": "Hello", "metadata": {"status": "complete", "turn_id": "t1"}}),
               ch(7, "a", 4, "101:9", edit("r1", "older than the end")),
               ch(8, "~turn-t1", 4, "103:0", {"op": "stream_update", "message_id": "r1", "content": "again"}),
               ch(9, "b", 1, "104:0", edit("r1", "edited after the turn"))],
   "expect": expect(transcript=[msg("u1", "question", 1, 0), msg("r1", "edited after the turn", 2, 0, role="assistant", metadata={"status": "complete", "turn_id": "t1"}, author="~turn-t1")],
                    refused=[3, 4, 8])},
  {"name": "a message still streaming shows the last saved content",
   "changes": [ch(1, "~turn-t2", 1, "10:0", title("chat"), {"op": "stream_start", "message_id": "r", "metadata": {}}),
               ch(2, "~turn-t2", 2, "11:0", {"op": "stream_update", "message_id": "r", "content": "partial"})],
   "expect": expect(fields={"title": "chat"}, transcript=[msg("r", "partial", 1, 1, role="assistant", streaming=True, metadata={})])},
  {"name": "stream_end on a message that is not streaming is refused; stream_start of a used id too",
   "changes": [ch(1, "a", 1, "10:0", app("m", "plain")),
               ch(2, "~turn-t3", 1, "11:0", {"op": "stream_end", "message_id": "m", "content": "x", "metadata": {}}),
               ch(3, "~turn-t3", 2, "12:0", {"op": "stream_start", "message_id": "m", "metadata": {}})],
   "expect": expect(transcript=[msg("m", "plain", 1, 0)], refused=[2, 3])},
  {"name": "create_session changes nothing; delete_session marks the session deleted",
   "changes": [ch(1, "~create", 1, "10:0", {"op": "create_session"}, title("made offline")), ch(2, "a", 1, "20:0", {"op": "delete_session"})],
   "expect": expect(fields={"title": "made offline"}, session_deleted=True)},
]

doc = {
  "description": "Merge-rule vectors shared by the Rust merge (src/sync/merge.rs) and the TypeScript replica (clients/typescript/src/merge.ts). Each case replays its changes, in the listed order, into an empty session document: change i is applied with Doc::apply(mutation, version) as the server would at that version.",
  "format": {
    "cases[].name": "what the case shows",
    "cases[].any_order": "optional; when true, applying the same changes (same versions) in reverse order must give the same fields, context and tags",
    "cases[].changes[]": "{version, client_id, mutation_id, hlc, ops}: a change as sync.change carries it",
    "expect.fields": "live fields (tombstones left out), by field name",
    "expect.context": "live context keys",
    "expect.tags": "live tags in byte order",
    "expect.transcript": "live (not deleted) messages in transcript order: id, role, content, position, seq, streaming, and metadata/author_client when given",
    "expect.deleted": "ids of messages that exist but are deleted (sorted)",
    "expect.refused": "versions whose change the merge refuses (apply returns an error and changes nothing)",
    "expect.session_deleted": "optional; true when a delete_session op applied"
  },
  "cases": cases,
}
out = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "merge-vectors.json")
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print("wrote", len(cases), "cases to", os.path.normpath(out))
