"""`scenario-mcp bench run` and `bench report` on a terminal: the progress bar, the end table, and
the files asked for (--json, --junit, --report).

Ctrl-C (or SIGTERM) cancels the attempts in flight, whose runs are canceled and devboxes shut
down; the results so far are kept and printed, and the benchmark run stays open for --resume.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..backend import Backend, BackendError, InvalidRequestError
from ..models import RunLogEntry
from ..tasks.importer import TaskImportError, import_tasks
from ..tasks.task import TaskFormatError
from .agent_mounts import AgentMountSpec, resolve_agent_mounts
from .report import render_report
from .results import AttemptResult, SuiteResults, junit_xml
from .runner import SuiteOptions, SuiteRun, resolve_benchmark, results_of

INTERRUPTED = 130


@dataclass
class Outputs:
    json: Path | None = None
    junit: Path | None = None
    report: Path | None = None


async def import_paths(backend: Backend, paths: Sequence[Path], console: Console) -> list[str]:
    """The scenarios of task directories and datasets, imported (or found unchanged) on the fly."""
    try:
        results = await import_tasks(backend, list(paths))
    except (TaskFormatError, TaskImportError) as exc:
        raise InvalidRequestError(f"importing {', '.join(map(str, paths))}: {exc}") from None
    for result in results:
        console.print(f"[dim]{result.action}[/dim] {result.name} -> {result.scenario_id}")
    return [r.scenario_id for r in results]


async def bench_run(
    backend: Backend,
    targets: Sequence[str],
    options: SuiteOptions,
    outputs: Outputs,
    *,
    resume: str | None = None,
    min_score: float | None = None,
    agent_mounts: Sequence[AgentMountSpec] = (),
) -> int:
    console = Console(stderr=True)
    progress = _attempts_bar(console)
    task = progress.add_task("attempts", total=None, mean=0.0, errors=0)
    scores: list[float] = []
    errors = 0

    def advance(result: AttemptResult) -> None:
        nonlocal errors
        scores.append(result.value)
        errors += result.error is not None
        progress.update(task, advance=1, mean=sum(scores) / len(scores), errors=errors)
        if result.error:
            progress.console.print(f"[red]error[/red] {result.scenario_name} #{result.attempt}: {result.error}")

    if agent_mounts:
        await _mount_agents(backend, console, options, agent_mounts)
    runner = SuiteRun(backend, options, on_result=advance)
    await _start(backend, console, runner, targets, resume)
    assert runner.benchmark is not None and runner.benchmark_run is not None
    console.print(
        f"benchmark run {runner.benchmark_run.id} of {runner.benchmark.name} ({len(runner.benchmark.scenario_ids)} "
        f"scenarios x {options.attempts}) with agent {options.agent}, concurrency {options.concurrency}"
    )
    already = len(runner.results)
    with progress:
        progress.update(task, total=len(runner.benchmark.scenario_ids) * options.attempts, completed=already)
        suite, interrupted = await _run_until_interrupted(runner, progress)
    suite = suite or runner.suite
    assert suite is not None
    print_summary(console, suite)
    await write_outputs(backend, suite, outputs)
    return _exit_code(console, suite, interrupted, min_score)


def _attempts_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("mean {task.fields[mean]:.3f} · errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def _mount_agents(
    backend: Backend, console: Console, options: SuiteOptions, agent_mounts: Sequence[AgentMountSpec]
) -> None:
    """--agent-mount: each installed agent found once, mounted in every attempt's devbox."""
    resolved = await resolve_agent_mounts(backend, agent_mounts)
    for spec, mount in zip(agent_mounts, resolved, strict=True):
        console.print(f"[dim]agent mount[/dim] {spec} -> {mount.agent_id}")
    options.mounts = [*options.mounts, *resolved]


async def _start(
    backend: Backend, console: Console, runner: SuiteRun, targets: Sequence[str], resume: str | None
) -> None:
    """Take up the benchmark run to resume, or start one of the targets: task directories (imported
    on the fly), and benchmarks or scenarios by id or name."""
    if resume:
        await runner.resume(resume)
        return
    paths = [Path(t) for t in targets if Path(t).is_dir()]
    names = [t for t in targets if not Path(t).is_dir()]
    imported = await import_paths(backend, paths, console) if paths else []
    await runner.start(await resolve_benchmark(backend, names, imported))


