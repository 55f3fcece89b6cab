"""Run an agent over a benchmark: every attempt a scenario run inside one benchmark run.

Attempts run at most `concurrency` at a time, and at most `startups` of them make their
environment at once (a burst of devbox starts would stall the host). Each attempt: start the
run (its devbox), note the working directory as it was, let the agent act (for at most its
timeout), take the agent's changes as a diff, score the run, complete it. Whatever ends an
attempt early (an error, a cancel) cancels its run, which shuts its devbox down.

The results are kept beside the benchmark run as a storage object (`RESULTS_OBJECT_PREFIX` + its
id), so a report can be made later, and `--resume` re-runs only the attempts that errored or
never ran. A benchmark run is completed only when every attempt ran without error; until then it
stays `running`, to be resumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio

from ..backend import Backend, BackendError, InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    Mount,
    ObjectCreateParameters,
    RunProfile,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioView,
    SecretCreateParameters,
    SecretUpdateParameters,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    now_ms,
)
from .agent_mounts import describe, pinned_mounts
from .agents import AgentSpec, run_agent
from .results import RESULTS_OBJECT_PREFIX, AttemptResult, PhaseTimes, SuiteResults

DEFAULT_AGENT_TIMEOUT = 600.0
# A scenario's metadata may set its agent timeout (task import does, from the task's own).
AGENT_TIMEOUT_KEY = "scenario_mcp.agent_timeout_sec"
BASELINE_DIR = "/tmp/.scenario-mcp-baseline"  # the working directory as the agent found it
BASELINE_MAX_KB = 50 * 1024  # a bigger working directory gets no diff (copying it costs too much)
DIFF_MAX_BYTES = 64 * 1024  # what an execution returns inline
_OPEN = (ScenarioRunState.RUNNING, ScenarioRunState.SCORING)

OnResult = Callable[[AttemptResult], Awaitable[None] | None]


def default_concurrency() -> int:
    return 2 * (os.cpu_count() or 1)


@dataclass
class SuiteOptions:
    agent: AgentSpec
    concurrency: int = field(default_factory=default_concurrency)
    attempts: int = 1
    agent_timeout: float = DEFAULT_AGENT_TIMEOUT
    run_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # the benchmark run's, besides agent and attempts
    diff: bool = True
    startups: int = field(default_factory=lambda: max(2, os.cpu_count() or 1))
    mounts: list[Mount] = field(default_factory=list)  # in every attempt's devbox (its run's runProfile)
    secrets: dict[str, str] = field(default_factory=dict)  # env var -> secret name, in every attempt's devbox


def parse_secret_flags(flags: Sequence[str], environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """`--secret NAME` (a stored secret) and `--secret NAME=env:VAR` (this process's $VAR, read once):
    the run profile's `{env var: secret name}`, and the values to store under their names first.
    Raises ValueError naming the flag at fault."""
    mapping: dict[str, str] = {}
    values: dict[str, str] = {}
    for flag in flags:
        name, _, source = flag.partition("=")
        if not name:
            raise ValueError(f"--secret {flag!r}: give NAME or NAME=env:VAR")
        if source:
            if not source.startswith("env:") or not source[4:]:
                raise ValueError(f"--secret {flag!r}: the value comes only from the environment: NAME=env:VAR")
            if not environ.get(source[4:]):
                raise ValueError(f"--secret {flag!r}: ${source[4:]} is not set (or empty) in this environment")
            values[name] = environ[source[4:]]
        mapping[name] = name
    return mapping, values


async def store_secrets(backend: Backend, values: Mapping[str, str]) -> None:
    """Each value under its name: created, or the stored one replaced."""
    for name, value in values.items():
        try:
            await backend.update_secret(name, SecretUpdateParameters(value=value))
        except NotFoundError:
            await backend.create_secret(SecretCreateParameters(name=name, value=value))


async def resolve_benchmark(backend: Backend, targets: Sequence[str], imported: Sequence[str] = ()) -> BenchmarkView:
    """The benchmark to run: one named by id or name, or a new one over the scenarios given (by id,
    by the benchmarks they are in, or imported from files: `imported`)."""
    if len(targets) == 1 and not imported:
        found = await _benchmark(backend, targets[0])
        if found is not None:
            return found
    scenario_ids: list[str] = list(imported)
    for target in targets:
        benchmark = await _benchmark(backend, target)
        if benchmark is not None:
            scenario_ids.extend(benchmark.scenario_ids)
            continue
        try:
            scenario_ids.append((await backend.get_scenario(target)).id)
        except NotFoundError:
            raise InvalidRequestError(
                f"{target!r} is no benchmark (id or name), scenario id, or task directory; "
                "list them with `list_benchmarks` / `list_scenarios`"
            ) from None
    if not scenario_ids:
        raise InvalidRequestError("no scenarios to run: name a benchmark, scenario ids or task directories")
    unique = list(dict.fromkeys(scenario_ids))
    return await backend.create_benchmark(
        BenchmarkCreateParameters(name=f"bench run {time.strftime('%Y-%m-%d %H:%M:%S')}", scenario_ids=unique)
    )


async def _benchmark(backend: Backend, target: str) -> BenchmarkView | None:
    if target.startswith("bmd_"):
        try:
            return await backend.get_benchmark(target)
        except NotFoundError:
            return None
    page = await backend.list_benchmarks(limit=100, name=target)
    exact = [b for b in page.benchmarks if b.name == target]
    return exact[0] if exact else None


class SuiteRun:
    """One benchmark run of an agent: start it (or resume one), run its attempts, keep the results."""

    def __init__(self, backend: Backend, options: SuiteOptions, on_result: OnResult | None = None) -> None:
        self.backend = backend
        self.options = options
        self.on_result = on_result
        self.results: list[AttemptResult] = []
        self.total = 0
        self.benchmark: BenchmarkView | None = None
        self.benchmark_run: BenchmarkRunView | None = None
        self.suite: SuiteResults | None = None  # once run() has ended, however it ended
        self._started = time.monotonic()
        self._start_ms = now_ms()

    async def start(self, benchmark: BenchmarkView) -> BenchmarkRunView:
        await self._pin_mounts()
        self.benchmark = benchmark
        self.benchmark_run = await self.backend.start_benchmark_run(
            StartBenchmarkRunParameters(
                benchmark_id=benchmark.id,
                run_name=self.options.run_name or f"{benchmark.name} ({self.options.agent})",
                metadata={
                    **self.options.metadata,
                    "agent": str(self.options.agent),
                    "attempts": str(self.options.attempts),
                    **({"mounts": describe(self.options.mounts)} if self.options.mounts else {}),
                },
                start_scenario_runs=False,
            )
        )
        return self.benchmark_run

    async def resume(self, benchmark_run_id: str) -> BenchmarkRunView:
        """Take up a benchmark run: keep its attempts that ran without error."""
        await self._pin_mounts()
        run = await self.backend.get_benchmark_run(benchmark_run_id)
        if run.state != "running":
            raise InvalidStateError(
                f"benchmark run {run.id} is `{run.state}`: nothing to resume (only a run left `running` by an "
                "interrupt or errors can be); start a new one"
            )
        self.benchmark_run = run
        self.benchmark = await self.backend.get_benchmark(run.benchmark_id)
        previous = await load_results(self.backend, run.id)
        if previous is not None:
            self._start_ms = previous.start_time_ms
            self.options.attempts = max(self.options.attempts, previous.attempts_per_scenario)
            self.results = [r for r in previous.results if r.error is None and r.state == "completed"]
        return run

    async def _pin_mounts(self) -> None:
        """Check the mounts' agents once, before any attempt, and keep every attempt to the same."""
        self.options.mounts = await pinned_mounts(self.backend, self.options.mounts)

    async def run(self) -> SuiteResults:
        """Run every attempt not yet done; the results so far when cancelled (then re-raised)."""
        assert self.benchmark is not None and self.benchmark_run is not None
        scenarios = [await self.backend.get_scenario(s) for s in self.benchmark.scenario_ids]
        done = {(r.scenario_id, r.attempt) for r in self.results}
        jobs = [
            (scenario, attempt)
            for attempt in range(1, self.options.attempts + 1)
            for scenario in scenarios
            if (scenario.id, attempt) not in done
        ]
        self.total = len(scenarios) * self.options.attempts
        running = anyio.CapacityLimiter(max(1, self.options.concurrency))
        startups = anyio.CapacityLimiter(max(1, min(self.options.startups, self.options.concurrency)))

        async def one(scenario: ScenarioView, attempt: int) -> None:
            async with running:
                result = await run_attempt(
                    self.backend,
                    scenario,
                    attempt,
                    self.benchmark_run.id if self.benchmark_run else "",
                    self.options,
                    startups,
                )
            self.results.append(result)
            if self.on_result is not None:
                maybe = self.on_result(result)
                if maybe is not None:
                    await maybe

        try:
            async with anyio.create_task_group() as tg:
                for scenario, attempt in jobs:
                    tg.start_soon(one, scenario, attempt)
        finally:
            with anyio.CancelScope(shield=True):
                suite = await self._finish()
        return suite

    async def _finish(self) -> SuiteResults:
        assert self.benchmark is not None and self.benchmark_run is not None
        await self._cancel_orphans()
        order = {s: i for i, s in enumerate(self.benchmark.scenario_ids)}
        self.results.sort(key=lambda r: (order.get(r.scenario_id, len(order)), r.attempt))
        complete = len(self.results) == self.total and all(r.error is None for r in self.results)
        if complete:
            try:
                self.benchmark_run = await self.backend.complete_benchmark_run(self.benchmark_run.id)
            except BackendError as exc:
                complete = False
                self.results.append(
                    AttemptResult(
                        scenario_id="", scenario_name="(benchmark run)", attempt=0, state="failed", error=exc.message
                    )
                )
        suite = SuiteResults(
            benchmark_id=self.benchmark.id,
            benchmark_name=self.benchmark.name,
            benchmark_run_id=self.benchmark_run.id,
            agent=str(self.options.agent),
            attempts_per_scenario=self.options.attempts,
            concurrency=self.options.concurrency,
            start_time_ms=self._start_ms,
            duration_s=round(time.monotonic() - self._started, 3),
            complete=complete,
            results=self.results,
        ).summarised()
        with contextlib.suppress(BackendError):  # the run's own records stand; only the details are lost
            await save_results(self.backend, suite)
        self.suite = suite
        return suite

    async def _cancel_orphans(self) -> None:
        """No attempt is in flight now: a run of this benchmark run still open was started by an
        attempt cancelled before it learnt the run's id (an interrupt during start_run). Cancel
        it, which shuts its devbox down."""
        assert self.benchmark_run is not None
        for state in (*_OPEN, ScenarioRunState.SCORED):
            with contextlib.suppress(BackendError):
                page = await self.backend.list_runs(limit=100, benchmark_run_id=self.benchmark_run.id, state=state)
                for run in page.runs:
                    with contextlib.suppress(BackendError):
                        await self.backend.cancel_run(run.id)


async def run_attempt(
    backend: Backend,
    scenario: ScenarioView,
    attempt: int,
    benchmark_run_id: str,
    options: SuiteOptions,
    startups: anyio.CapacityLimiter,
) -> AttemptResult:
    result = AttemptResult(scenario_id=scenario.id, scenario_name=scenario.name, attempt=attempt, state="not_started")
    phases = PhaseTimes()
    run: ScenarioRunView | None = None
    clock = time.monotonic()
    try:
        async with startups:
            run = await backend.start_run(
                StartScenarioRunParameters(
                    scenario_id=scenario.id,
                    run_name=f"{scenario.name} #{attempt}",
                    benchmark_run_id=benchmark_run_id,
                    metadata={"attempt": str(attempt), "agent": str(options.agent)},
                    run_profile=RunProfile(mounts=options.mounts or None, secrets=dict(options.secrets) or None)
                    if options.mounts or options.secrets
                    else None,
                )
            )
        result.run_id, result.devbox_id, result.state = run.id, run.devbox_id, run.state.value
        wd = scenario.working_directory
        if options.diff:
            await backend.execute(run.devbox_id, _baseline_command(wd), timeout_seconds=120)
        phases.environment, clock = time.monotonic() - clock, time.monotonic()
        try:
            outcome = await run_agent(options.agent, backend, scenario, run, agent_timeout(scenario, options))
            result.agent_exit_status, result.agent_output = outcome.exit_status, outcome.output
            result.agent_timed_out = outcome.timed_out
        except TimeoutError:
            result.agent_timed_out = True
        except BackendError as exc:  # the agent failed: the run is scored as it stands
            result.agent_output = f"[the agent failed] {exc.message}"
        if options.diff:
            result.diff = await _diff(backend, run.devbox_id, wd)
        phases.agent, clock = time.monotonic() - clock, time.monotonic()
        scored = await score(backend, run.id, scenario)
        if scored.state == ScenarioRunState.SCORED:
            scored = await backend.complete_run(run.id)
        result.state = scored.state.value
        if scored.scoring_contract_result is not None:
            result.score = scored.scoring_contract_result.score
            result.scorers = scored.scoring_contract_result.scoring_function_results
        if scored.state != ScenarioRunState.COMPLETED:
            result.error = scored.failure_reason or f"the run ended `{scored.state.value}`, not scored"
        phases.scoring = time.monotonic() - clock
    except BaseException as exc:
        if isinstance(exc, BackendError):
            result.error = exc.message
        elif isinstance(exc, Exception):
            result.error = f"{type(exc).__name__}: {exc}"
        if run is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(30), contextlib.suppress(BackendError):
                result.state = (await backend.cancel_run(run.id)).state.value
        if not isinstance(exc, Exception):
            raise
    result.phases = PhaseTimes(
        environment=round(phases.environment, 4), agent=round(phases.agent, 4), scoring=round(phases.scoring, 4)
    )
    return result


def agent_timeout(scenario: ScenarioView, options: SuiteOptions) -> float:
    given = scenario.metadata.get(AGENT_TIMEOUT_KEY)
    try:
        return float(given) if given else options.agent_timeout
    except ValueError:
        return options.agent_timeout


async def score(backend: Backend, run_id: str, scenario: ScenarioView) -> ScenarioRunView:
    """Score the run and wait until scoring has ended."""
    run = await backend.score_run(run_id)
    functions = len(scenario.scoring_contract.scoring_function_parameters)
    # Often at first (a trivial scorer ends in tens of ms, and a local get_run is a dict lookup),
    # then less (a remote API is not to be asked 50 times a second for long).
    delay, started = 0.005, anyio.current_time()
    with anyio.fail_after(scenario.scorer_timeout_sec * functions + 120):
        while run.state in _OPEN:
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 0.02 if anyio.current_time() - started < 2 else 0.5)
            run = await backend.get_run(run_id)
    return run


