"""Dockerfile builds in the engine's own sandboxes: one layer per step, cached, no Docker daemon.

A build that runs a RUN (or a COPY --from) starts one build sandbox (build_sandbox.py): its
namespaces and network are started once, and each step gets a fresh root in it. Each RUN runs in
a root whose lower layers are the stage's layers so far (with network, behind the devbox egress
rules; the host's added CAs and proxy settings given as trust.py gives them, never frozen) over a
fresh upper directory, which is then frozen into a new layer by a rename. COPY and ADD need no
sandbox: they write their new layer from the host as a write through such a root would
(layer_writer.py: every destination resolved in the image, the directories on the way copied
up), and freeze it the same way; COPY --from reads its stage through a held root. A step's
layer is named by a cache key: the key of the step before, the instruction after substitution,
the environment it runs with and the digest of the files it copies; a step whose key already has
a layer is not run again (a fully cached build starts no sandbox).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import itertools
import os
import posixpath
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio.abc
import anyio.lowlevel
import anyio.to_thread

from .build_sandbox import BuildSandbox
from .copy_files import digest_tree, dockerignore, ignored, place, skipper, small_tree
from .dockerfile import (
    DockerfileError,
    ImageConfig,
    Instruction,
    Stage,
    StageState,
    global_args,
    parse,
    run_argv,
    stages,
    substitute,
)
from .images import ProgressCallback, find_image, pull_image
from .layer_writer import LayerWriter
from .layers import ImageRecord, LayerStore
from .sandbox import SandboxError
from .sandbox.rootfs import RootPathError, resolve, user_ids
from .trust import NotRemembered, SandboxTrust, TrustError, TrustSettings, trust_for

STEP_TIMEOUT = 900.0
MAX_STEP_LOG = 16_000  # characters of a step's output kept in its log entry (its end)


class BuildError(Exception):
    """A build that failed, said with the Dockerfile line of the failing step."""


@dataclass(frozen=True)
class Base:
    """What a stage starts from: an image's layers (topmost first) and configuration."""

    layers: tuple[str, ...]
    config: ImageConfig
    key: str  # names the base for the cache (an image's manifest digest, `scratch`)


@dataclass
class Built:
    """A stage as built so far (and, at the end, the build's result)."""

    layers: list[str]  # topmost first
    config: ImageConfig
    key: str
    cached_steps: int = 0
    built_steps: int = 0


PullBase = Callable[[str], Awaitable[Base]]


def image_base(record: ImageRecord) -> Base:
    """A pulled image as a stage's base: its layers topmost first, its config as Docker keeps it."""
    oci = record.config
    env = tuple((name, value) for name, _, value in (item.partition("=") for item in oci.env))
    config = ImageConfig(
        env=env,
        working_dir=oci.working_dir,
        user=oci.user,
        labels=tuple(oci.labels.items()),
        exposed_ports=oci.exposed_ports,
        cmd=oci.cmd,
        entrypoint=oci.entrypoint,
    )
    return Base(tuple(reversed(record.diff_ids)), config, record.manifest_digest)


def registry_puller(store: LayerStore, progress: ProgressCallback | None = None) -> PullBase:
    """Bases pulled from registries (only the layers the store does not have yet). An image
    pulled before is used as it is, as `docker build` does without `--pull`: a cached rebuild
    asks no registry anything."""

    async def pull(reference: str) -> Base:
        known = await anyio.to_thread.run_sync(find_image, store, reference)
        if known is not None:
            return image_base(known)
        return image_base(await pull_image(reference, store, progress=progress))

    return pull


T = TypeVar("T")
StepLog = Callable[[Instruction, str, bool], Awaitable[None]]  # (step, output, failed)


