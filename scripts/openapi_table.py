"""The README's table of Runloop's OpenAPI paths: which ones `scenario-mcp api` serves, and why not
the others.

    .venv/bin/python scripts/openapi_table.py           # print the table
    .venv/bin/python scripts/openapi_table.py --write   # put it in README.md, between its markers
    .venv/bin/python scripts/openapi_table.py --check   # exit 1 when README.md's table is stale

A path is served when the REST app routes each of its methods (scenario_mcp.rest.app.ROUTES). Every
path it does not serve needs a reason in NOT_SERVED, and a reason for a path it serves is an error:
tests/rest/test_openapi_table.py runs the check, so the table cannot drift from the routes.
"""

from __future__ import annotations

import argparse
import re
import sys
from functools import cache
from pathlib import Path

import yaml

from scenario_mcp.rest.app import ROUTES

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "reference" / "runloop-openapi.yml"
README = ROOT / "README.md"
START, END = "<!-- openapi-table:start -->", "<!-- openapi-table:end -->"
METHODS = ("get", "post", "put", "delete", "patch")

_INBOUND = "reaches a devbox from outside through Runloop's edge; devboxes here take no inbound connections"
_NOT_YET = "not yet"
# Why a path is not served, by path prefix (the longest prefix that matches wins).
NOT_SERVED: dict[str, str] = {
    "/pty/": "Runloop's browser terminal over its tunnels; commands here go through execute and named shells",
    "/v1/agents/devbox_counts": "a dashboard's figure; list devboxes instead",
    "/v1/agents/list_public": "one engine has no public agents of other accounts; list_agents lists them all",
    "/v1/apikeys": "account keys: this server has one bearer token (`--token`)",
    "/v1/restricted_keys": "account keys: this server has one bearer token (`--token`)",
    "/v1/axons": "Runloop's event streams with SQL over them (beta); nothing here needs them",
    "/v1/benchmark_jobs": "Runloop runs a job's agents itself (beta); here the harness drives benchmark runs",
    "/v1/benchmark_runs/{id}/download_logs": f"{_NOT_YET}: each scenario run's logs download on their own",
    "/v1/benchmarks/runs/{id}/download_logs": f"{_NOT_YET}: each scenario run's logs download on their own",
    "/v1/blueprints/create_from_inspection": "builds from Runloop's inspection of a connected GitHub repository",
    "/v1/blueprints/preview": f"{_NOT_YET}: the Dockerfile Runloop would generate for a blueprint",
    "/v1/devboxes/{id}/create_pty_tunnel": _INBOUND,
    "/v1/devboxes/{id}/create_ssh_key": _INBOUND,
    "/v1/gateway-configs": "Runloop's proxies that put credentials into a devbox's requests",
    "/v1/mcp-configs": "Runloop's MCP hubs for devboxes (beta)",
    "/v1/objects/metadata/keys": f"{_NOT_YET}: objects are not in the metadata listings",
}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _reason(path: str) -> str | None:
    matches = [prefix for prefix in NOT_SERVED if _template(path).startswith(_template(prefix))]
    return NOT_SERVED[max(matches, key=len)] if matches else None


@cache
def spec_paths(spec_file: Path = SPEC) -> dict[str, list[str]]:
    """Every path of the spec and its methods, in the spec's order."""
    spec = yaml.load(spec_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {path: [m.upper() for m in item if m in METHODS] for path, item in spec["paths"].items()}


def rows(spec_file: Path = SPEC) -> list[tuple[str, list[str], str | None]]:
    """(path, methods, None when served else why not); raises when a reason is missing or stale."""
    routed = {(method, _template(path)) for method, path, _ in ROUTES}
    table: list[tuple[str, list[str], str | None]] = []
    problems: list[str] = []
    for path, methods in spec_paths(spec_file).items():
        served = [(m, _template(path)) in routed for m in methods]
        reason = _reason(path)
        if all(served):
            if reason is not None and path in NOT_SERVED:
                problems.append(f"{path} is served now: delete its reason from NOT_SERVED")
            table.append((path, methods, None))
        elif any(served):
            problems.append(f"{path}: only some of {methods} are routed; serve all or none")
        elif reason is None:
            problems.append(f"{path} is not served and NOT_SERVED gives no reason")
        else:
            table.append((path, methods, reason))
    stale = [p for p in NOT_SERVED if not any(_template(r[0]).startswith(_template(p)) and r[2] for r in table)]
    problems += [f"NOT_SERVED[{p!r}] names no unserved path" for p in stale]
    if problems:
        raise ValueError("openapi_table: " + "; ".join(problems))
    return table


def extra_routes(spec_file: Path = SPEC) -> list[str]:
    """What the REST app serves beyond the spec."""
    known = {(m, _template(p)) for p, methods in spec_paths(spec_file).items() for m in methods}
    return [f"`{m} {p}`" for m, p, _ in ROUTES if (m, _template(p)) not in known]


def render(spec_file: Path = SPEC) -> str:
    table = rows(spec_file)
    served = [r for r in table if r[2] is None]
    operations = sum(len(r[1]) for r in table)
    lines = [
        START,
        f"Of the {len(table)} paths ({operations} operations) of Runloop's OpenAPI description, "
        f"{len(served)} ({sum(len(r[1]) for r in served)} operations) are served and "
        f"{len(table) - len(served)} are not. Generated by `scripts/openapi_table.py --write`; "
        "a test fails when it no longer matches the routes.",
        "",
        "| path | methods | served |",
        "|---|---|---|",
    ]
    lines += [f"| `{path}` | {' '.join(methods)} | {reason or 'yes'} |" for path, methods, reason in table]
    lines += ["", "Served beyond the OpenAPI file: " + ", ".join(extra_routes(spec_file)) + ".", END]
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[start:end]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    args = parser.parse_args()
    table, readme = render(), README.read_text()
    if args.write:
        README.write_text(readme.replace(readme_table(readme), table))
    elif args.check:
        if readme_table(readme) != table:
            print("README.md's OpenAPI table is stale: run scripts/openapi_table.py --write", file=sys.stderr)
            return 1
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
