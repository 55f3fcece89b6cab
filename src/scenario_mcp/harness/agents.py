"""The agents a benchmark run can drive through a scenario run, and how each is run.

- `oracle`: applies the scenario's reference output (as reference validation does).
- `nop`: does nothing.
- `command:CMD`: CMD runs inside the run's devbox, in its working directory, with the problem
  statement in `$SCENARIO_PROBLEM_STATEMENT` and in the file `$SCENARIO_PROBLEM_STATEMENT_FILE`.
- `host:CMD`: CMD runs on this machine with `SCENARIO_RUN_ID`, `SCENARIO_PROBLEM_STATEMENT_FILE` and
  `SCENARIO_MCP_CONFIG`: an MCP client config (`{"mcpServers": ...}`, as Claude Code and Claude
  Desktop read it) naming a solver server pinned to the run, served over streamable HTTP on
  127.0.0.1 with a bearer token for this attempt only (`claude -p --mcp-config "$SCENARIO_MCP_CONFIG"`).
- `module:function`: a Python agent, `async def agent(run: ScenarioRunView, client: mcp.Client)`,
  its client connected to a solver server pinned to the run.

Each has the attempt's agent timeout; an agent that overruns is stopped (its command killed, its
host process group killed, its coroutine cancelled) and the run is scored as it stands.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import secrets
import shlex
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from ..backend import Backend, BackendError
from ..models import ScenarioRunView, ScenarioView
from ..reference_validation import apply_reference

AgentKind = Literal["oracle", "nop", "command", "host", "module"]
PROBLEM_FILE = "/tmp/scenario_problem_statement.md"  # in the devbox: outside the working directory
OUTPUT_TAIL = 20_000  # characters of an agent's output kept
AGENTS_HELP = (
    "oracle, nop, command:CMD (in the devbox), host:CMD (on this machine, with an MCP config), module:function"
)


@dataclass(frozen=True)
class AgentSpec:
    kind: AgentKind
    value: str = ""

    def __str__(self) -> str:
        return self.kind if not self.value else f"{self.kind}:{self.value}"


@dataclass
class AgentOutcome:
    exit_status: int | None = None
    output: str = ""
    timed_out: bool = False


def parse_agent(
    text: str, *, allowed: tuple[AgentKind, ...] = ("oracle", "nop", "command", "host", "module")
) -> AgentSpec:
    """`oracle`, `nop`, `command:CMD`, `host:CMD` or `module:function`; a ValueError saying what is
    accepted otherwise."""
    text = text.strip()
    kind, _, value = text.partition(":")
    accepted = ", ".join(a for a in AGENTS_HELP.split(", ") if a.split(":")[0] in allowed)
    if text in ("oracle", "nop"):
        spec = AgentSpec(text)  # type: ignore[arg-type]
    elif kind in ("command", "host"):
        if not value.strip():
            raise ValueError(f"agent {kind}: names no command; e.g. {kind}:'my-agent --yes'")
        spec = AgentSpec(kind, value.strip())  # type: ignore[arg-type]
    elif _is_module_path(text):
        spec = AgentSpec("module", text)
    else:
        raise ValueError(f"unknown agent {text!r}; give one of: {accepted}")
    if spec.kind not in allowed:
        raise ValueError(f"agent {spec.kind} is not available here; give one of: {accepted}")
    return spec


def _is_module_path(text: str) -> bool:
    module, _, function = text.partition(":")
    return bool(module) and function.isidentifier() and all(part.isidentifier() for part in module.split("."))


def load_module_agent(path: str) -> Callable[[ScenarioRunView, Any], Awaitable[Any]]:
    """The async function `module:function` names; a ValueError saying why not."""
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"agent module {module_name!r} cannot be imported: {exc}") from exc
    function = getattr(module, function_name, None)
    if function is None or not inspect.iscoroutinefunction(function):
        raise ValueError(
            f"{path}: {module_name} has no async function {function_name!r}; "
            "write `async def agent(run, client)` (client: a connected mcp.Client)"
        )
    return function  # type: ignore[no-any-return]


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "[...]\n" + text[-OUTPUT_TAIL:]


async def run_agent(
    spec: AgentSpec, backend: Backend, scenario: ScenarioView, run: ScenarioRunView, timeout: float
) -> AgentOutcome:
    """Let the agent act on the run's devbox for at most `timeout` seconds."""
    if spec.kind == "nop":
        return AgentOutcome()
    if spec.kind == "oracle":
        if not scenario.reference_output:
            raise BackendError(f"scenario {scenario.id} has no reference output for the oracle agent to apply")
        with anyio.fail_after(timeout):
            return AgentOutcome(0, _tail(await apply_reference(backend, scenario, run.devbox_id)))
    if spec.kind == "command":
        return await _in_devbox(spec.value, backend, scenario, run, timeout)
    if spec.kind == "host":
        return await _on_host(spec.value, backend, scenario, run, timeout)
    return await _module(spec.value, backend, run, timeout)


