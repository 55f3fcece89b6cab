"""`scenario-mcp bench run|report|schema`: an agent over a benchmark, and reports on benchmark runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .backends import open_backend
from .options import trust_settings

if TYPE_CHECKING:
    from ..backend import Backend
    from ..harness.runner import SuiteOptions
    from ..local.trust import TrustSettings


def add_bench_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    backend_opts: argparse.ArgumentParser,
) -> None:
    bench = sub.add_parser("bench", help="run an agent over a benchmark, and report on benchmark runs")
    actions = bench.add_subparsers(dest="bench_command", required=True)
    run = actions.add_parser(
        "run",
        parents=[common, backend_opts],
        help="run an agent over task directories, datasets, benchmarks (id or name) or scenario ids",
    )
    run.add_argument("targets", nargs="*", metavar="PATH_OR_BENCHMARK")
    run.add_argument(
        "--agent",
        required=True,
        help="oracle (the reference outputs), nop (nothing), command:CMD (CMD in the devbox, with "
        "$SCENARIO_PROBLEM_STATEMENT), host:CMD (CMD on this machine, with $SCENARIO_MCP_CONFIG: an mcpServers "
        "config for a solver server pinned to the run), or module:function (an async Python function given "
        "the run and a connected mcp.Client)",
    )
    run.add_argument(
        "--agent-mount",
        action="append",
        default=[],
        metavar="NAME[@VERSION]:PATH",
        help="mount an installed agent (create_agent; the newest of NAME, or that VERSION) read-only at PATH in "
        "every attempt's devbox, its bin/ on PATH: `--agent command:'my-agent -p \"$SCENARIO_PROBLEM_STATEMENT\"'` "
        "runs it with no per-run install (repeatable)",
    )
    run.add_argument("--concurrency", type=int, default=None, help="attempts at once (default 2 x cores)")
    run.add_argument("--attempts", type=int, default=1, help="attempts per scenario (pass@k up to this)")
    run.add_argument(
        "--agent-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="an attempt's agent time when its scenario names none (imported tasks do)",
    )
    run.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every result as JSON")
    run.add_argument("--junit", type=Path, default=None, metavar="FILE", help="write JUnit XML (below 1.0 fails)")
    run.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="write the HTML report")
    run.add_argument("--min-score", type=float, default=None, help="exit 1 when the mean score is below this")
    run.add_argument(
        "--resume", default=None, metavar="BENCHMARK_RUN_ID", help="re-run the attempts that errored or never ran"
    )
    run.add_argument("--no-diff", action="store_true", help="do not record the agent's changes as a diff")
    run.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME[=env:VAR]",
        help="give every attempt's devbox the stored secret NAME as $NAME (repeatable); NAME=env:VAR first "
        "stores this process's $VAR under NAME. Output shows it as [secret NAME]; scorers never get it",
    )
    report = actions.add_parser(
        "report", parents=[common, backend_opts], help="write the HTML report of a benchmark run"
    )
    report.add_argument("benchmark_run_id", metavar="BENCHMARK_RUN_ID")
    report.add_argument("--compare", default=None, metavar="OTHER_ID", help="show what got better or worse")
    report.add_argument("--out", "-o", type=Path, default=None, help="the file (default: BENCHMARK_RUN_ID.html)")
    actions.add_parser("schema", parents=[common], help="print the JSON schema of `bench run --json`")


def run_bench(args: argparse.Namespace, data_dir: Path) -> int:
    if args.bench_command == "schema":
        import json

        from ..harness.results import SuiteResults

        print(json.dumps(SuiteResults.model_json_schema(), indent=2))
        return 0
    from ..local.trust import TrustError

    try:
        trust = trust_settings(args)
    except TrustError as exc:
        print(f"scenario-mcp: {exc}", file=sys.stderr)
        return 2
    if args.bench_command == "report":
        return anyio.run(_on_backend, args, data_dir, trust, partial(_bench_report, args))
    from ..harness.agent_mounts import parse_agent_mount
    from ..harness.agents import parse_agent
    from ..harness.runner import SuiteOptions, default_concurrency, parse_secret_flags

    problem = None
    try:
        agent = parse_agent(args.agent)
    except ValueError as exc:
        problem = f"--agent: {exc}"
    try:
        args.agent_mount = [parse_agent_mount(text) for text in args.agent_mount]
    except ValueError as exc:
        problem = f"--agent-mount: {exc}"
    secrets: tuple[dict[str, str], dict[str, str]] = ({}, {})
    try:
        secrets = parse_secret_flags(args.secret, os.environ)
    except ValueError as exc:
        problem = str(exc)
    if not args.targets and not args.resume:
        problem = "name what to run: task directories, datasets, benchmarks (id or name) or scenario ids"
    if args.attempts < 1 or (args.concurrency is not None and args.concurrency < 1):
        problem = "--attempts and --concurrency must be at least 1"
    if problem:
        print(f"scenario-mcp bench run: {problem}", file=sys.stderr)
        return 2
    options = SuiteOptions(
        agent=agent,
        concurrency=args.concurrency or default_concurrency(),
        attempts=args.attempts,
        agent_timeout=args.agent_timeout,
        diff=not args.no_diff,
        secrets=secrets[0],
    )
    return anyio.run(_on_backend, args, data_dir, trust, partial(_bench_run, args, options, secrets[1]))


async def _on_backend(
    args: argparse.Namespace, data_dir: Path, trust: TrustSettings, work: Callable[[Backend], Awaitable[int]]
) -> int:
    """`work` on the backend the options name: 2 when the backend refuses, 1 when it cannot open."""
    from ..backend import BackendError

    try:
        async with open_backend(args.backend, data_dir, trust) as backend:
            try:
                return await work(backend)
            except BackendError as exc:
                print(f"scenario-mcp bench {args.bench_command}: {exc.message}", file=sys.stderr)
                return 2
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp bench {args.bench_command}: {exc}", file=sys.stderr)
        return 1


async def _bench_run(
    args: argparse.Namespace, options: SuiteOptions, secret_values: dict[str, str], backend: Backend
) -> int:
    from ..harness.console import Outputs, bench_run
    from ..harness.runner import store_secrets

    await store_secrets(backend, secret_values)
    return await bench_run(
        backend,
        args.targets,
        options,
        Outputs(json=args.json, junit=args.junit, report=args.report),
        resume=args.resume,
        min_score=args.min_score,
        agent_mounts=args.agent_mount,
    )


async def _bench_report(args: argparse.Namespace, backend: Backend) -> int:
    from ..harness.console import bench_report

    out = args.out or Path(f"{args.benchmark_run_id}.html")
    return await bench_report(backend, args.benchmark_run_id, args.compare, out)
