"""One agent's install: in a build sandbox with network, on the default environment, into a
directory of its own (AGENT_DIR), then its `agent_setup` commands there; the directory becomes the
agent's read-only layer, mounted at any path of any devbox (mounts.py).

npm installs with `--global --prefix` (bin/ holds relative symlinks), pip into a venv whose
console scripts are made to find their Python beside them and linked into bin/ (`relocate_scripts`), git clones, an
object is unpacked (tarfile's `data` filter). Every step leaves one log entry, as a blueprint's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from ..models import AgentSource
from .blueprint_build import BUILD_COMMAND_TIMEOUT, BuildOutcome
from .commands import shell_argv
from .environments import Environment
from .layers import LayerStore
from .processes import TIMEOUT_EXIT_STATUS
from .sandbox import Sandbox, SandboxError
from .trust import proxy_env

AGENT_DIR = "/agent"  # where an agent is installed in its build sandbox
# What a package name or version may be, so that it reaches npm and pip as one plain word.
PACKAGE_WORD = re.compile(r"[A-Za-z0-9@/._~^<>=!*+:-]+")
VENV_DIR = "venv"  # a pip agent's venv, in its directory
VENV_OWN = ("python", "pip", "activate", "Activate")  # the venv's own programs, not the agent's
# A console script pip wrote for the venv: its interpreter's absolute path.
VENV_SHEBANG = re.compile(rb"#!" + re.escape(f"{AGENT_DIR}/{VENV_DIR}".encode()) + rb"/bin/(python[0-9.]*)\s*\n")
# The same script, finding its interpreter beside itself (through bin/'s symlink) wherever the
# agent is mounted: the shell runs the first line, Python reads it as a string (distlib's trick).
RELOCATED_SHEBANG = b'#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(readlink -f -- "$0")")/%s" "$0" "$@"\n\' \'\'\'\n'

# npm trusts only its own CA list unless told: the host's store (its /etc is the build's) has
# whatever CA the host adds, as pip and git read it.
NPM_ENV = {"NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt", "npm_config_update_notifier": "false"}


class AgentBuildError(Exception):
    """An install that failed, said with the step that failed."""


def install_commands(name: str, version: str | None, source: AgentSource) -> list[str]:
    """The shell commands that install the agent into AGENT_DIR (none for an object: unpacked)."""
    target = shlex.quote(AGENT_DIR)
    if source.type == "npm":
        assert source.npm is not None
        spec = _package(source.npm.package_name, f"@{version}" if version else "")
        registry = f" --registry {shlex.quote(source.npm.registry_url)}" if source.npm.registry_url else ""
        return [f"npm install --global --prefix {target} --no-audit --no-fund --loglevel=error{registry} {spec}"]
    if source.type == "pip":
        assert source.pip is not None
        spec = _package(source.pip.package_name, f"=={version}" if version else "")
        index = f" --index-url {shlex.quote(source.pip.registry_url)}" if source.pip.registry_url else ""
        venv = f"{target}/{VENV_DIR}"
        return [
            f"/usr/bin/python3 -m venv {venv}",
            f"{venv}/bin/pip install --quiet --disable-pip-version-check --no-cache-dir{index} {spec}",
        ]
    if source.type == "git":
        assert source.git is not None
        commands = [f"git clone --quiet -- {shlex.quote(source.git.repository)} {target}"]
        ref = source.git.ref or version
        if ref:
            commands.append(f"git -C {target} checkout --quiet {shlex.quote(ref)} --")
        return commands
    return []


def _package(name: str, pin: str) -> str:
    spec = name + pin
    if not PACKAGE_WORD.fullmatch(spec) or spec.startswith("-"):
        raise AgentBuildError(f"package {spec!r} is not a plain package name and version; check package_name/version")
    return spec


def relocate_scripts(agent_dir: Path) -> list[str]:
    """Make a pip agent's console scripts run wherever the agent is mounted, and show them (not
    the venv's own python and pip, which would shadow the devbox's) in its bin/; returns them."""
    venv_bin = agent_dir / VENV_DIR / "bin"
    if not venv_bin.is_dir():
        return []
    exposed = []
    for script in sorted(venv_bin.iterdir()):
        if script.is_symlink() or not script.is_file() or script.name.startswith(VENV_OWN):
            continue
        with open(script, "rb") as f:
            head = f.read(256)
        match = VENV_SHEBANG.match(head)
        if match is not None:
            body = script.read_bytes()[match.end() :]
            script.write_bytes(RELOCATED_SHEBANG % match.group(1) + body)
        exposed.append(script.name)
    if exposed:
        (agent_dir / "bin").mkdir(exist_ok=True)
        for name in exposed:
            link = agent_dir / "bin" / name
            if not os.path.lexists(link):
                os.symlink(f"../{VENV_DIR}/bin/{name}", link)
    return exposed


@dataclass
class AgentBuild:
    name: str
    version: str | None
    source: AgentSource | None
    environment: Environment  # what the install runs on (the default environment)
    layers: LayerStore
    layer_id: str  # the layer the agent's directory becomes
    work: Path  # scratch space, removed after
    archive: Path | None = None  # an object source's bytes
    on_log: Callable[[], Awaitable[None]] | None = None
    outcome: BuildOutcome = field(default_factory=BuildOutcome)

    async def run(self) -> BuildOutcome:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            await self._install()
            self.outcome.environment = self.environment  # a success (the layer is the agent's)
        except AgentBuildError as exc:
            self.outcome.failure = str(exc)
        except (SandboxError, OSError, tarfile.TarError) as exc:
            self.outcome.failure = f"the install could not run: {exc}"
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, self.work, True)
        if self.outcome.failure is not None:
            self.outcome.log(f"install failed: {self.outcome.failure}", failed=True)
            await self._logged()
        return self.outcome

    async def _logged(self) -> None:
        if self.on_log is not None:
            await self.on_log()

    async def _install(self) -> None:
        state_dir = self.work / "sandbox"
        # The agent's directory is made in the sandbox's upper layer before it starts (an object
        # unpacked there), so whatever the install writes elsewhere is left behind with the sandbox.
        agent_dir = state_dir / "upper" / "root" / AGENT_DIR.strip("/")
        agent_dir.mkdir(parents=True)
        if self.archive is not None:
            await anyio.to_thread.run_sync(_unpack, self.archive, agent_dir)
            self.outcome.log(f"unpacked the object into {AGENT_DIR}")
        commands = install_commands(self.name, self.version, self.source) if self.source else []
        setup = self.source.agent_setup if self.source else []
        if commands or setup:
            spec = self.environment.spec(self.layers, state_dir, network=True, hostname="agent-build")
            sandbox = await Sandbox.start(spec)
            try:
                for command in [*commands, *setup]:
                    code, output = await self._run(sandbox, command)
                    self.outcome.log(f"$ {command}\n{output}[exit {code}]", failed=code != 0)
                    await self._logged()
                    if code != 0:
                        raise AgentBuildError(f"`{command}` exited {code}: {output.strip()[-2000:]}")
            finally:
                await sandbox.stop()
        scripts = await anyio.to_thread.run_sync(relocate_scripts, agent_dir)
        if scripts:
            self.outcome.log(f"console scripts on PATH, runnable from any mount path: {', '.join(scripts)}")
        await anyio.to_thread.run_sync(_adopt, self.layers, agent_dir, self.layer_id)
        self.outcome.log(f"installed: layer {self.layer_id}")
        await self._logged()

    async def _run(self, sandbox: Sandbox, command: str) -> tuple[int, str]:
        env = {**self.environment.process_env(None), **proxy_env(), "HOME": "/root", **NPM_ENV}
        with tempfile.TemporaryFile() as out:
            code, timed_out = await sandbox.run(
                shell_argv(AGENT_DIR, command, "/bin/bash"),
                stdout=out,
                stderr=out,
                timeout=BUILD_COMMAND_TIMEOUT,
                env=env,
            )
            out.seek(0)
            output = out.read().decode(errors="replace")
        if timed_out:
            return TIMEOUT_EXIT_STATUS, output + f"\ntimed out after {BUILD_COMMAND_TIMEOUT:g} s"
        return code, output


def _unpack(archive: Path, target: Path) -> None:
    """An object's archive (tar, gzip'd or not) as plain files: the `data` filter refuses absolute
    paths, `..`, links out of the target and device nodes."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter="data")
    except tarfile.TarError as exc:
        raise AgentBuildError(f"the object is not a tar or tgz archive an agent can be unpacked from: {exc}") from exc


def _adopt(layers: LayerStore, agent_dir: Path, layer_id: str) -> None:
    """The agent's directory becomes its layer by a rename (the state dir is in the data dir)."""
    target = layers.path(layer_id)
    staging = layers.root / f".tmp-{layer_id}-{os.getpid()}-{os.urandom(4).hex()}"
    os.rename(agent_dir, staging)
    try:
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # installed meanwhile by another agent of the same source