async def _run_until_interrupted(runner: SuiteRun, progress: Progress) -> tuple[SuiteResults | None, bool]:
    """The attempts, until done or until SIGINT/SIGTERM cancels those in flight; whether it did."""
    interrupted = False
    suite: SuiteResults | None = None
    async with anyio.create_task_group() as tg:

        async def on_signal() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    interrupted = True
                    progress.console.print("[yellow]interrupted: canceling the runs in flight ...[/yellow]")
                    run_scope.cancel()
                    return

        tg.start_soon(on_signal)
        with anyio.CancelScope() as run_scope:
            suite = await runner.run()
        tg.cancel_scope.cancel()
    return suite, interrupted


def _exit_code(console: Console, suite: SuiteResults, interrupted: bool, min_score: float | None) -> int:
    if interrupted:
        console.print(f"interrupted; take it up with --resume {suite.benchmark_run_id}")
        return INTERRUPTED
    if not suite.complete:
        console.print(f"some attempts errored; re-run them with --resume {suite.benchmark_run_id}")
    assert suite.summary is not None
    if min_score is not None and suite.summary.mean < min_score:
        console.print(f"[red]mean score {suite.summary.mean:.3f} is below --min-score {min_score}[/red]")
        return 1
    return 0


def print_summary(console: Console, suite: SuiteResults) -> None:
    summary = suite.summary
    assert summary is not None
    k = max(summary.pass_at, default=1)
    table = Table(title=f"{suite.benchmark_name} · {suite.agent}", show_lines=False)
    table.add_column("scenario", overflow="fold", ratio=1)
    # Short headers: the table fits 80 columns (a CI log's) with pass@k and three phases.
    for column in ("n", "mean", "pass@1", *([f"pass@{k}"] if k > 1 else []), "err", "env s", "agent s", "score s"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in summary.per_scenario:
        table.add_row(
            s.scenario_name,
            str(s.attempts),
            f"{s.mean:.3f}",
            f"{s.pass_at.get(1, 0.0):.2f}",
            *([f"{s.pass_at.get(k, 0.0):.2f}"] if k > 1 else []),
            str(s.errors),
            f"{s.phases.environment:.2f}",
            f"{s.phases.agent:.2f}",
            f"{s.phases.scoring:.2f}",
        )
    console.print(table)
    passes = " · ".join(f"pass@{n} {v:.3f}" for n, v in summary.pass_at.items())
    console.print(
        f"mean {summary.mean:.3f} ± {summary.stderr:.3f} (stderr) · {passes} · errors {summary.errors} · "
        f"{summary.attempts} attempts of {summary.scenarios} scenarios in {suite.duration_s:.1f} s · "
        f"mean s per phase: environment {summary.phases.environment:.2f}, agent {summary.phases.agent:.2f}, "
        f"scoring {summary.phases.scoring:.2f} · benchmark run {suite.benchmark_run_id}"
    )


async def run_logs(backend: Backend, suite: SuiteResults) -> dict[str, list[RunLogEntry]]:
    logs: dict[str, list[RunLogEntry]] = {}
    for result in suite.results:
        if result.run_id:
            try:
                logs[result.run_id] = await backend.run_logs(result.run_id)
            except BackendError:
                continue
    return logs


async def write_outputs(
    backend: Backend, suite: SuiteResults, outputs: Outputs, compare: SuiteResults | None = None
) -> None:
    if outputs.json is not None:
        outputs.json.write_text(suite.model_dump_json(indent=2) + "\n")
    if outputs.junit is not None:
        outputs.junit.write_text(junit_xml(suite))
    if outputs.report is not None:
        logs = await run_logs(backend, suite)
        outputs.report.write_text(render_report(suite, compare=compare, logs=logs))
        Console(stderr=True).print(f"report: {outputs.report}")


async def bench_report(backend: Backend, benchmark_run_id: str, compare_id: str | None, out: Path) -> int:
    suite = await results_of(backend, benchmark_run_id)
    compare = await results_of(backend, compare_id) if compare_id else None
    await write_outputs(backend, suite, Outputs(report=out), compare)
    return 0