def _baseline_command(wd: str) -> str:
    """Copy the working directory aside unless it is big: bash, du and cp, nothing more (a
    process in a devbox is the cost here)."""
    q = shlex.quote(wd)
    small = f'[ "${{s%%[[:space:]]*}}" -lt {BASELINE_MAX_KB} ]'
    return f"s=$(du -sk {q} 2>/dev/null) && {small} && cp -a {q} {BASELINE_DIR}; true"


async def _diff(backend: Backend, devbox_id: str, wd: str) -> str:
    # Plain words: the engine starts diff itself, no shell.
    command = f"diff -ruN --no-dereference -x .git {BASELINE_DIR} {shlex.quote(wd)}"
    result = await backend.execute(devbox_id, command, timeout_seconds=120)
    if result.exit_status not in (0, 1):
        if "No such file" in (result.stderr or ""):
            return "(no diff: the working directory was too big to copy, or missing)"
        return f"(no diff: {(result.stderr or '').strip()[-300:]})"
    text = result.stdout or ""
    if len(text) > DIFF_MAX_BYTES or result.stdout_truncated:
        text = text[:DIFF_MAX_BYTES] + "\n[... the diff was cut here]\n"
    return relabel_diff(text, wd)


def relabel_diff(text: str, wd: str) -> str:
    """diff -ruN's headers as git's: a/PATH and b/PATH, no timestamps."""
    out = []
    for line in text.splitlines():
        if line.startswith(("--- ", "+++ ")):
            path = line[4:].split("\t", 1)[0]
            for root, label in ((BASELINE_DIR, "a"), (wd.rstrip("/"), "b")):
                if path.startswith(root + "/"):
                    path = f"{label}/{path[len(root) + 1 :]}"
            line = f"{line[:4]}{path}"
        elif line.startswith("diff -ruN"):
            line = "diff " + line.rsplit(" ", 1)[-1].replace(wd.rstrip("/") + "/", "")
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


