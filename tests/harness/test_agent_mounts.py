"""Installed agents mounted into every attempt of a benchmark run, on the real engine: an object
agent (an uploaded tarball with a bin/ script) run by a `command:` agent from PATH; and the clear
errors for bad syntax, an unknown agent and one whose install did not complete."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError
from scenario_mcp.harness.agent_mounts import AgentMountSpec, parse_agent_mount, resolve_agent_mounts
from scenario_mcp.harness.agents import parse_agent
from scenario_mcp.harness.runner import SuiteOptions, SuiteRun
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import AgentMount, AgentView
from tests.local.test_agents import installed, tarball, uploaded

from .test_runner import running_devboxes, suite

pytestmark = pytest.mark.anyio

# Solves test_runner's trivial scenarios: a file `done` in the working directory.
SOLVE = b'#!/bin/sh\necho "solving with $0 in $(pwd)"\necho solved > done\n'


async def solver_agent(backend: LocalBackend, name: str = "solver", setup: list[str] | None = None) -> AgentView:
    object_id = await uploaded(backend, tarball({"bin/solve": (SOLVE, 0o755)}))
    source = {"type": "object", "object": {"object_id": object_id, **({"agent_setup": setup} if setup else {})}}
    return await installed(backend, {"name": name, "version": "1", "source": source}, timeout=60)


def test_the_syntax_is_name_version_and_an_absolute_path() -> None:
    assert parse_agent_mount("solver:/opt/solver") == AgentMountSpec("solver", None, "/opt/solver")
    assert parse_agent_mount("solver@1.2:/opt/s") == AgentMountSpec("solver", "1.2", "/opt/s")
    # An npm scope is part of the name; the version follows the last @.
    assert parse_agent_mount("@anthropic-ai/claude-code@2.0.1:/opt/claude") == AgentMountSpec(
        "@anthropic-ai/claude-code", "2.0.1", "/opt/claude"
    )
    assert str(parse_agent_mount("solver@1.2:/opt/s")) == "solver@1.2:/opt/s"
    for bad, says in (
        ("solver", "names no absolute PATH"),
        ("solver:opt/solver", "names no absolute PATH"),
        ("solver:/opt/../etc", "not a place for a mount"),
        (":/opt/x", "empty NAME"),
        ("solver@:/opt/x", "empty VERSION"),
    ):
        with pytest.raises(ValueError, match=says) as caught:
            parse_agent_mount(bad)
        assert "NAME[@VERSION]:PATH" in str(caught.value) or "such as /opt" in str(caught.value)


async def test_a_mounted_agent_runs_from_path_in_every_attempt(backend: LocalBackend) -> None:
    agent = await solver_agent(backend)
    assert agent.status == "build_complete", (await backend.agent_logs(agent.id)).logs
    mounts = await resolve_agent_mounts(backend, [parse_agent_mount("solver@1:/opt/solver")])
    assert mounts == [AgentMount(agent_id=agent.id, agent_path="/opt/solver")]
    options = SuiteOptions(agent=parse_agent("command:solve"), mounts=list(mounts), concurrency=2)
    runner = SuiteRun(backend, options)
    await runner.start(await suite(backend, 2))
    results = await runner.run()
    assert [(r.score, r.agent_exit_status) for r in results.results] == [(1.0, 0), (1.0, 0)]
    assert all(r.agent_output == "solving with /opt/solver/bin/solve in /home/user\n" for r in results.results)
    # The mount is outside the working directory: the diff holds the agent's work alone.
    assert results.results[0].diff == "diff done\n--- a/done\n+++ b/done\n@@ -0,0 +1 @@\n+solved\n"
    benchmark_run = await backend.get_benchmark_run(results.benchmark_run_id)
    assert benchmark_run.state == "completed" and benchmark_run.metadata["mounts"] == f"{agent.id}:/opt/solver"
    assert await running_devboxes(backend) == []

    # Without the mount the same command finds nothing to run.
    bare = SuiteRun(backend, SuiteOptions(agent=parse_agent("command:solve")))
    await bare.start(await suite(backend, 1))
    [attempt] = (await bare.run()).results
    assert attempt.score == 0.5 and attempt.agent_exit_status == 127


async def test_an_agent_mount_that_names_no_installed_agent_fails_before_any_attempt(
    backend: LocalBackend,
) -> None:
    await solver_agent(backend)
    with pytest.raises(InvalidRequestError, match=r"no agent 'nobody' is installed \(agents here: solver@1\)"):
        await resolve_agent_mounts(backend, [parse_agent_mount("nobody:/opt/x")])
    with pytest.raises(InvalidRequestError, match="no agent 'solver@2' is installed"):
        await resolve_agent_mounts(backend, [parse_agent_mount("solver@2:/opt/x")])
    # A name that only contains the agent's is not it.
    with pytest.raises(InvalidRequestError, match="no agent 'solv' is installed"):
        await resolve_agent_mounts(backend, [parse_agent_mount("solv:/opt/x")])

    broken = await solver_agent(backend, "broken", setup=["echo 'no compiler here' >&2; exit 3"])
    assert broken.status == "failed"
    with pytest.raises(InvalidStateError, match=rf"agent broken \({broken.id}\) is `failed`, not build_complete: "):
        await resolve_agent_mounts(backend, [parse_agent_mount("broken:/opt/x")])

    # Mounts given as Runloop's (as run_benchmark takes them) are checked when the run starts:
    # no benchmark run is left behind.
    for mount, error in (
        (AgentMount(agent_name="nobody", agent_path="/opt/x"), InvalidRequestError),
        (AgentMount(agent_id=broken.id, agent_path="/opt/x"), InvalidStateError),
    ):
        runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("command:solve"), mounts=[mount]))
        with pytest.raises(error):
            await runner.start(await suite(backend, 1))
    assert (await backend.list_benchmark_runs()).runs == []
