"""One blueprint's build: its Dockerfile (builds.py), then its file mounts and setup commands in a
sandbox with network, frozen into the blueprint's own layer. Every step leaves one log entry
(Runloop's BlueprintBuildLog) with, for a Dockerfile step, its line.
"""

from __future__ import annotations

import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

from ..conventions import HOME
from ..models import BlueprintCreateParameters, now_ms
from .build_progress import BuildTracker
from .builds import BuildError, DockerfileBuild, registry_puller
from .commands import shell_argv
from .dockerfile import Instruction
from .environments import Environment
from .layers import LayerStore
from .processes import TIMEOUT_EXIT_STATUS
from .registry import ImageError
from .sandbox import Sandbox, SandboxError
from .sandbox.rootfs import RootPathError, resolve
from .secrets import Redactor
from .trust import SandboxTrust, TrustError, TrustSettings, sandbox_trust

MAX_BUILD_LOG_ENTRY = 16_000  # characters of one step's log kept (its end)
BUILD_COMMAND_TIMEOUT = 900.0
PROGRESS_SECONDS = 2.0  # between two log lines of one pull's download


@dataclass
class BuildOutcome:
    """What a build leaves: its log (whole text, and one entry per step), and either the
    environment it made or why it failed."""

    text: list[str] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    environment: Environment | None = None
    failure: str | None = None

    def log(self, message: str, *, failed: bool = False) -> None:
        self.text.append(message)
        self.logs.append(
            {
                "level": "error" if failed else "info",
                "timestamp_ms": now_ms(),
                "message": message[-MAX_BUILD_LOG_ENTRY:],
            }
        )