async def _in_devbox(
    command: str, backend: Backend, scenario: ScenarioView, run: ScenarioRunView, timeout: float
) -> AgentOutcome:
    await backend.upload_file(run.devbox_id, PROBLEM_FILE, scenario.input_context.problem_statement.encode())
    wrapped = (
        f"export SCENARIO_RUN_ID={shlex.quote(run.id)} SCENARIO_PROBLEM_STATEMENT_FILE={PROBLEM_FILE}; "
        f'SCENARIO_PROBLEM_STATEMENT="$(cat {PROBLEM_FILE})"; export SCENARIO_PROBLEM_STATEMENT\n{command}'
    )
    started = anyio.current_time()
    result = await backend.execute(
        run.devbox_id, wrapped, working_directory=scenario.working_directory, timeout_seconds=timeout
    )
    output = (result.stdout or "") + (result.stderr or "")
    timed_out = "[scenario-mcp] timed out after" in (result.stderr or "") or (
        result.exit_status != 0 and anyio.current_time() - started >= timeout
    )
    return AgentOutcome(result.exit_status, _tail(output), timed_out)


@contextlib.asynccontextmanager
async def solver_server_url(backend: Backend, run_id: str) -> AsyncIterator[tuple[str, str]]:
    """A solver MCP server pinned to `run_id` over streamable HTTP on 127.0.0.1, for as long as the
    context lasts: its URL and the bearer token it requires."""
    import uvicorn

    from ..mcp_server.http import MCP_PATH, http_app, listening_socket
    from ..mcp_server.server import build_server

    token = secrets.token_urlsafe(24)
    server = build_server(backend, role="solver", run_id=run_id)
    sock = listening_socket("127.0.0.1", 0, socket.AF_INET)  # sends at once: no delayed-ACK stall per call
    port = sock.getsockname()[1]
    app = http_app(server, "http", host="127.0.0.1", token=token)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uv = uvicorn.Server(config)
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await uv.serve([sock])
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            while not uv.started and not stopped.is_set():
                await anyio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{port}{MCP_PATH}", token
            finally:
                uv.should_exit = True
                with anyio.move_on_after(5, shield=True):
                    await stopped.wait()
                tg.cancel_scope.cancel()
    finally:
        sock.close()


def mcp_config(url: str, token: str) -> dict[str, Any]:
    """The `mcpServers` config Claude Code (`--mcp-config`) and Claude Desktop read."""
    return {
        "mcpServers": {"scenario-mcp": {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}}
    }


async def _on_host(
    command: str, backend: Backend, scenario: ScenarioView, run: ScenarioRunView, timeout: float
) -> AgentOutcome:
    with tempfile.TemporaryDirectory(prefix="scenario-mcp-agent-") as directory:
        problem = Path(directory) / "problem_statement.md"
        problem.write_text(scenario.input_context.problem_statement)
        config = Path(directory) / "mcp.json"
        async with solver_server_url(backend, run.id) as (url, token):
            config.write_text(json.dumps(mcp_config(url, token), indent=2))
            config.chmod(0o600)
            env = {
                **os.environ,
                "SCENARIO_RUN_ID": run.id,
                "SCENARIO_DEVBOX_ID": run.devbox_id,
                "SCENARIO_PROBLEM_STATEMENT_FILE": str(problem),
                "SCENARIO_MCP_CONFIG": str(config),
            }
            output = bytearray()
            process = await anyio.open_process(
                ["/bin/sh", "-c", command], env=env, stdin=None, start_new_session=True, stderr=-2
            )
            timed_out = False

            async def read() -> None:
                assert process.stdout is not None
                async for chunk in process.stdout:
                    output.extend(chunk)
                    if len(output) > 4 * OUTPUT_TAIL:
                        del output[: len(output) - OUTPUT_TAIL]

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    with anyio.move_on_after(timeout) as scope:
                        await process.wait()
                    if scope.cancelled_caught:
                        timed_out = True
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(process.pid, signal.SIGKILL)
                        await process.wait()
            finally:
                with contextlib.suppress(ProcessLookupError):  # its children too, whatever happened
                    os.killpg(process.pid, signal.SIGKILL)
                with anyio.CancelScope(shield=True):
                    await process.aclose()
    return AgentOutcome(process.returncode, _tail(output.decode(errors="replace")), timed_out)


async def _module(path: str, backend: Backend, run: ScenarioRunView, timeout: float) -> AgentOutcome:
    from mcp import Client

    from ..mcp_server.server import build_server

    function = load_module_agent(path)
    server = build_server(backend, role="solver", run_id=run.id)
    async with Client(server) as client:
        with anyio.move_on_after(timeout) as scope:
            returned = await function(run, client)
    if scope.cancelled_caught:
        return AgentOutcome(None, "", True)
    return AgentOutcome(0, _tail("" if returned is None else str(returned)))