# --- the results object ---------------------------------------------------------------------------


async def save_results(backend: Backend, suite: SuiteResults) -> None:
    name = RESULTS_OBJECT_PREFIX + suite.benchmark_run_id
    old = (await backend.list_objects(limit=100, name=name)).objects
    view = await backend.create_object(
        ObjectCreateParameters(name=name, content_type="text", metadata={"benchmark_run_id": suite.benchmark_run_id})
    )
    await backend.upload_object(view.id, suite.model_dump_json().encode())
    await backend.complete_object(view.id)
    for stale in old:
        if stale.name == name and stale.id != view.id:
            with contextlib.suppress(BackendError):
                await backend.delete_object(stale.id)


async def load_results(backend: Backend, benchmark_run_id: str) -> SuiteResults | None:
    """The results the runner kept of a benchmark run; None when it kept none."""
    name = RESULTS_OBJECT_PREFIX + benchmark_run_id
    found = [o for o in (await backend.list_objects(limit=100, name=name)).objects if o.name == name]
    ready = [o for o in found if o.state == "READ_ONLY"]
    if not ready:
        return None
    data = await backend.download_object(ready[0].id)
    return SuiteResults.model_validate(json.loads(data))


async def results_of(backend: Backend, benchmark_run_id: str) -> SuiteResults:
    """A benchmark run's results: the runner's, or (a run it did not make) its scenario runs'."""
    kept = await load_results(backend, benchmark_run_id)
    if kept is not None:
        return kept
    run = await backend.get_benchmark_run(benchmark_run_id)
    benchmark = await backend.get_benchmark(run.benchmark_id)
    results: list[AttemptResult] = []
    names: dict[str, str] = {}
    starting_after = None
    while True:
        page = await backend.list_runs(limit=100, starting_after=starting_after, benchmark_run_id=run.id)
        for scenario_run in page.runs:
            if scenario_run.scenario_id not in names:
                names[scenario_run.scenario_id] = (await backend.get_scenario(scenario_run.scenario_id)).name
            contract = scenario_run.scoring_contract_result
            results.append(
                AttemptResult(
                    scenario_id=scenario_run.scenario_id,
                    scenario_name=names[scenario_run.scenario_id],
                    attempt=int(scenario_run.metadata.get("attempt", "1") or 1),
                    run_id=scenario_run.id,
                    devbox_id=scenario_run.devbox_id,
                    state=scenario_run.state.value,
                    score=contract.score if contract else None,
                    scorers=contract.scoring_function_results if contract else [],
                    error=scenario_run.failure_reason,
                )
            )
        if not page.has_more or not page.runs:
            break
        starting_after = page.runs[-1].id
    return SuiteResults(
        benchmark_id=benchmark.id,
        benchmark_name=benchmark.name,
        benchmark_run_id=run.id,
        agent=run.metadata.get("agent", "unknown"),
        attempts_per_scenario=max((r.attempt for r in results), default=1),
        concurrency=0,
        start_time_ms=run.start_time_ms,
        duration_s=(run.duration_ms or 0) / 1000,
        complete=run.state == "completed",
        results=results,
    ).summarised()