@dataclass
class BlueprintBuild:
    blueprint_id: str
    params: BlueprintCreateParameters
    base: Environment  # what the setup stands on when there is no Dockerfile
    layers: LayerStore
    work: Path  # scratch space for this build, removed after it
    context_archive: Path | None = None  # a tgz of the build context
    trust: TrustSettings = field(default_factory=TrustSettings)  # CAs and proxies: never in a layer
    on_log: Callable[[], Awaitable[None]] | None = None  # a log entry was added
    tracker: BuildTracker | None = None  # progress as it goes (pulls' bytes, steps), for MCP clients
    outcome: BuildOutcome = field(default_factory=BuildOutcome)
    # {env var: (secret name, value)}: in the build's commands' environment, never in a layer or log
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The Dockerfile's sandbox, stopped by aclose: after the outcome is told, off a waiter's path.
    _dockerfile_build: DockerfileBuild | None = None

    async def aclose(self) -> None:
        if self._dockerfile_build is not None:
            await self._dockerfile_build.aclose()

    @property
    def secret_env(self) -> dict[str, str]:
        return {env_name: value for env_name, (_, value) in self.secrets.items()}

    def redacted(self, text: str) -> str:
        return Redactor(dict(self.secrets.values())).text(text) if self.secrets else text

    async def run(self) -> BuildOutcome:
        """The build; its scratch (`work`) is left to the caller, to remove once its waiters know."""
        self.work.mkdir(parents=True, exist_ok=True)
        if self.outcome.failure is not None:  # its secrets could not be read
            self.outcome.log(f"build failed: {self.outcome.failure}", failed=True)
            return self.outcome
        try:
            environment = self.base
            if self.params.dockerfile is not None:
                environment = await self._dockerfile()
            if self._needs_own_layer(environment):
                environment = await self._setup(environment)
            self.outcome.environment = environment
        except BuildError as exc:
            self.outcome.failure = str(exc)
        except ImageError as exc:
            self.outcome.failure = f"a base image could not be pulled: {exc}"
        except (SandboxError, RootPathError, TrustError, OSError, tarfile.TarError) as exc:
            self.outcome.failure = f"the build could not run: {exc}"
        if self.outcome.failure is not None:
            self.outcome.log(f"build failed: {self.outcome.failure}", failed=True)
            await self._logged()
        return self.outcome

    def _needs_own_layer(self, environment: Environment) -> bool:
        # A host-based blueprint is always its own layer (its id names it); a Dockerfile's result
        # is its steps' layers, with one more only for file mounts or setup commands.
        return environment.image is None or bool(self.params.file_mounts or self.params.system_setup_commands)

    async def _logged(self) -> None:
        if self.on_log is not None:
            await self.on_log()

    # --- the Dockerfile ------------------------------------------------------------------------

    async def _dockerfile(self) -> Environment:
        assert self.params.dockerfile is not None
        context = unpack = None
        if self.context_archive is not None:
            archive, context = self.context_archive, self.work / "context"

            async def unpack() -> None:  # when a step first reads it: the build's sandbox starts meanwhile
                await anyio.to_thread.run_sync(_unpack_context, archive, context)

        async def step_log(instruction: Instruction, output: str, failed: bool) -> None:
            text = self.redacted(f"line {instruction.line}: {instruction.original}\n{output}".rstrip())
            self.outcome.log(text, failed=failed)
            if self.tracker is not None and not failed:
                self.tracker.step(f"line {instruction.line}: {instruction.original}")
            await self._logged()

        last_line = 0.0

        async def progress(done: int, total: int, message: str) -> None:
            # A progress line per event, but a layer's download at most one per PROGRESS_SECONDS.
            nonlocal last_line
            if self.tracker is not None:
                self.tracker.pulling(done, total, message)
            downloading = message.startswith("layer ") and not message.endswith("unpacked")
            if downloading and time.monotonic() - last_line < PROGRESS_SECONDS:
                return
            last_line = time.monotonic()
            self.outcome.log(f"{message} ({done >> 20} of {total >> 20} MiB)" if total else message)
            await self._logged()

        build = DockerfileBuild(
            store=self.layers,
            work=self.work,  # its sandbox and COPY trees beside the context, in the build's own dir
            pull=registry_puller(self.layers, progress),
            context=context,
            unpack_context=unpack,
            build_args=dict(self.params.build_args or {}),
            log=step_log,
            trust=self.trust,
            extra_env=self.secret_env,
            remove_scratch=False,  # all of self.work goes after the build (Blueprints)
            stop_later=True,  # aclose
        )
        self._dockerfile_build = build
        built = await build.build(self.params.dockerfile)
        self.outcome.log(f"Dockerfile built: {built.built_steps} step(s) run, {built.cached_steps} from the cache")
        return Environment(tuple(built.layers), None, built.config)

    # --- file mounts and setup commands --------------------------------------------------------

    async def _setup(self, environment: Environment) -> Environment:
        state_dir = self.work / "setup"
        trust = await self._trust(environment)
        spec = environment.spec(
            self.layers,
            state_dir,
            network=True,
            hostname="blueprint-build",
            extra_layers=tuple(self.layers.path(layer) for layer in trust.stack(())),
        )
        sandbox = await Sandbox.start(spec)
        try:
            root = Path(f"/proc/{sandbox.init_pid}/root")
            for path, contents in (self.params.file_mounts or {}).items():
                await anyio.to_thread.run_sync(_write_file, root, path, contents)
                self.outcome.log(f"file mount: wrote {path} ({len(contents.encode())} bytes)")
            shell = environment.shell(root)
            environment.make_working_directory(root)
            for command in self.params.system_setup_commands:
                code, output = await self._run(sandbox, environment, shell, command, {**trust.env, **self.secret_env})
                output = self.redacted(output)
                self.outcome.log(f"$ {command}\n{output}[exit {code}]", failed=code != 0)
                await self._logged()
                if code != 0:
                    raise BuildError(f"`{command}` exited {code}: {output.strip()[-2000:]}")
        finally:
            await sandbox.stop()
        # What a command copied up of the trust layer is the host's, not the image's.
        await anyio.to_thread.run_sync(trust.strip, spec.upper("root"))
        await self.layers.freeze(state_dir / "upper", self.blueprint_id)
        return environment.on_top(self.blueprint_id)

    async def _trust(self, environment: Environment) -> SandboxTrust:
        """The host's added CAs and proxies, for an image's setup (the host's own /etc has them)."""
        if environment.image is None:
            return SandboxTrust(None, {}, ())
        return await sandbox_trust(self.layers, environment.layers, self.trust)

    async def _run(
        self, sandbox: Sandbox, environment: Environment, shell: str, command: str, trust_env: dict[str, str]
    ) -> tuple[int, str]:
        env = environment.process_env(trust_env)  # the host's trust (images only) and the build's secrets
        workdir = environment.working_directory if environment.image is not None else HOME
        with tempfile.TemporaryFile() as out:
            code, timed_out = await sandbox.run(
                shell_argv(workdir, command, shell), stdout=out, stderr=out, timeout=BUILD_COMMAND_TIMEOUT, env=env
            )
            out.seek(0)
            output = out.read().decode(errors="replace")
        if timed_out:
            return TIMEOUT_EXIT_STATUS, output + f"\ntimed out after {BUILD_COMMAND_TIMEOUT:g} s"
        return code, output


def _unpack_context(archive: Path, target: Path) -> None:
    """A build context archive (tar, gzip'd or not), unpacked as plain files: tarfile's `data`
    filter refuses absolute paths, `..`, links out of the target and device nodes."""
    target.mkdir(parents=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter="data")


def _write_file(root: Path, path: str, contents: str) -> None:
    if not path.startswith("/"):
        path = f"{HOME}/{path}"
    target = resolve(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(contents)
