"""Roles: what a solver session may see and touch.

A solver never sees a reference output, a scorer's body or its test files, in any tool result,
resource or prompt. Rather than trusting every tool to remember that, a solver session talks to a
`SolverBackend`: a deny-by-default implementation of Backend over the real one that checks access
(a session pinned with `--run` sees one run, its scenario and its devbox; everything else is "not
found"), refuses every authoring operation, and redacts every view on its way out (redaction.py).
Tools, resources and prompts are the same code for both roles; only the backend they are handed
differs. Every Backend method is written out, here or in authoring_only.py (what a solver is
refused), so mypy checks that SolverBackend is one and a method added to the protocol must be
decided on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..backend import Backend, InvalidRequestError, NotFoundError
from ..models import (
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    RunLogEntry,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioView,
    StartScenarioRunParameters,
)
from .authoring_only import AuthoringOnly
from .redaction import HIDDEN_OUTPUT, SOLVER_SEES_SCORER_OUTPUT, redact_logs, redact_run, redact_scenario

# HIDDEN_OUTPUT and SOLVER_SEES_SCORER_OUTPUT are redaction.py's, named here too: they are the
# solver policy's public words (what a solver sees instead, and the key that lets it see more).
__all__ = ["HIDDEN_OUTPUT", "SOLVER_SEES_SCORER_OUTPUT", "NotVisibleError", "Role", "SolverBackend"]

Role = Literal["author", "solver"]


class NotVisibleError(NotFoundError):
    """Not found, as far as this session can tell, with a hint on how to make it visible."""

    def __init__(self, kind: str, ident: str, hint: str) -> None:
        super().__init__(kind, ident)
        self.message = f"{kind} {ident!r} not found; {hint}"
        self.args = (self.message,)


class SolverBackend(AuthoringOnly):
    """The Backend a solver session gets: access checks and redaction, deny by default.

    Unpinned, a solver sees every scenario (redacted) and run, and may work only in devboxes of
    runs it has been shown (start_run / get_run / list_runs): an author's devboxes, including a
    validation devbox holding the reference output, are out of reach. Pinned to a run, it sees
    that run, its scenario and its devbox, and nothing else exists.
    """

    def __init__(self, inner: Backend, *, pinned_run_id: str | None = None) -> None:
        self._inner = inner
        self.pinned_run_id = pinned_run_id
        self._pin: ScenarioRunView | None = None
        self._run_devboxes: set[str] = set()

    # --- access ----------------------------------------------------------------------------------

    async def pinned_run(self) -> ScenarioRunView | None:
        if self.pinned_run_id is None:
            return None
        if self._pin is None:
            self._pin = await self._inner.get_run(self.pinned_run_id)
            self._run_devboxes.add(self._pin.devbox_id)
        return self._pin

    async def _check_scenario(self, scenario_id: str) -> None:
        pin = await self.pinned_run()
        if pin is not None and scenario_id != pin.scenario_id:
            raise NotFoundError("scenario", scenario_id)

    async def _check_run(self, run_id: str) -> None:
        pin = await self.pinned_run()
        if pin is not None and run_id != pin.id:
            raise NotFoundError("scenario run", run_id)

    async def _check_devbox(self, devbox_id: str) -> None:
        pin = await self.pinned_run()
        if pin is not None:
            if devbox_id != pin.devbox_id:
                raise NotFoundError("devbox", devbox_id)
            return
        if devbox_id not in self._run_devboxes:
            raise NotVisibleError(
                "devbox",
                devbox_id,
                "a solver works only in the devbox of a scenario run: call get_run(run_id) and use its devbox_id",
            )

    async def _scenario_of(self, run: ScenarioRunView) -> ScenarioView | None:
        try:
            return await self._inner.get_scenario(run.scenario_id)
        except NotFoundError:
            return None

    async def _shown(
        self, run: ScenarioRunView, scenarios: dict[str, ScenarioView | None] | None = None
    ) -> ScenarioRunView:
        self._run_devboxes.add(run.devbox_id)
        cache = {} if scenarios is None else scenarios
        if run.scenario_id not in cache:
            cache[run.scenario_id] = await self._scenario_of(run)
        return redact_run(run, cache[run.scenario_id])

    # --- scenarios: read only, redacted ----------------------------------------------------------

    async def get_scenario(self, scenario_id: str) -> ScenarioView:
        await self._check_scenario(scenario_id)
        return redact_scenario(await self._inner.get_scenario(scenario_id))

    async def list_scenarios(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        benchmark_id: str | None = None,
        validation_type: str | None = None,
    ) -> ScenarioListView:
        pin = await self.pinned_run()
        if pin is not None:
            scenario = await self.get_scenario(pin.scenario_id)
            keep = (
                starting_after is None
                and name in (None, scenario.name)
                and validation_type in (None, scenario.validation_type)
                and (
                    benchmark_id is None or scenario.id in (await self._inner.get_benchmark(benchmark_id)).scenario_ids
                )
            )
            mine = [scenario] if keep else []
            return ScenarioListView(scenarios=mine, has_more=False, total_count=len(mine))
        page = await self._inner.list_scenarios(
            limit=limit,
            starting_after=starting_after,
            name=name,
            benchmark_id=benchmark_id,
            validation_type=validation_type,
        )
        return page.model_copy(update={"scenarios": [redact_scenario(s) for s in page.scenarios]})

    # --- runs ------------------------------------------------------------------------------------

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        if self.pinned_run_id is not None:
            raise InvalidRequestError(f"this session is pinned to run {self.pinned_run_id}; it cannot start other runs")
        if params.run_profile and params.run_profile.secrets:
            # Its commands could write a value to a file and read it back: secrets are the author's to give.
            raise InvalidRequestError(
                "a solver session cannot give a run secrets; ask the scenario's author (or the benchmark "
                "runner's --secret) to start the run with them"
            )
        mounts = params.run_profile.mounts if params.run_profile else None
        # A solver mounts its own agent and files; objects and clones read what the server keeps or reaches.
        refused = [m.type for m in mounts or [] if m.type not in ("agent_mount", "file_mount")]
        if refused:
            raise InvalidRequestError(
                f"a solver session cannot start a run with a {refused[0]}; only agent_mount and file_mount "
                "(ask the scenario's author to put the rest in its environment)"
            )
        return await self._shown(await self._inner.start_run(params))

    async def get_run(self, run_id: str) -> ScenarioRunView:
        await self._check_run(run_id)
        return await self._shown(await self._inner.get_run(run_id))

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
        name: str | None = None,
    ) -> ScenarioRunListView:
        pin = await self.pinned_run()
        if pin is not None:
            run = await self.get_run(pin.id)
            keep = (
                starting_after is None
                and scenario_id in (None, run.scenario_id)
                and state in (None, run.state.value)
                and benchmark_run_id in (None, run.benchmark_run_id)
                and name in (None, run.name)
            )
            runs = [run] if keep else []
            return ScenarioRunListView(runs=runs, has_more=False, total_count=len(runs))
        page = await self._inner.list_runs(
            limit=limit,
            starting_after=starting_after,
            scenario_id=scenario_id,
            state=state,
            benchmark_run_id=benchmark_run_id,
            name=name,
        )
        scenarios: dict[str, ScenarioView | None] = {}  # one lookup per scenario, not per run
        return page.model_copy(update={"runs": [await self._shown(r, scenarios) for r in page.runs]})

    async def score_run(self, run_id: str) -> ScenarioRunView:
        await self._check_run(run_id)
        return await self._shown(await self._inner.score_run(run_id))

    async def complete_run(self, run_id: str) -> ScenarioRunView:
        await self._check_run(run_id)
        return await self._shown(await self._inner.complete_run(run_id))

    async def cancel_run(self, run_id: str) -> ScenarioRunView:
        await self._check_run(run_id)
        return await self._shown(await self._inner.cancel_run(run_id))

    async def run_logs(self, run_id: str) -> list[RunLogEntry]:
        await self._check_run(run_id)
        run = await self._inner.get_run(run_id)
        return redact_logs(await self._inner.run_logs(run_id), await self._scenario_of(run))

    # --- devboxes: a run's own only (the rest is refused, authoring_only.py) ---------------------

    async def get_devbox(self, devbox_id: str) -> DevboxView:
        await self._check_devbox(devbox_id)
        return await self._inner.get_devbox(devbox_id)

    # --- execution and files, in a run's devbox ----------------------------------------------------

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        command_id: str | None = None,
    ) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.execute(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            command_id=command_id,
        )

    async def execute_async(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        attach_stdin: bool = False,
        command_id: str | None = None,
    ) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.execute_async(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            attach_stdin=attach_stdin,
            command_id=command_id,
        )

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.get_execution(devbox_id, execution_id)

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.wait_for_execution(
            devbox_id, execution_id, statuses=statuses, timeout_seconds=timeout_seconds
        )

    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.kill_execution(devbox_id, execution_id, kill_process_group=kill_process_group)

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        await self._check_devbox(devbox_id)
        return await self._inner.send_stdin(devbox_id, execution_id, text=text, signal=signal)

    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        await self._check_devbox(devbox_id)
        return await self._inner.execution_output(devbox_id, execution_id, stream=stream, offset=offset)

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        await self._check_devbox(devbox_id)
        return await self._inner.read_file(devbox_id, file_path)

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self._check_devbox(devbox_id)
        await self._inner.write_file(devbox_id, file_path, contents)

    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None:
        await self._check_devbox(devbox_id)
        await self._inner.upload_file(devbox_id, path, data)

    async def download_file(self, devbox_id: str, path: str) -> bytes:
        await self._check_devbox(devbox_id)
        return await self._inner.download_file(devbox_id, path)

    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]:
        await self._check_devbox(devbox_id)
        return await self._inner.list_files(devbox_id, path)


if TYPE_CHECKING:

    def _is_a_backend(solver: SolverBackend) -> Backend:
        return solver  # mypy --strict: SolverBackend implements every Backend method, signatures included
