"""A real MCP server for tests: the Python `mcp` package's FastMCP.

    python fastmcp_server.py stdio [marker]       # over stdin/stdout
    python fastmcp_server.py http PORT [marker]   # Streamable HTTP at http://127.0.0.1:PORT/mcp

`marker` is an unused argument that lets a test find (and kill) this very process.
`python fastmcp_server.py fail` writes a reason to stderr and exits, as a misconfigured server does.
"""

import sys
import time

from mcp.server.fastmcp import FastMCP

server = FastMCP("switchyard-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep, then answer (a tool that hangs)."""
    time.sleep(seconds)
    return "slept"


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "fail":
        print("fatal: API_TOKEN is not set", file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "http":
        server.settings.port = int(sys.argv[2])
        server.run(transport="streamable-http")
    else:
        server.run()
