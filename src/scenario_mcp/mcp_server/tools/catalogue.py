"""The tool catalogue: every toolset's tools (toolsets/, one module per group) in the order tools/list
shows them; which toolsets a session starts with, and which tools a solver session is offered.

Descriptions say what a model needs to choose and call a tool, and no more: every byte there is
carried by every turn of every agent conversation (scripts/tool_budget.py measures them). The
rest is in the docs:// resource and the prompts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import get_args

from pydantic import BaseModel

from .inputs import CreateDevboxMountsInput, RunBenchmarkMountsInput, RunScenarioMountsInput, StartRunMountsInput
from .spec import Toolset, ToolSpec
from .toolsets.agents import AGENT_TOOLS
from .toolsets.benchmarks import BENCHMARK_TOOLS
from .toolsets.blueprints import BLUEPRINT_TOOLS
from .toolsets.devboxes import DEVBOX_TOOLS
from .toolsets.executions import EXECUTION_TOOLS
from .toolsets.files import FILE_TOOLS
from .toolsets.runs import RUN_TOOLS
from .toolsets.scenarios import SCENARIO_TOOLS
from .toolsets.secrets import SECRET_TOOLS
from .toolsets.tasks import TASK_TOOLS
from .toolsets.tunnels import TUNNEL_TOOLS

# With the agents toolset, these tools take `mounts` too (inputs.py: their fields cost every turn).
WITH_MOUNTS: dict[str, type[BaseModel]] = {
    "create_devbox": CreateDevboxMountsInput,
    "start_run": StartRunMountsInput,
    "run_scenario": RunScenarioMountsInput,
    "run_benchmark": RunBenchmarkMountsInput,
}

# The order tools/list shows them in.
TOOLS: tuple[ToolSpec, ...] = (
    *SCENARIO_TOOLS,
    *BLUEPRINT_TOOLS,
    *DEVBOX_TOOLS,
    *EXECUTION_TOOLS,
    *FILE_TOOLS,
    *RUN_TOOLS,
    *BENCHMARK_TOOLS,
    *TASK_TOOLS,
    *AGENT_TOOLS,
    *SECRET_TOOLS,
    *TUNNEL_TOOLS,
)

TOOLSETS: tuple[Toolset, ...] = get_args(Toolset)
# What each role needs for the seed workflow (author: make a devbox, set it up, snapshot it, create
# and validate a scenario, run it; solver: find the task (a tool, for clients without resources),
# start, work, score, complete).
DEFAULT_TOOLSETS: dict[str, tuple[Toolset, ...]] = {
    "author": ("scenarios", "devboxes", "executions", "files", "runs"),
    "solver": ("scenarios", "runs", "executions", "files"),
}


def parse_toolsets(names: Iterable[str] | None, role: str) -> frozenset[Toolset]:
    """The toolsets named (`all` for every one; none named: the role's default); raises ValueError
    naming the known ones for an unknown name."""
    if names is None:
        return frozenset(DEFAULT_TOOLSETS[role])
    chosen: set[Toolset] = set()
    for name in names:
        if name == "all":
            chosen.update(TOOLSETS)
        elif name in TOOLSETS:
            chosen.add(name)
        else:
            raise ValueError(f"unknown toolset {name!r}; known: {', '.join(TOOLSETS)} or all")
    return frozenset(chosen)


def solver_tools(*, pinned: bool) -> list[ToolSpec]:
    return [spec for spec in TOOLS if not spec.authoring and (spec.pinned or not pinned)]


def tools_for(role: str, toolsets: frozenset[Toolset], *, pinned: bool = False) -> list[ToolSpec]:
    """The tools a session of `role` is offered from `toolsets`, in the catalogue's order."""
    offered = solver_tools(pinned=pinned) if role == "solver" else list(TOOLS)
    chosen = [spec for spec in offered if spec.toolset in toolsets]
    if "agents" in toolsets:
        chosen = [
            dataclasses.replace(spec, input_model=WITH_MOUNTS[spec.name]) if spec.name in WITH_MOUNTS else spec
            for spec in chosen
        ]
    return chosen
