"""A minimal MCP server over stdio, written against the spec's JSON-RPC messages with no SDK, so
a test can choose the protocol revision it answers `initialize` with and page its tool list.

    python raw_server.py VERSION [marker]

It answers `initialize` with VERSION, `ping`, `tools/list` in two pages (`nextCursor`), and
`tools/call` of `shout` (upper-cases `text`).
"""

import json
import sys

VERSION = sys.argv[1] if len(sys.argv) > 1 else "2025-06-18"
TOOLS = [
    {"name": "shout", "description": "Upper-case the text.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "second_page", "description": "Listed on the second page.",
     "inputSchema": {"type": "object", "properties": {}}},
]


def reply(id_, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, id_ = msg.get("method"), msg.get("id")
    if id_ is None:
        continue  # notifications (initialized, cancelled)
    params = msg.get("params") or {}
    if method == "initialize":
        reply(id_, {"protocolVersion": VERSION, "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "raw-" + VERSION, "version": "0.1.0"}})
    elif method == "ping":
        reply(id_, {})
    elif method == "tools/list":
        if params.get("cursor") == "page2":
            reply(id_, {"tools": TOOLS[1:]})
        else:
            reply(id_, {"tools": TOOLS[:1], "nextCursor": "page2"})
    elif method == "tools/call" and params.get("name") == "shout":
        text = (params.get("arguments") or {}).get("text", "")
        reply(id_, {"content": [{"type": "text", "text": text.upper()}], "isError": False})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_,
                                     "error": {"code": -32601, "message": "unknown method " + str(method)}}) + "\n")
        sys.stdout.flush()