@dataclass
class DockerfileBuild:
    store: LayerStore
    work: Path  # scratch space for the steps' sandboxes
    pull: PullBase
    context: Path | None = None
    # Makes `context` (unpacks its archive): awaited when a step first reads it, so that the
    # sandbox starts meanwhile (None: `context` is there already).
    unpack_context: Callable[[], Awaitable[None]] | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    log: StepLog | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # for RUN steps, not in the image
    trust: TrustSettings = field(default_factory=TrustSettings)  # CAs and proxies for RUN steps
    # False: `work` is removed by its owner, after the build (off the path of what a user waits for).
    remove_scratch: bool = True
    # True: the build's sandbox is left to its owner to stop (aclose) after its outcome is told.
    stop_later: bool = False
    # False: the steps' processes are forked from Python, as where no C compiler is (step_starter.py).
    use_step_starter: bool = True

    def __post_init__(self) -> None:
        self._ignore: list[tuple[bool, str]] | None = None  # .dockerignore, read once (_context_dir)
        self._box: BuildSandbox | None = None  # started by the first step that is not cached
        # The background start of the sandbox (_start_ahead), while the steps before it need it go on.
        self._background: anyio.abc.TaskGroup | None = None
        self._started: anyio.Event | None = None  # set once that start is over
        self._start_error: Exception | None = None
        self._needs_sandbox_until = 0  # the line of the last step that needs one (a RUN, a COPY --from)
        self._scratch: Path | None = None  # the build's own dir in `work`, made by the first step that is not cached
        self._copies = itertools.count()  # COPY trees made in the scratch
        self._certificates: list[bytes] | None = None  # the CAs to add, read once a build
        self._trust_ready: anyio.Event | None = None  # set once the trust made ahead is (_trust_ahead)
        self._output: IO[bytes] | None = None  # the RUN steps' output, one file for all (_step_output)

    async def build(self, dockerfile: str) -> Built:
        try:
            instructions = parse(dockerfile)
            all_stages = stages(instructions, self.build_args)
        except DockerfileError as exc:
            raise BuildError(str(exc)) from exc
        args = global_args(instructions, self.build_args)
        self._needs_sandbox_until = max(
            (i.line for stage in all_stages for i in stage.instructions if _needs_sandbox(i)), default=0
        )
        digest = _build_digest(dockerfile, self.build_args)
        last_top = _LAST_BUILT.get(digest)
        likely = last_top is None or not self.store.exists(last_top)  # to run a step (_LAST_BUILT)
        done: dict[str, Built] = {}
        built = Built([], ImageConfig(), "")
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as self._background:
                if likely:  # started while the base is looked up and the context unpacked, too
                    self._start_ahead(None)
                try:
                    for stage in all_stages:
                        built = await self._stage(stage, done, args)
                        done[str(stage.index)] = built
                        if stage.name:
                            done[stage.name] = built
                except Exception as exc:  # raised once the background start is over, as it is
                    failure = exc
            self._background = None
            if failure is not None:
                raise failure
            if built.layers:
                _remember(_LAST_BUILT, digest, built.layers[0])
        finally:
            if self._output is not None:
                self._output.close()
                self._output = None
            if not self.stop_later:
                await self.aclose()
        return built

    async def aclose(self) -> None:
        """Stop the build's sandbox, if one was started, and remove its scratch unless its owner
        does (build does this unless `stop_later`)."""
        box, self._box = self._box, None
        scratch, self._scratch = self._scratch, None
        with anyio.CancelScope(shield=True):
            if box is not None:
                await box.stop(remove=False)
            if scratch is not None and self.remove_scratch:
                await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)

    def _scratch_dir(self) -> Path:
        """The build's own dir: `work` itself where its owner removes it (remove_scratch=False)."""
        if self._scratch is None:
            self._scratch = (
                self.work if not self.remove_scratch else Path(tempfile.mkdtemp(prefix="build-", dir=self.work))
            )
        return self._scratch

    async def _sandbox(self) -> BuildSandbox:
        if self._started is not None and not self._started.is_set():  # no yield when it is there
            await self._started.wait()
            if self._start_error is not None:
                raise self._start_error
        if self._box is None:
            self._box = await self._start_sandbox()
        return self._box

    def _start_ahead(self, instruction: Instruction | None) -> bool:
        """Start the sandbox now, in the background, while the steps before the first that needs
        it go on: at a step that is not cached (every step after it is not cached either), or
        (`None`) at the build's start, where its Dockerfile likely runs a step (_LAST_BUILT);
        not after the last step that needs one."""
        if self._box is not None or self._started is not None or self._background is None:
            return False
        line = 0 if instruction is None else instruction.line
        if line > self._needs_sandbox_until or not self._needs_sandbox_until:
            return False
        started = self._started = anyio.Event()

        async def start() -> None:
            try:
                with anyio.CancelScope(shield=True):  # once started, stopped by aclose
                    self._box = await self._start_sandbox()
            except Exception as exc:  # the step that needs it fails with it
                self._start_error = exc
            finally:
                started.set()

        self._background.start_soon(start)
        return True

    async def _start_sandbox(self) -> BuildSandbox:
        return await BuildSandbox.start(
            self._scratch_dir() / "sandbox",
            skeleton=self.store.skeleton,
            etc_mask=self.store.etc_mask,
            network=True,  # for RUN; a COPY's root is only ever touched from the host
            hostname="buildkitsandbox",
            use_step_starter=self.use_step_starter,
        )

    def _new_tree(self) -> Path:
        """An empty directory for a COPY's layer, in the build's scratch (one mkdir: on a busy
        disk making a directory is no cheap thing)."""
        tree = self._scratch_dir() / f"copy-{next(self._copies)}"
        tree.mkdir()
        return tree

    def _step_output(self) -> IO[bytes]:
        """An empty file for a RUN's output: one a build, emptied per step (making a file costs
        more than truncating one). Nothing writes to it after its step: init ends all a step left."""
        if self._output is None:
            self._output = tempfile.TemporaryFile()  # noqa: SIM115 (closed at the build's end)
        self._output.seek(0)
        self._output.truncate()
        return self._output

    def _trust(self, layers: Sequence[str]) -> SandboxTrust:
        """What a RUN step over `layers` is given to trust. Blocking."""
        if self._certificates is None:
            self._certificates = self.trust.certificates()
        return trust_for(self.store, layers, self._certificates)

    def _trust_ahead(self, layers: Sequence[str]) -> None:
        """While the sandbox starts ahead, what a stage's base is given to trust, in the
        background: a RUN after it then finds it remembered (_remembered_trust), unless its
        layers changed the image's trust store. Once a build: later stages find it in the store."""
        if not layers or self._background is None or self._started is None or self._trust_ready is not None:
            return  # (FROM scratch: nothing to trust yet)
        ready = self._trust_ready = anyio.Event()
        base = tuple(layers)

        async def make() -> None:
            try:
                # A failure is not this task's to raise: the step that needs it tries again, and says why.
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await anyio.to_thread.run_sync(self._trust, base)
            finally:
                ready.set()

        self._background.start_soon(make)

    def _remembered_trust(self, layers: Sequence[str]) -> SandboxTrust | None:
        """_trust without a worker thread when this process has what it needs (a step's trust is
        its previous step's when its layer leaves that alone: a stat per path); else None."""
        if self._certificates is None:
            return None
        try:
            return trust_for(self.store, layers, self._certificates, remembered_only=True)
        except NotRemembered:
            return None

    def _paths(self, layers: Sequence[str]) -> tuple[Path, ...]:
        return tuple(self.store.path(layer) for layer in layers)

    async def _stage(self, stage: Stage, done: dict[str, Built], args: dict[str, str]) -> Built:
        if stage.base.lower() in done:
            start = done[stage.base.lower()]
            built = Built(list(start.layers), start.config, start.key)
        elif stage.base == "scratch":
            built = Built([], ImageConfig(), "scratch")
        else:
            base = await self.pull(stage.base)
            built = Built(list(base.layers), base.config, base.key)
        state = StageState(built.config, self.build_args, args)
        if any(i.keyword == "RUN" for i in stage.instructions):
            self._trust_ahead(built.layers)
        for instruction in stage.instructions:
            try:
                if instruction.keyword == "RUN":
                    await self._run(instruction, state, built)
                elif instruction.keyword in ("COPY", "ADD"):
                    await self._copy(instruction, state, built, done)
                else:
                    state.apply(instruction)
                    built.key = _hash(built.key, instruction.keyword, instruction.args, repr(state.args))
            except (DockerfileError, RootPathError, SandboxError, TrustError, OSError) as exc:
                await self._log(instruction, str(exc), failed=True)
                raise BuildError(f"Dockerfile line {instruction.line} ({instruction.keyword}): {exc}") from exc
            built.config = state.config
        return built

    # --- RUN ---------------------------------------------------------------------------------

    async def _run(self, instruction: Instruction, state: StageState, built: Built) -> None:
        argv = run_argv(instruction, state.config)
        env = state.run_env()
        key = _hash(
            built.key, "RUN", repr(argv), repr(sorted(env.items())), state.config.user, state.config.working_dir
        )
        if await self._cached(key, instruction, built):
            return
        if self._trust_ready is not None and not self._trust_ready.is_set():  # (a wait yields even when set)
            await self._trust_ready.wait()
        trust = self._remembered_trust(built.layers)
        if trust is None:
            trust = await anyio.to_thread.run_sync(self._trust, tuple(built.layers))
        box = await self._sandbox()
        # HOME is the USER's (from the step's own /etc/passwd) unless the environment sets it.
        env = {"HOSTNAME": "buildkitsandbox", **env, **trust.env, **self.extra_env}
        output = self._step_output()
        outcome = await box.run(
            self._paths(trust.stack(built.layers)),
            argv,
            env=env,
            cwd=state.config.working_dir or "/",
            user=state.config.user or None,
            output=output,
            timeout=STEP_TIMEOUT,
        )
        output.seek(0)
        text = output.read().decode(errors="replace")[-MAX_STEP_LOG:]
        if outcome.exit_status != 0 or outcome.timed_out:
            reason = f"timed out after {STEP_TIMEOUT:g} s" if outcome.timed_out else f"exited {outcome.exit_status}"
            await self._log(instruction, text, failed=True)
            raise BuildError(f"Dockerfile line {instruction.line}: `{instruction.args}` {reason}: {text[-2000:]}")
        await self._freeze(outcome.upper / "root", key, built, trust)
        await self._log(instruction, text, failed=False)

    # --- COPY and ADD ------------------------------------------------------------------------

    async def _copy(self, instruction: Instruction, state: StageState, built: Built, done: dict[str, Built]) -> None:
        words = _copy_words(instruction, state.scope)
        if len(words) < 2:
            raise DockerfileError(instruction.line, f"{instruction.keyword} needs a source and a destination")
        *sources, dest = words
        source_from = instruction.flags.get("from")
        if instruction.keyword == "ADD" and any("://" in s for s in sources):
            raise DockerfileError(instruction.line, "ADD of a URL is not supported here; RUN curl or wget instead")
        if source_from is not None:
            stage = done.get(source_from.lower())
            if stage is None:
                raise DockerfileError(instruction.line, f"--from={source_from}: no earlier stage of that name")
            box = await self._sandbox()
            async with box.hold(self._paths(stage.layers)) as (source_root, _upper):
                await self._copy_into(instruction, state, built, sources, dest, source_root, inside=True)
        else:
            context = await self._context_dir()
            if context is None:
                raise DockerfileError(
                    instruction.line, f"{instruction.keyword} needs a build context, and none was given"
                )
            await self._copy_into(instruction, state, built, sources, dest, context, inside=False)

    async def _context_dir(self) -> Path | None:
        if self.unpack_context is not None:
            unpack, self.unpack_context = self.unpack_context, None
            await unpack()
        if self._ignore is None:
            self._ignore = dockerignore(self.context)
        return self.context

    async def _copy_into(
        self,
        instruction: Instruction,
        state: StageState,
        built: Built,
        sources: list[str],
        dest: str,
        source_root: Path,
        *,
        inside: bool,
    ) -> None:
        paths = self._sources(instruction, sources, source_root, inside=inside)
        skip = None if inside else skipper(source_root, self._ignore or [])
        # A few small files are hashed and placed inline: a hop to a worker thread and back costs
        # more than that work, twice per COPY; a larger tree goes to a thread, off the event loop.
        small = await _inline_or_thread(True, small_tree, paths)
        digest = await _inline_or_thread(small, digest_tree, paths, skip)
        flags = {k: v for k, v in instruction.flags.items() if k in ("chown", "chmod")}
        key = _hash(built.key, instruction.keyword, repr(sources), dest, repr(sorted(flags.items())), digest)
        if inside:
            key = _hash(key, "from", instruction.flags["from"])
        if await self._cached(key, instruction, built):
            return
        # Written from the host (layer_writer.py), with no sandbox and no mount. COPY's roots have
        # no trust layer: `COPY --from=stage /etc/ssl/certs/...` copies the image's own.
        tree = self._new_tree()
        writer = LayerWriter(tree, self._paths(built.layers))
        workdir = state.config.working_dir or "/"
        target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
        as_dir = dest.endswith("/") or len(paths) > 1 or any(p.is_dir() and not p.is_symlink() for p in paths)
        owner = user_ids(writer.view, flags["chown"])[:2] if "chown" in flags else None
        mode = int(flags["chmod"], 8) if "chmod" in flags else None
        extract = instruction.keyword == "ADD" and not inside
        await _inline_or_thread(small, place, paths, writer, target, as_dir, owner, mode, extract, skip)
        await self._freeze(tree, key, built)
        await self._log(instruction, f"{len(paths)} source(s) to {target}", failed=False)

    def _sources(self, instruction: Instruction, sources: list[str], root: Path, *, inside: bool) -> list[Path]:
        found: list[Path] = []
        for source in sources:
            if inside:
                path = resolve(root, source)
                matches = [path] if os.path.lexists(path) else []
            else:
                pattern = posixpath.normpath(source.lstrip("/"))
                if pattern.startswith(".."):
                    raise DockerfileError(instruction.line, f"{source!r} is outside the build context")
                names = sorted(glob.glob(pattern, root_dir=root)) if glob.has_magic(pattern) else [pattern]
                matches = [root / n for n in names if os.path.lexists(root / n) and not ignored(n, self._ignore or [])]
                if pattern in (".", "") and root.exists():
                    matches = [root]
            if not matches:
                raise DockerfileError(
                    instruction.line, f"{source!r} matches no file in the {'stage' if inside else 'build context'}"
                )
            found += matches
        return found

    # --- shared ------------------------------------------------------------------------------

    async def _cached(self, key: str, instruction: Instruction, built: Built) -> bool:
        layer_id = _layer_id(key)
        built.key = key
        if not self.store.exists(layer_id):
            if self._start_ahead(instruction):
                await anyio.lowlevel.checkpoint()  # under way before this step's own work
            return False
        built.layers.insert(0, layer_id)
        built.cached_steps += 1
        await self._log(instruction, "cached", failed=False)
        return True

    async def _freeze(self, tree: Path, key: str, built: Built, trust: SandboxTrust | None = None) -> None:
        """Make a finished step's changes (`tree`, the upper dir of its root) its layer."""
        layer_id = _layer_id(key)
        # A few opens, stats and two renames: inline, as a hop to a worker thread and back costs
        # more, and it is on the path between one step's end and the next one's start.
        if trust is not None:  # what a command copied up of the trust layer is the host's, not the image's
            trust.strip(tree)
        adopted = True
        if not self.store.exists(layer_id):
            try:  # the step's root is thrown away: its changes become the layer as they are
                self.store.adopt_tree(tree, layer_id)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                adopted = False
        if not adopted:
            await self.store.freeze_tree(tree, layer_id)  # another filesystem
        built.layers.insert(0, layer_id)
        built.built_steps += 1

    async def _log(self, instruction: Instruction, output: str, *, failed: bool) -> None:
        if self.log is not None:
            await self.log(instruction, output, failed)


