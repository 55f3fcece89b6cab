"""scenario-mcp [serve|api|demo|setup|gc|bench|shell]: the command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import platformdirs

from . import __version__
from .http_guard import token_from_env

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from .backend import Backend
    from .local.trust import TrustSettings
    from .mcp_server.access import Role
    from .mcp_server.host_dirs import HostDirs
    from .mcp_server.http import HttpTransport


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
    backend_opts = argparse.ArgumentParser(add_help=False)
    backend_opts.add_argument(
        "--backend",
        choices=["local", "remote"],
        default="local",
        help="local: the embedded engine (default); remote: a Runloop-compatible REST API at RUNLOOP_BASE_URL "
        "(default https://api.runloop.ai) with RUNLOOP_API_KEY",
    )
    _add_trust_options(backend_opts)
    for options in (backend_opts, gc_opts := argparse.ArgumentParser(add_help=False)):
        options.add_argument(
            "--retain",
            default="7d",
            metavar="DURATION",
            help="how long outputs and logs of ended devboxes and runs are kept (their records stay): "
            "7d (default), 12h, 30m, 90s, or 0",
        )
    serve = sub.add_parser(
        "serve", parents=[common, backend_opts], help="run the MCP server (stdio by default; or SSE / streamable HTTP)"
    )
    _add_serve_options(serve)
    api = sub.add_parser(
        "api", parents=[common, backend_opts], help="serve Runloop's REST API (/v1/...) over the engine"
    )
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
    sub.add_parser("demo", parents=[common], help="walk the seed workflow through a real MCP client over stdio")
    sub.add_parser(
        "setup",
        parents=[common],
        help="check that this machine can make devboxes and build the default environment (a Python venv with "
        "pytest, from PyPI) once, so no first devbox waits for it",
    )
    from .tasks.commands import add_scenario_commands

    add_scenario_commands(sub, [common, backend_opts])
    gc = sub.add_parser(
        "gc",
        parents=[common, gc_opts],
        help="free the layers and pulled images no blueprint, snapshot or live devbox stands on, and the "
        "outputs and logs of devboxes and runs that ended longer ago than --retain (the server must be "
        "stopped: it holds the data dir)",
    )
    _add_bench_parsers(sub, common, backend_opts)
    shell = sub.add_parser(
        "shell",
        parents=[common],
        help="an interactive shell in a running devbox of the local engine (a real terminal: window size, "
        "Ctrl-C, job control; `exit` returns)",
    )
    shell.add_argument("devbox_id", metavar="DEVBOX_ID")
    gc.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep layers younger than this (default 600: a layer being recorded right now is kept)",
    )
    return parser


def _add_bench_parsers(
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


def _add_trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extra-ca-certs",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="local backend: a CA certificate file (PEM or DER) image devboxes and Dockerfile build steps trust "
        "too, besides the host's own added CAs (repeatable; env SCENARIO_MCP_EXTRA_CA_CERTS, files separated by ':')",
    )
    parser.add_argument(
        "--no-host-ca-certs",
        action="store_true",
        default=os.environ.get("SCENARIO_MCP_NO_HOST_CA_CERTS", "").lower() in ("1", "true", "yes"),
        help="local backend: do not give image devboxes and build steps the CAs this host added to its own trust "
        "store (/usr/local/share/ca-certificates, /etc/pki/ca-trust/source/anchors), as they are by default "
        "(env SCENARIO_MCP_NO_HOST_CA_CERTS=1)",
    )


def trust_settings(args: argparse.Namespace) -> TrustSettings:
    """What image devboxes and build steps trust, from the options and the environment; raises
    TrustError for an extra CA file that cannot be used."""
    from .local.trust import TrustSettings

    from_env = [Path(p) for p in os.environ.get("SCENARIO_MCP_EXTRA_CA_CERTS", "").split(os.pathsep) if p]
    settings = TrustSettings(not args.no_host_ca_certs, tuple(from_env + args.extra_ca_certs))
    settings.check()
    return settings


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


def _serve_usage_error(args: argparse.Namespace) -> str | None:
    if args.run_id and args.role != "solver":
        return "--run pins a solver session to a run; add --role solver"
    if args.toolsets is not None:
        from .mcp_server.tools import parse_toolsets

        try:
            parse_toolsets(_toolset_names(args.toolsets), args.role)
        except ValueError as exc:
            return f"--toolsets: {exc}"
    if args.transport != "stdio":
        from .http_guard import BindRefused, check_bind

        try:
            check_bind(args.host, args.token)
        except BindRefused as exc:
            return str(exc)
    return None


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
    retain_seconds: float | None = None  # the engine's default
    if getattr(args, "retain", None) is not None:
        from .local.retention import parse_retention

        try:
            retain_seconds = parse_retention(args.retain)
        except ValueError as exc:
            print(f"scenario-mcp: {exc}", file=sys.stderr)
            sys.exit(2)
    if args.command == "demo":
        from .demo import run_demo

        sys.exit(anyio.run(run_demo, data_dir))
    if args.command == "gc":
        sys.exit(anyio.run(_gc, data_dir, args.grace, retain_seconds))
    if args.command == "setup":
        sys.exit(anyio.run(_setup, data_dir))
    if args.command == "shell":
        from .local.shell import open_shell

        sys.exit(open_shell(data_dir, args.devbox_id))
    if args.command == "bench":
        sys.exit(_bench(args, data_dir))
    if args.command == "scenario":
        sys.exit(anyio.run(_scenario, data_dir, args))
    if args.command == "api":
        from .http_guard import BindRefused, check_bind

        try:
            check_bind(args.host, args.token)
        except BindRefused as exc:
            print(f"scenario-mcp: the REST API: {exc}", file=sys.stderr)
            sys.exit(2)
    if args.command == "serve" and (problem := _serve_usage_error(args)):
        print(f"scenario-mcp: {problem}", file=sys.stderr)
        sys.exit(2)
    from .local.trust import TrustError

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


def _bench(args: argparse.Namespace, data_dir: Path) -> int:
    if args.bench_command == "schema":
        import json

        from .harness.results import SuiteResults

        print(json.dumps(SuiteResults.model_json_schema(), indent=2))
        return 0
    from .local.trust import TrustError

    try:
        trust = trust_settings(args)
    except TrustError as exc:
        print(f"scenario-mcp: {exc}", file=sys.stderr)
        return 2
    if args.bench_command == "report":
        return anyio.run(_bench_report, args, data_dir, trust)
    from .harness.agent_mounts import parse_agent_mount
    from .harness.agents import parse_agent
    from .harness.runner import SuiteOptions, default_concurrency, parse_secret_flags

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
    return anyio.run(_bench_run, args, data_dir, trust, options, secrets[1])


async def _bench_run(
    args: argparse.Namespace, data_dir: Path, trust: TrustSettings, options: object, secret_values: dict[str, str]
) -> int:
    from .backend import BackendError
    from .harness.console import Outputs, bench_run
    from .harness.runner import SuiteOptions, store_secrets

    assert isinstance(options, SuiteOptions)
    try:
        async with open_backend(args.backend, data_dir, trust) as backend:
            try:
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
            except BackendError as exc:
                print(f"scenario-mcp bench run: {exc.message}", file=sys.stderr)
                return 2
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp bench run: {exc}", file=sys.stderr)
        return 1


async def _bench_report(args: argparse.Namespace, data_dir: Path, trust: TrustSettings) -> int:
    from .backend import BackendError
    from .harness.console import bench_report

    out = args.out or Path(f"{args.benchmark_run_id}.html")
    try:
        async with open_backend(args.backend, data_dir, trust) as backend:
            try:
                return await bench_report(backend, args.benchmark_run_id, args.compare, out)
            except BackendError as exc:
                print(f"scenario-mcp bench report: {exc.message}", file=sys.stderr)
                return 2
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp bench report: {exc}", file=sys.stderr)
        return 1


async def _gc(data_dir: Path, grace: float | None, retain_seconds: float | None = None) -> int:
    from .local.engine import LocalBackend
    from .local.garbage import GRACE_SECONDS

    try:
        retention = {} if retain_seconds is None else {"retain_seconds": retain_seconds}
        async with LocalBackend(data_dir, trust=None, **retention) as engine:
            retained = await engine.apply_retention()
            report = await engine.collect_garbage(grace_seconds=GRACE_SECONDS if grace is None else grace)
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp gc: {exc}", file=sys.stderr)
        return 1
    print(
        f"freed {report.freed_bytes / 1e6:.1f} MB: {len(report.layers)} layer(s), "
        f"{len(report.image_layers)} image layer(s), {len(report.images)} pulled image(s)"
    )
    print(
        f"retention: freed {retained.freed_bytes / 1e6:.1f} MB of {len(retained.devboxes)} ended devbox(es), "
        f"{retained.log_entries} log entries of {len(retained.runs)} ended run(s)"
    )
    return 0


async def _scenario(data_dir: Path, args: argparse.Namespace) -> int:
    from .tasks.commands import run_scenario_command

    try:
        async with open_backend(args.backend, data_dir, trust_settings(args)) as backend:
            return await run_scenario_command(backend, args)
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp scenario: {exc}", file=sys.stderr)
        return 1


def _toolset_names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


async def _setup(data_dir: Path) -> int:
    """Make sure devboxes can be made here, and build the default environment now."""
    from .backend import BackendError
    from .local.engine import LocalBackend

    print(f"scenario-mcp setup: data dir {data_dir}", file=sys.stderr)
    try:
        async with LocalBackend(data_dir) as engine:
            started = time.perf_counter()
            if not engine.default_environment_ready():
                print("scenario-mcp setup: building the default environment (needs PyPI, once) ...", file=sys.stderr)
            view = await engine.prepare_default_environment()
    except (RuntimeError, OSError, BackendError) as exc:
        message = exc.message if isinstance(exc, BackendError) else str(exc)
        print(f"scenario-mcp setup: {message}", file=sys.stderr)
        return 1
    print(f"scenario-mcp setup: ready: default environment {view.id} ({time.perf_counter() - started:.1f} s)")
    return 0


async def prepare_in_background(backend: Backend) -> None:
    """Build the default environment while the server serves, so no first devbox waits for all of it."""
    from .backend import BackendError, DefaultEnvironment

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


@asynccontextmanager
async def open_backend(
    kind: str, data_dir: Path, trust: TrustSettings | None = None, retain_seconds: float | None = None
) -> AsyncIterator[Backend]:
    """The engine behind a surface: the local one, or a remote Runloop-compatible API."""
    if kind == "remote":
        from .remote import RemoteBackend

        async with RemoteBackend.from_env() as remote:
            yield remote
    else:
        from .local.engine import LocalBackend

        retention = {} if retain_seconds is None else {"retain_seconds": retain_seconds}
        async with LocalBackend(data_dir, trust=trust, **retention) as local:
            yield local


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
    from .rest import build_rest_app
    from .rest.request_log import RequestLog
    from .stop_signals import Server, serve_until_stopped, server_config

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


def _host_dirs(transport: str, args: argparse.Namespace | None) -> HostDirs:
    """Over stdio the caller is on this machine already: its start directory by default. Over
    HTTP a caller may be anyone: nothing unless named."""
    from .mcp_server.host_dirs import HostDirs

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

    from .stop_signals import StdinLines

    async with stdio_server(stdin=StdinLines()) as (read_stream, write_stream):  # type: ignore[arg-type]
        lowlevel = server._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


async def _serve_on(backend: Backend, backend_kind: str, transport: str, args: argparse.Namespace | None) -> None:
    from .mcp_server.server import build_server

    role: Role = "solver" if args and args.role == "solver" else "author"
    run_id = args.run_id if args else None
    if run_id is not None:
        from .backend import BackendError

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
        host_dirs=_host_dirs(transport, args),
        toolsets=_toolset_names(args.toolsets) if args else None,
    )
    if transport == "stdio":
        from .stop_signals import serve_until_stopped

        await serve_until_stopped(partial(_serve_stdio, server))
        return
    from .mcp_server.http import serve_http

    assert args is not None
    http_kind: HttpTransport = "sse" if transport == "sse" else "http"
    # The run pages show scorer outputs and reference diffs: an author's, never a solver's.
    pages = backend if role == "author" else None
    await serve_http(
        server, http_kind, host=args.host, port=args.port, token=args.token, log_level=args.log_level, backend=pages
    )
