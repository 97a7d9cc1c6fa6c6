"""A real MCP server that asks its user something (elicitation, form mode): the Python `mcp`
package's FastMCP over stdio. Its tool `ask` asks `question` with a form whose fields have
defaults (SEP-1034) and answers with what it got back: the accepted fields as sorted JSON, or
`decline` / `cancel`.

    python elicit_server.py [marker]
"""

import json

from pydantic import BaseModel
from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("switchyard-elicit-test")


class Signup(BaseModel):
    email: str
    name: str = "Ada"
    age: int = 36
    news: bool = False


@server.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the user `question` and return their answer."""
    answer = await ctx.elicit(message=question, schema=Signup)
    if answer.action == "accept":
        return json.dumps(answer.data.model_dump(), sort_keys=True)
    return answer.action


if __name__ == "__main__":
    server.run()
