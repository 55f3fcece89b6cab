"""The long-running commands: `serve` (the MCP server over stdio, SSE or streamable HTTP) and `api`
(Runloop's REST API over the engine)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ..http_guard import token_from_env
from .backends import open_backend
from .options import trust_settings

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from ..backend import Backend
    from ..local.trust import TrustSettings
    from ..mcp_server.access import Role
    from ..mcp_server.host_dirs import HostDirs
    from ..mcp_server.http import HttpTransport


def add_serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    serve = sub.add_parser(
        "serve", parents=parents, help="run the MCP server (stdio by default; or SSE / streamable HTTP)"
    )
    _add_serve_options(serve)


def add_api_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    api = sub.add_parser("api", parents=parents, help="serve Runloop's REST API (/v1/...) over the engine")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    api.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    api.add_argument(
        "--token",
        default=token_from_env(legacy_api=True),
        help="bearer token every request but /healthz must carry (env SCENARIO_MCP_TOKEN, or the older "
        "SCENARIO_MCP_API_TOKEN); required off loopback",
    )
    api.add_argument(
        "--request-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="append one JSON line per request to FILE (arrival time, method, path, status, ms held)",
    )


def _add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--transport",
        choices=["stdio", "sse", "http"],
        default="stdio",
        help="stdio (default), http: streamable HTTP at /mcp, or sse: the legacy SSE transport at /sse",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP/SSE: address to bind (default 127.0.0.1, loopback)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP/SSE: port to bind (default 8000; 0 picks one)")
    serve.add_argument(
        "--token",
        default=token_from_env(),
        help="HTTP/SSE: bearer token every request must carry (env SCENARIO_MCP_TOKEN); required off loopback",
    )
    serve.add_argument(
        "--role",
        choices=["author", "solver"],
        default="author",
        help="author: every tool (default); solver: no authoring tools, and no reference output or scorer "
        "contents in any result",
    )
    serve.add_argument(
        "--run", dest="run_id", default=None, metavar="RUN_ID", help="with --role solver: pin the session to this run"
    )
    serve.add_argument(
        "--toolsets",
        default=None,
        metavar="LIST",
        help="comma-separated groups of tools to offer: scenarios, devboxes, runs, files, executions, benchmarks, "
        "blueprints, agents, or all (default: what the role needs for the seed workflow: author: scenarios, devboxes, "
        "executions, files, runs; solver: scenarios, runs, executions, files)",
    )
    serve.add_argument(
        "--allow-dir",
        dest="allow_dirs",
        action="append",
        default=None,
        metavar="DIR",
        help="a directory of this machine whose subdirectories callers may name as a Dockerfile build context "
        "(repeatable; default over stdio: the directory the server starts in; over HTTP/SSE: none)",
    )
    serve.add_argument(
        "--conformance-fixtures",
        action="store_true",
        help="also serve the fixture resource the official MCP conformance suite reads (testing only)",
    )


def serve_usage_error(args: argparse.Namespace) -> str | None:
    if args.run_id and args.role != "solver":
        return "--run pins a solver session to a run; add --role solver"
    if args.toolsets is not None:
        from ..mcp_server.tools import parse_toolsets

        try:
            parse_toolsets(toolset_names(args.toolsets), args.role)
        except ValueError as exc:
            return f"--toolsets: {exc}"
    if args.transport != "stdio":
        from ..http_guard import BindRefused, check_bind

        try:
            check_bind(args.host, args.token)
        except BindRefused as exc:
            return str(exc)
    return None


def toolset_names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def run_server(args: argparse.Namespace, data_dir: Path, retain_seconds: float | None) -> None:
    """Serve until stopped; exits 2 on a usage error, 1 when the server cannot start."""
    problem = _api_usage_error(args) if args.command == "api" else serve_usage_error(args)
    if problem:
        print(f"scenario-mcp: {problem}", file=sys.stderr)
        sys.exit(2)
    from ..local.trust import TrustError

    try:
        trust = trust_settings(args)
    except TrustError as exc:
        print(f"scenario-mcp: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        if args.command == "api":
            anyio.run(
                _api, data_dir, args.backend, args.host, args.port, args.token, trust, args.request_log, retain_seconds
            )
        else:
            anyio.run(_serve, data_dir, args.backend, args, trust, retain_seconds)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, OSError) as exc:
        where = f"with data dir {data_dir}" if args.backend == "local" else "with the remote backend"
        print(f"scenario-mcp: cannot serve {where}: {exc}", file=sys.stderr)
        sys.exit(1)


def _api_usage_error(args: argparse.Namespace) -> str | None:
    from ..http_guard import BindRefused, check_bind

    try:
        check_bind(args.host, args.token)
    except BindRefused as exc:
        return f"the REST API: {exc}"
    return None


async def prepare_in_background(backend: Backend) -> None:
    """Build the default environment while the server serves, so no first devbox waits for all of it."""
    from ..backend import BackendError, DefaultEnvironment

    if not isinstance(backend, DefaultEnvironment) or backend.default_environment_ready():
        return
    log = logging.getLogger("scenario_mcp.setup")
    log.info("building the default devbox environment in the background (once per data dir; see scenario-mcp setup)")
    try:
        view = await backend.prepare_default_environment()
    except BackendError as exc:
        log.warning("the default devbox environment could not be built: %s", exc.message)
    else:
        log.info("the default devbox environment is ready (%s)", view.id)


async def _api(
    data_dir: Path,
    backend_kind: str,
    host: str,
    port: int,
    token: str | None,
    trust: TrustSettings | None = None,
    request_log: Path | None = None,
    retain_seconds: float | None = None,
) -> None:
    from ..rest import build_rest_app
    from ..rest.request_log import RequestLog
    from ..stop_signals import Server, serve_until_stopped, server_config

    async with open_backend(backend_kind, data_dir, trust, retain_seconds) as backend:
        app = build_rest_app(backend, token=token, host=host)
        config = server_config(
            RequestLog(app, request_log) if request_log else app,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_level=logging.getLogger().getEffectiveLevel(),
            http="httptools",  # C parsing: a third of h11's CPU per request (the REST hop's budget)
        )
        print(f"scenario-mcp: Runloop REST API on http://{host}:{port}/v1 ({backend_kind} backend)", file=sys.stderr)
        server = Server(config)
        await serve_until_stopped(server.serve, partial(setattr, server, "should_exit", True))


def allowed_host_dirs(transport: str, args: argparse.Namespace | None) -> HostDirs:
    """Over stdio the caller is on this machine already: its start directory by default. Over
    HTTP a caller may be anyone: nothing unless named."""
    from ..mcp_server.host_dirs import HostDirs

    named = args.allow_dirs if args is not None else None
    if named is None:
        named = [os.getcwd()] if transport == "stdio" else []
    return HostDirs.of(named)


async def _serve(
    data_dir: Path,
    backend_kind: str = "local",
    args: argparse.Namespace | None = None,
    trust: TrustSettings | None = None,
    retain_seconds: float | None = None,
) -> None:
    transport = args.transport if args else "stdio"
    async with open_backend(backend_kind, data_dir, trust, retain_seconds) as backend, anyio.create_task_group() as tg:
        # The default environment is built while the server already answers (stdio's handshake
        # must not wait for PyPI); a devbox wanting it waits for the same build (blueprints.py).
        tg.start_soon(prepare_in_background, backend)
        await _serve_on(backend, backend_kind, transport, args)
        tg.cancel_scope.cancel()


async def _serve_stdio(server: MCPServer[Any]) -> None:
    """MCPServer.run_stdio_async, on stdin lines a stop can cancel (stop_signals.py)."""
    from mcp.server.stdio import stdio_server

    from ..stop_signals import StdinLines

    async with stdio_server(stdin=StdinLines()) as (read_stream, write_stream):  # type: ignore[arg-type]
        lowlevel = server._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


async def _serve_on(backend: Backend, backend_kind: str, transport: str, args: argparse.Namespace | None) -> None:
    from ..mcp_server.server import build_server

    role: Role = "solver" if args and args.role == "solver" else "author"
    run_id = args.run_id if args else None
    if run_id is not None:
        from ..backend import BackendError

        try:
            await backend.get_run(run_id)  # fail now, clearly, on a run that does not exist
        except BackendError as exc:
            raise RuntimeError(f"--run {run_id}: {exc.message}") from exc
    server = build_server(
        backend,
        role=role,
        run_id=run_id,
        open_world=backend_kind == "remote",
        conformance_fixtures=bool(args and args.conformance_fixtures),
        host_dirs=allowed_host_dirs(transport, args),
        toolsets=toolset_names(args.toolsets) if args else None,
    )
    if transport == "stdio":
        from ..stop_signals import serve_until_stopped

        await serve_until_stopped(partial(_serve_stdio, server))
        return
    from ..mcp_server.http import serve_http

    assert args is not None
    http_kind: HttpTransport = "sse" if transport == "sse" else "http"
    # The run pages show scorer outputs and reference diffs: an author's, never a solver's.
    pages = backend if role == "author" else None
    await serve_http(
        server, http_kind, host=args.host, port=args.port, token=args.token, log_level=args.log_level, backend=pages
    )
