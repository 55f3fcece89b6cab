"""Commands on the local engine's data dir itself: `setup` (check this machine, build the default
environment), `gc` (free what nothing stands on) and `shell` (a terminal in a devbox)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .options import add_retain_option


def add_setup_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "setup",
        parents=[common],
        help="check that this machine can make devboxes and build the default environment (a Python venv with "
        "pytest, from PyPI) once, so no first devbox waits for it",
    )


def add_gc_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    gc = sub.add_parser(
        "gc",
        parents=[common],
        help="free the layers and pulled images no blueprint, snapshot or live devbox stands on, and the "
        "outputs and logs of devboxes and runs that ended longer ago than --retain (the server must be "
        "stopped: it holds the data dir)",
    )
    add_retain_option(gc)
    gc.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep layers younger than this (default 600: a layer being recorded right now is kept)",
    )


def add_shell_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    shell = sub.add_parser(
        "shell",
        parents=[common],
        help="an interactive shell in a running devbox of the local engine (a real terminal: window size, "
        "Ctrl-C, job control; `exit` returns)",
    )
    shell.add_argument("devbox_id", metavar="DEVBOX_ID")


async def collect_garbage(data_dir: Path, grace: float | None, retain_seconds: float | None = None) -> int:
    from ..local.engine import LocalBackend
    from ..local.garbage import GRACE_SECONDS

    try:
        async with LocalBackend(data_dir, trust=None, retention_sweeps=False) as engine:
            retained = await engine.apply_retention(retain_seconds)
            report = await engine.collect_garbage(grace_seconds=GRACE_SECONDS if grace is None else grace)
    except (RuntimeError, OSError) as exc:
        print(f"scenario-mcp gc: {exc}", file=sys.stderr)
        return 1
    print(
        f"freed {report.freed_bytes / 1e6:.1f} MB: {len(report.layers)} layer(s), "
        f"{len(report.image_layers)} image layer(s), {len(report.images)} pulled image(s)"
    )
    print(retained.summary())
    return 0


async def setup(data_dir: Path) -> int:
    """Make sure devboxes can be made here, and build the default environment now."""
    from ..backend import BackendError
    from ..local.engine import LocalBackend

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
