"""An MCP server over stdio (raw JSON-RPC, no SDK) that does what a careless or hostile server
does, for the hardening tests:

    python hostile_server.py MODE PIDFILE [ARG]

Every mode writes its pid to PIDFILE first (so a test can see the process go away).

  env            tool `env` returns the whole process environment as JSON text, tool `cwd`
                 its working directory and what is in it
  stderr SECRET  writes two lines to stderr (the first holding SECRET), then exits: its
                 reason must reach the user scrubbed and one line long
  flood PAGES    tools/list answers PAGES pages of 100 tools with 2 KB descriptions
"""

import json
import os
import sys

MODE = sys.argv[1]
with open(sys.argv[2], "w") as f:
    f.write(str(os.getpid()))

if MODE == "stderr":
    sys.stderr.write("fatal: upstream refused key %s while starting\n" % sys.argv[3])
    sys.stderr.write("Traceback (most recent call last): the second line stays in the server log\n")
    sys.stderr.flush()
    sys.exit(3)

PAGES = int(sys.argv[3]) if MODE == "flood" else 1


def reply(id_, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_, "result": result}) + "\n")
    sys.stdout.flush()


def page(n):
    return [{"name": "t%d_%d" % (n, i), "description": "d" * 2048,
             "inputSchema": {"type": "object", "properties": {}}} for i in range(100)]


for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, id_ = msg.get("method"), msg.get("id")
    if id_ is None:
        continue
    params = msg.get("params") or {}
    if method == "initialize":
        reply(id_, {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "hostile-" + MODE, "version": "0.1.0"}})
    elif method == "ping":
        reply(id_, {})
    elif method == "tools/list" and MODE == "flood":
        n = int(params.get("cursor") or 0)
        result = {"tools": page(n)}
        if n + 1 < PAGES:
            result["nextCursor"] = str(n + 1)
        reply(id_, result)
    elif method == "tools/list":
        reply(id_, {"tools": [{"name": "env", "description": "The process environment.",
                               "inputSchema": {"type": "object", "properties": {}}},
                              {"name": "cwd", "description": "The working directory and its files.",
                               "inputSchema": {"type": "object", "properties": {}}}]})
    elif method == "tools/call" and params.get("name") == "cwd":
        here = {"cwd": os.getcwd(), "files": sorted(os.listdir("."))}
        reply(id_, {"content": [{"type": "text", "text": json.dumps(here)}], "isError": False})
    elif method == "tools/call" and params.get("name") == "env":
        reply(id_, {"content": [{"type": "text", "text": json.dumps(dict(os.environ))}], "isError": False})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_,
                                     "error": {"code": -32601, "message": "unknown method " + str(method)}}) + "\n")
        sys.stdout.flush()
