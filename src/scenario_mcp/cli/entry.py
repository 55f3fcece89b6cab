"""The command line put together: the parser of every command group, and `main`, which hands the
parsed command to its group."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import anyio

from .. import __version__
from .backends import open_backend
from .bench import add_bench_parsers, run_bench
from .local_engine import add_gc_parser, add_setup_parser, add_shell_parser, collect_garbage, setup
from .options import backend_options, common_options, default_data_dir, trust_settings
from .servers import add_api_parser, add_serve_parser, run_server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenario-mcp",
        description="MCP server that gives AI agents scenarios to solve in sandboxed devboxes.",
    )
    parser.add_argument("--version", action="version", version=f"scenario-mcp {__version__}")
    common = common_options()
    backend_opts = backend_options()
    sub = parser.add_subparsers(dest="command")
    # Added in the order `scenario-mcp --help` lists them.
    add_serve_parser(sub, [common, backend_opts])
    add_api_parser(sub, [common, backend_opts])
    sub.add_parser("demo", parents=[common], help="walk the seed workflow through a real MCP client over stdio")
    add_setup_parser(sub, common)
    from ..tasks.commands import add_scenario_commands

    add_scenario_commands(sub, [common, backend_opts])
    add_gc_parser(sub, common)
    add_bench_parsers(sub, common, backend_opts)
    add_shell_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list = ["serve", *args_list]
    args = build_parser().parse_args(args_list)
    # stdout is the protocol: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data_dir = args.data_dir or default_data_dir()
    retain_seconds = _retain_seconds(args)
    if args.command == "demo":
        from ..demo import run_demo

        sys.exit(anyio.run(run_demo, data_dir))
    if args.command == "gc":
        sys.exit(anyio.run(collect_garbage, data_dir, args.grace, retain_seconds))
    if args.command == "setup":
        sys.exit(anyio.run(setup, data_dir))
    if args.command == "shell":
        from ..local.shell import open_shell

        sys.exit(open_shell(data_dir, args.devbox_id))
    if args.command == "bench":
        sys.exit(run_bench(args, data_dir))
    if args.command == "scenario":
        sys.exit(anyio.run(_scenario, data_dir, args))
    run_server(args, data_dir, retain_seconds)


def _retain_seconds(args: argparse.Namespace) -> float | None:
    """--retain in seconds (None: the engine's default); exits 2 on one it cannot read."""
    if getattr(args, "retain", None) is None:
        return None
    from ..local.retention import parse_retention

    try:
        return parse_retention(args.retain)
    except ValueError as exc:
        print(f"scenario-mcp: {exc}", file=sys.stderr)
        sys.exit(2)


async def _scenario(data_dir: Path, args: argparse.Namespace) -> int:
    from ..tasks.commands import run_scenario_command

    try:
        async with open_backend(args.backend, data_dir, trust_settings(args)) as backend:
            return await run_scenario_command(backend, args)
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp scenario: {exc}", file=sys.stderr)
        return 1
