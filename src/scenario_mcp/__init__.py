"""scenario-mcp: an MCP server that gives AI agents scenarios to solve in sandboxed devboxes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scenario-mcp")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
