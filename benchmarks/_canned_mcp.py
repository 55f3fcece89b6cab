"""A floor for the MCP layer: a server on the same SDK, over stdio, whose `execute_on_devbox`
answers at once with a canned completed execution. Run as `python _canned_mcp.py`.

Against it, a call costs only the client, the SDK's server, stdio and a tool returning a
structured result: what any MCP tool costs before the tool does anything.
"""

from __future__ import annotations

from mcp.server import MCPServer
from pydantic import BaseModel


class CannedExecution(BaseModel):
    devbox_id: str
    execution_id: str
    status: str
    exit_status: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool | None = None
    stderr_truncated: bool | None = None
    shell_name: str | None = None


server = MCPServer("canned")


@server.tool()
async def execute_on_devbox(devbox_id: str, command: str) -> CannedExecution:
    """Pretend to run a command: answer at once."""
    return CannedExecution(
        devbox_id=devbox_id,
        execution_id="exe_canned",
        status="completed",
        exit_status=0,
        stdout="",
        stderr="",
        stdout_truncated=False,
        stderr_truncated=False,
    )


if __name__ == "__main__":
    server.run()
