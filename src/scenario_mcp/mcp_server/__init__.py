"""The MCP surface over any Backend."""
