"""scenario-mcp [serve|demo]: the command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import anyio
import platformdirs

from . import __version__


def default_data_dir() -> Path:
    env = os.environ.get("SCENARIO_MCP_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("scenario-mcp"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenario-mcp",
        description="MCP server that gives AI agents scenarios to solve in sandboxed devboxes.",
    )
    parser.add_argument("--version", action="version", version=f"scenario-mcp {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the database and devbox disks live (env SCENARIO_MCP_DATA_DIR; default: the user data dir)",
    )
    common.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", parents=[common], help="run the MCP server over stdio (the default)")
    sub.add_parser("demo", parents=[common], help="walk the seed workflow through a real MCP client over stdio")
    return parser


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list = ["serve", *args_list]
    args = _parser().parse_args(args_list)
    # stdout is the protocol: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data_dir = args.data_dir or default_data_dir()
    if args.command == "demo":
        from .demo import run_demo

        sys.exit(anyio.run(run_demo, data_dir))
    try:
        anyio.run(_serve, data_dir)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp: cannot serve with data dir {data_dir}: {exc}", file=sys.stderr)
        sys.exit(1)


async def _serve(data_dir: Path) -> None:
    from .local.engine import LocalBackend
    from .mcp_server.server import build_server

    async with LocalBackend(data_dir) as backend:
        await build_server(backend).run_stdio_async()
