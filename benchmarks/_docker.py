"""Docker as a peer in the benchmarks: the daemon that answers, or one started here for the run.

Installed only by `benchmarks/setup-images.sh --with-docker` (Debian's docker.io), never for the
tests. When no daemon answers `docker info` but `dockerd` is installed, `Docker.open` starts one of
its own with `--iptables=false --bridge=none` (it changes no network of the host), its own socket,
exec root and pid file (it meets no other daemon), and its data root in the run's temporary dir
under .tools/ (fresh each run, on the same disk as the engine's layers); `close` stops it. A
daemon that was already running is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
from _common import HOST_TOOLS_PATH

OWN_SOCKET = Path("/run/bench-dockerd.sock")
OWN_EXEC_ROOT = Path("/run/bench-dockerd")  # short: containerd's socket lives under it
OWN_PIDFILE = Path("/run/bench-dockerd.pid")
DOCKERD_RUN_DIR = Path("/run/docker")  # made by any dockerd (its plugins dir), whatever its exec root


class Docker:
    def __init__(self, cli: str, host: str | None, daemon: subprocess.Popen[bytes] | None) -> None:
        self.cli = cli
        self.host = host
        self.daemon = daemon
        self.version = ""
        self.leftovers: list[Path] = []  # what the daemon started here leaves in /run
        self.failures: list[str] = []  # attempts that failed and were run again (not timed)

    @classmethod
    def open(cls, data_root: Path, log_path: Path) -> Docker | None:
        """The Docker to compare with, or None (and why, on stderr) when there is none."""
        # Debian's client matches Debian's daemon; a newer client elsewhere on PATH may want buildx.
        cli = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")
        if cli is None:
            print(
                "docker: not installed (bash benchmarks/setup-images.sh --with-docker); no Docker peers",
                file=sys.stderr,
            )
            return None
        docker = cls(cli, None, None)
        if docker.answers():
            print("docker: using the daemon that answers `docker info`", file=sys.stderr)
            return docker.described()
        dockerd = shutil.which("dockerd", path=HOST_TOOLS_PATH)
        if dockerd is None:
            print("docker: no daemon answers and dockerd is not installed; no Docker peers", file=sys.stderr)
            return None
        data_root.mkdir(parents=True, exist_ok=True)
        leftovers = [OWN_EXEC_ROOT, *([] if DOCKERD_RUN_DIR.exists() else [DOCKERD_RUN_DIR])]
        log = log_path.open("wb")
        argv = [
            dockerd,
            "--iptables=false",
            "--bridge=none",
            f"--host=unix://{OWN_SOCKET}",
            f"--data-root={data_root}",
            f"--exec-root={OWN_EXEC_ROOT}",
            f"--pidfile={OWN_PIDFILE}",
        ]
        daemon = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        docker = cls(cli, f"unix://{OWN_SOCKET}", daemon)
        docker.leftovers = leftovers
        deadline = time.monotonic() + 60
        while not docker.answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                docker.close()
                print(f"docker: dockerd did not start; see {log_path}", file=sys.stderr)
                return None
            time.sleep(0.2)
        print(f"docker: started dockerd (pid {daemon.pid}) with --iptables=false --bridge=none", file=sys.stderr)
        return docker.described()

    def described(self) -> Docker:
        result = subprocess.run(
            self.argv("version", "--format", "{{.Server.Version}}"), capture_output=True, env=self.env(), check=False
        )
        self.version = result.stdout.decode().strip()
        return self

    def answers(self) -> bool:
        result = subprocess.run(self.argv("info"), capture_output=True, env=self.env(), check=False)
        return result.returncode == 0

    def argv(self, *args: str) -> list[str]:
        return [self.cli, *(["-H", self.host] if self.host else []), *args]

    def env(self) -> dict[str, str]:
        return {
            "PATH": HOST_TOOLS_PATH,
            "HOME": os.environ.get("HOME", "/root"),
            # The legacy builder, 20.10's default. BuildKit's RUN wants the default bridge network,
            # which a daemon started with --bridge=none does not have.
            "DOCKER_BUILDKIT": "0",
        }

    async def run(self, *args: str, check: bool = True) -> None:
        """One docker command to its end, its output dropped; fail loudly unless told not to."""
        result = await anyio.run_process(self.argv(*args), check=False, stdin=subprocess.DEVNULL, env=self.env())
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")

    async def forget_image(self, image: str) -> None:
        """Remove an image by its id, every tag of it, so that the next pull fetches it whole."""
        result = await anyio.run_process(
            self.argv("image", "inspect", "--format", "{{.Id}}", image), check=False, env=self.env()
        )
        if result.returncode == 0:
            await self.run("rmi", "-f", result.stdout.decode().strip())

    async def timed(self, *args: str, attempts: int = 5) -> float | None:
        """Milliseconds of one docker command that succeeded, or None if none did. A failed
        attempt (Debian's 20.10 here now and then starts a container whose root looks empty:
        `exec: "true": executable file not found`, a COPY's "Error processing tar file ...
        fallback to chroot") is noted in `failures` and run again a second later; only the
        attempt that succeeded is timed. None leaves that run's Docker sample out."""
        for attempt in range(attempts):
            if attempt:
                await anyio.sleep(1.0)
            start = time.perf_counter()
            try:
                await self.run(*args)
            except RuntimeError as exc:
                self.failures.append(str(exc).splitlines()[-1][:200])
                continue
            return (time.perf_counter() - start) * 1000
        self.failures.append(f"docker {' '.join(args)}: no attempt of {attempts} succeeded; sample left out")
        return None

    def close(self) -> None:
        """Stop the daemon started here (a daemon that was running before stays)."""
        if self.daemon is None:
            return
        self.daemon.terminate()  # dockerd stops the containerd it started
        try:
            self.daemon.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(10)
        self.daemon = None
        for path in self.leftovers:
            shutil.rmtree(path, ignore_errors=True)
        print("docker: stopped the dockerd started for this run", file=sys.stderr)
