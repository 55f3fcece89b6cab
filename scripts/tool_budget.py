"""What this server's tool list costs an agent, per role and toolsets.

    .venv/bin/python scripts/tool_budget.py [--role author|solver] [--toolsets a,b|all] [--json]

For each role (and its default toolsets, then `all`, unless --toolsets is given), the bytes and
estimated tokens (bytes / 4) of
  (a) the raw `tools/list` result, as the server sends it (compact JSON: names, titles,
      descriptions, input and output schemas, annotations), and
  (b) what a client sends a model for each tool: name + description + input schema.
The goals hold for what a role starts with, its default toolsets (author (b) <= 16 KB, solver
(b) <= 8 KB, author (a) <= 48 KB); other toolsets are measured for the README, beside no goal. The
exit status is 1 when a default misses a goal. The tools are listed through a real in-memory
mcp.Client; no tool is called, so the backend is never entered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools import DEFAULT_TOOLSETS

KB = 1024
GOALS = {("author", "raw"): 48 * KB, ("author", "model"): 16 * KB, ("solver", "model"): 8 * KB}


@dataclass
class Budget:
    role: str
    toolsets: str
    tools: int
    raw_bytes: int  # (a)
    model_bytes: int  # (b)
    default: bool  # the role's default toolsets: the goals hold for these

    def goal(self, kind: str) -> int | None:
        return GOALS.get((self.role, kind)) if self.default else None

    def over(self) -> list[str]:
        """The goals this figure misses."""
        missed = []
        for kind, measured in (("raw", self.raw_bytes), ("model", self.model_bytes)):
            goal = self.goal(kind)
            if goal is not None and measured > goal:
                missed.append(f"{self.role} ({'a' if kind == 'raw' else 'b'}) {measured} B > {goal} B")
        return missed


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def measure(role: str, toolsets: list[str] | None) -> Budget:
    """The figures for one role and toolsets (None: the role's default)."""
    with tempfile.TemporaryDirectory() as directory:
        backend = LocalBackend(Path(directory))
        server = build_server(backend, role="solver" if role == "solver" else "author", toolsets=toolsets)
        async with Client(server) as client:
            listed = await client.list_tools()
    raw = compact(listed.model_dump(mode="json", by_alias=True, exclude_none=True))
    model = sum(
        len(compact({"name": t.name, "description": t.description or "", "parameters": t.input_schema}).encode())
        for t in listed.tools
    )
    named = ",".join(toolsets) if toolsets is not None else "default: " + ",".join(DEFAULT_TOOLSETS[role])
    return Budget(role, named, len(listed.tools), len(raw.encode()), model, toolsets is None)


def kb(size: int) -> str:
    return f"{size / KB:5.1f} KB ~{size / 4 / 1000:4.1f}k tokens"


def goal(budget: Budget, kind: str) -> str:
    value = budget.goal(kind)
    return f"<= {value // KB} KB" if value else "-"


async def main(roles: list[str], toolsets: list[str] | None, as_json: bool) -> int:
    choices: list[list[str] | None] = [toolsets] if toolsets is not None else [None, ["all"]]
    budgets = [await measure(role, chosen) for role in roles for chosen in choices]
    if as_json:
        print(json.dumps([asdict(b) for b in budgets], indent=2))
    else:
        print(f"{'role':7} {'toolsets':52} {'tools':>5}  {'(a) tools/list':28} {'(b) to the model':28}")
        for b in budgets:
            print(
                f"{b.role:7} {b.toolsets:52} {b.tools:5}  {kb(b.raw_bytes)} {goal(b, 'raw'):>8}  "
                f"{kb(b.model_bytes)} {goal(b, 'model'):>8}"
            )
    missed = [m for b in budgets for m in b.over()]
    for line in missed:
        print(f"over budget: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["author", "solver"], help="one role (default: both)")
    parser.add_argument("--toolsets", help="comma-separated toolsets, or all (default: the role's, then all)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    roles = [args.role] if args.role else ["author", "solver"]
    chosen = args.toolsets.split(",") if args.toolsets else None
    sys.exit(anyio.run(main, roles, chosen, args.json))