# The top layer of the last build of a Dockerfile (its text and build args) here, by their
# digest: while the store has it, a build of it again likely takes every step from the cache, and
# starts no sandbox ahead (it still does at its first step not cached). Bounded; this process's.
_LAST_BUILT: dict[str, str] = {}
_LAST_BUILT_SIZE = 1024


def _build_digest(dockerfile: str, build_args: dict[str, str]) -> str:
    return _hash(dockerfile, repr(sorted(build_args.items())))


def _remember(memo: dict[str, str], key: str, value: str) -> None:
    if len(memo) >= _LAST_BUILT_SIZE:
        memo.clear()
    memo[key] = value


def _needs_sandbox(instruction: Instruction) -> bool:
    return instruction.keyword == "RUN" or (instruction.keyword in ("COPY", "ADD") and "from" in instruction.flags)


def _layer_id(key: str) -> str:
    return f"step-{key[:40]}"


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _copy_words(instruction: Instruction, scope: dict[str, str]) -> list[str]:
    array = instruction.exec_form
    words = array if array is not None else instruction.args.split()
    return [substitute(word, scope, line=instruction.line) for word in words]


async def _inline_or_thread(inline: bool, fn: Callable[..., T], *args: Any) -> T:
    return fn(*args) if inline else await anyio.to_thread.run_sync(fn, *args)
