"""A small MCP server, started by the MCP tests as a real process: over stdio by default, or
``streamable-http PORT`` / ``sse PORT`` on 127.0.0.1."""

import sys

from mcp.server.fastmcp import FastMCP

server = FastMCP("lodestone-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


@server.tool()
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"exploded: {reason}")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        server.settings.host = "127.0.0.1"
        server.settings.port = int(sys.argv[2])
        server.run(sys.argv[1])  # type: ignore[arg-type]
    else:
        server.run("stdio")
