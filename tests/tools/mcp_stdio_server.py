"""A small MCP server over stdio, started by the MCP tests as a real process."""

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
    server.run("stdio")
