"""The MCP tools: input models (inputs), plain async domain functions by area (scenarios,
devboxes, runs, benchmarks), what a tool is (spec), each toolset's specs that describe and annotate
them (toolsets/) and the catalogue that lists them.

Each function takes the Backend and its input model (and, for the long ones, a progress reporter)
and returns a Runloop-shaped view; server.py registers the catalogue. Tests call these functions
directly as well as through a real MCP client. A solver session hands them a SolverBackend
(access.py), so the functions themselves know nothing of roles.
"""

from .catalogue import DEFAULT_TOOLSETS, TOOLS, TOOLSETS, parse_toolsets, solver_tools, tools_for
from .spec import Progress, ToolSpec, Unfinished

__all__ = [
    "DEFAULT_TOOLSETS",
    "TOOLS",
    "TOOLSETS",
    "Progress",
    "ToolSpec",
    "Unfinished",
    "parse_toolsets",
    "solver_tools",
    "tools_for",
]
