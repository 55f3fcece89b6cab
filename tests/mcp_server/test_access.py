"""SolverBackend (access.py) called directly over a real LocalBackend: every Backend operation is either
checked and passed on, or refused by name. (test_solver.py walks the same rules through an MCP client.)"""

from __future__ import annotations

import inspect

import pytest

from scenario_mcp.backend import Backend, InvalidRequestError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.access import NotVisibleError, SolverBackend
from scenario_mcp.models import DevboxCreateParameters, StartScenarioRunParameters

from .helpers import SECRET_REFERENCE, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio

# What a solver may call (each checked and redacted); everything else in Backend is authoring.
SOLVING = {
    "get_scenario",
    "list_scenarios",
    "start_run",
    "get_run",
    "list_runs",
    "score_run",
    "complete_run",
    "cancel_run",
    "run_logs",
    "get_devbox",
    "list_devboxes",  # refused, with its own hint: get_run shows the devbox
    "execute",
    "execute_async",
    "get_execution",
    "wait_for_execution",
    "kill_execution",
    "send_stdin",
    "execution_output",
    "read_file",
    "write_file",
    "upload_file",
    "download_file",
    "list_files",
}
BACKEND_METHODS = sorted(name for name, value in vars(Backend).items() if inspect.iscoroutinefunction(value))


def test_solver_backend_writes_out_every_backend_method_with_its_signature() -> None:
    for name in BACKEND_METHODS:
        # Written out in SolverBackend or in what it refuses (authoring_only.py), never delegated wholesale.
        mine = next((vars(cls)[name] for cls in SolverBackend.__mro__[:-1] if name in vars(cls)), None)
        assert mine is not None, name
        assert inspect.signature(mine) == inspect.signature(getattr(Backend, name)), name


async def test_authoring_operations_are_refused_by_name(backend: LocalBackend) -> None:
    solver = SolverBackend(backend)
    refused_names = sorted(set(BACKEND_METHODS) - SOLVING)
    assert len(refused_names) == 69  # objects, network policies, agents, secrets, tunnels, wait_for_blueprint, usage
    for name in refused_names:
        parameters = inspect.signature(getattr(Backend, name)).parameters.values()
        positional = [p for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        required_kw = {p.name: None for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
        with pytest.raises(InvalidRequestError) as refused:
            await getattr(solver, name)(*[None] * len(positional), **required_kw)
        assert refused.value.message == f"{name} is not available to a solver session (the server runs --role solver)"


async def test_unpinned_solver_works_only_in_devboxes_of_runs_it_was_shown(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    author_box = await backend.create_devbox(DevboxCreateParameters(name="author-only"))
    await backend.write_file(author_box.id, "answer.txt", SECRET_REFERENCE)
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    solver = SolverBackend(backend)

    with pytest.raises(NotVisibleError, match=r"call get_run\(run_id\) and use its devbox_id"):
        await solver.read_file(author_box.id, "answer.txt")
    with pytest.raises(NotVisibleError):
        await solver.read_file(run.devbox_id, "calc.py")  # not shown yet
    shown = await solver.get_run(run.id)
    assert "a - b" in await solver.read_file(shown.devbox_id, "calc.py")
    with pytest.raises(NotVisibleError):
        await solver.read_file(author_box.id, "answer.txt")  # still out of reach
    with pytest.raises(InvalidRequestError, match="get_run shows your devbox"):
        await solver.list_devboxes()
    assert (await solver.get_scenario(scenario.id)).reference_output is None
    await backend.cancel_run(run.id)


async def test_pinned_solver_finds_nothing_but_its_run(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    mine = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    theirs = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    solver = SolverBackend(backend, pinned_run_id=mine.id)

    assert (await solver.get_run(mine.id)).id == mine.id
    assert "a - b" in await solver.read_file(mine.devbox_id, "calc.py")  # its devbox, without asking first
    with pytest.raises(NotFoundError, match="scenario run"):
        await solver.get_run(theirs.id)
    with pytest.raises(NotFoundError, match="devbox"):
        await solver.execute(theirs.devbox_id, "true")
    with pytest.raises(InvalidRequestError, match=f"pinned to run {mine.id}"):
        await solver.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    assert [r.id for r in (await solver.list_runs()).runs] == [mine.id]
    assert (await solver.list_runs(state="canceled")).runs == []
    for run in (mine, theirs):
        await backend.cancel_run(run.id)
