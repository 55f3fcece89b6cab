"""The C step starter (step_starter.c), compiled on first use by the host's C compiler.

A build sandbox's init starts each step's process ahead of its request. Forked from init's
Python (step_process.spare), that process costs several milliseconds of CPU a step: the fork,
copy-on-write faults in init and in the child, and the teardown of the child's copy at its exec.
The starter, started once a build sandbox, forks each step's process in C instead, in a fraction
of a millisecond. Without a C compiler, builds run on the Python spare, slower but the same (a
warning says so once).

The binary is kept in the user's cache directory, named by the digest of its source, so each
release compiles it once per machine; a compile writes a temporary file and renames it, so
processes compiling at once never see half a binary.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

SOURCE = Path(__file__).with_name("step_starter.c")
COMPILE_TIMEOUT = 120.0

_log = logging.getLogger(__name__)
_unavailable: list[str] = []  # why it could not be compiled, once said


@functools.cache
def binary_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("scenario-mcp")) / f"step-starter-{digest}"


def compiled_step_starter() -> Path | None:
    """The starter when it is compiled already (a stat: no thread needed), else None."""
    target = binary_path()
    return target if os.access(target, os.X_OK) else None


def step_starter() -> Path | None:
    """The compiled starter, compiled now when missing (blocking: a fraction of a second, once);
    None when it cannot be (no C compiler), and the Python spare is used."""
    target = binary_path()
    if os.access(target, os.X_OK):
        return target
    if _unavailable:
        return None
    problem = compile_step_starter(target)
    if problem is None:
        return target
    _unavailable.append(problem)
    _log.warning("build steps start the slower way (forked from Python): %s", problem)
    return None


def compile_step_starter(target: Path) -> str | None:
    """Compile the starter into `target`; None when done, else why it could not be."""
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None:
        return "no C compiler (cc) to compile the step starter with; install one (Debian: apt-get install gcc)"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=".step-starter-", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        return f"no place to compile the step starter to: {exc}"
    try:
        result = subprocess.run(
            [compiler, "-O2", "-o", scratch, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            return f"{compiler} could not compile {SOURCE.name}: {result.stderr.strip()[-2000:]}"
        os.chmod(scratch, 0o755)
        os.replace(scratch, target)
        return None
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"compiling {SOURCE.name} failed: {exc}"
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
