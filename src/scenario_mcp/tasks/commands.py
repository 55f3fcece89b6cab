"""`scenario-mcp scenario import PATH...` and `scenario-mcp scenario export ID DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..backend import Backend, BackendError
from .export import export_scenario
from .importer import ImportResult, TaskImportError, import_tasks
from .task import TaskFormatError


def add_scenario_commands(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:  # type: ignore[type-arg]
    scenario = sub.add_parser("scenario", help="scenarios as files: import and export task directories")
    actions = scenario.add_subparsers(dest="scenario_command", required=True)
    imports = actions.add_parser(
        "import",
        parents=parents,
        help="create or update scenarios from Harbor / Terminal-Bench task directories or datasets (directories "
        "of them); an unchanged task changes nothing",
    )
    imports.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    exports = actions.add_parser("export", parents=parents, help="write a scenario as a Harbor task directory")
    exports.add_argument("scenario_id", metavar="ID")
    exports.add_argument("directory", type=Path, metavar="DIR", help="a new or empty directory")


def results_table(results: list[ImportResult]) -> str:
    rows = [("ACTION", "SCENARIO", "NAME", "BLUEPRINT")] + [
        (r.action, r.scenario_id, r.name, r.blueprint_id) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    counts = {a: sum(r.action == a for r in results) for a in ("created", "updated", "unchanged")}
    lines.append(", ".join(f"{n} {a}" for a, n in counts.items()))
    return "\n".join(lines)


async def run_scenario_command(backend: Backend, args: argparse.Namespace) -> int:
    try:
        if args.scenario_command == "import":
            print(results_table(await import_tasks(backend, args.paths)))
        else:
            written = await export_scenario(backend, args.scenario_id, args.directory)
            print(f"wrote {args.scenario_id} as a Harbor task directory: {written}")
    except (TaskFormatError, TaskImportError, BackendError) as exc:
        print(f"scenario-mcp scenario {args.scenario_command}: {exc}", file=sys.stderr)
        return 1
    return 0
