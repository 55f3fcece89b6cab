"""Installed agents a benchmark run mounts into every attempt's devbox (`--agent-mount
NAME[@VERSION]:PATH`), so an agent installed once (create_agent) runs in each devbox without a
per-run install, its executables on PATH.

Each agent mount is pinned to one agent id when the benchmark run starts: every attempt gets the
same install even if another agent of that name is installed meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..backend import Backend, InvalidRequestError, InvalidStateError
from ..models import AgentMount, AgentView, Mount

SYNTAX = "NAME[@VERSION]:PATH, e.g. claude-code@1.0.0:/opt/claude-code (PATH absolute)"


@dataclass(frozen=True)
class AgentMountSpec:
    name: str
    version: str | None
    path: str

    def __str__(self) -> str:
        return f"{self.name}{'@' + self.version if self.version else ''}:{self.path}"


def parse_agent_mount(text: str) -> AgentMountSpec:
    """`NAME[@VERSION]:PATH`; a ValueError saying what is expected otherwise. A name may itself
    start with `@` (an npm scope): the version is what follows its last `@` after the first
    character."""
    named, sep, rest = text.strip().partition(":/")
    if not sep:
        raise ValueError(f"{text!r} names no absolute PATH to mount the agent at; give {SYNTAX}")
    path = "/" + rest
    if ".." in path.split("/") or path.rstrip("/") == "":
        raise ValueError(f"{text!r}: PATH {path!r} is not a place for a mount; give one such as /opt/my-agent")
    at = named.rfind("@")
    name, version = (named[:at], named[at + 1 :]) if at > 0 else (named, None)
    if not name.strip() or (version is not None and not version.strip()):
        raise ValueError(f"{text!r} has an empty {'VERSION' if name.strip() else 'NAME'}; give {SYNTAX}")
    return AgentMountSpec(name.strip(), version.strip() if version is not None else None, path)


async def installed_agent(backend: Backend, name: str, version: str | None = None) -> AgentView:
    """The newest agent of this exact name (and version, if given) whose install is complete; a
    clear error when there is none, or when none of them finished installing."""
    found: list[AgentView] = []
    starting_after = None
    while True:
        page = await backend.list_agents(limit=100, starting_after=starting_after, name=name, version=version)
        found += [a for a in page.agents if a.name == name and (version is None or a.version == version)]
        if not page.has_more or not page.agents:
            break
        starting_after = page.agents[-1].id
    what = f"{name}@{version}" if version else name
    if not found:
        known = sorted({f"{a.name}@{a.version}" if a.version else a.name for a in (await backend.list_agents()).agents})
        here = f"agents here: {', '.join(known)}" if known else "no agent is installed here"
        raise InvalidRequestError(f"no agent {what!r} is installed ({here}); install it first (create_agent)")
    found.sort(key=lambda a: a.create_time_ms, reverse=True)
    complete = [a for a in found if a.status == "build_complete"]
    if not complete:
        newest = found[0]
        why = f": {newest.failure_message}" if newest.failure_message else "; wait for its install (get_agent)"
        raise InvalidStateError(f"agent {what} ({newest.id}) is `{newest.status}`, not build_complete{why}")
    return complete[0]


async def pinned_mounts(backend: Backend, mounts: Sequence[Mount]) -> list[Mount]:
    """The mounts, each agent mount naming one installed agent by id (checked now, not in every
    attempt)."""
    pinned: list[Mount] = []
    for mount in mounts:
        if isinstance(mount, AgentMount):
            if mount.agent_id is not None:
                agent = await backend.get_agent(mount.agent_id)
                if agent.status != "build_complete":
                    raise InvalidStateError(
                        f"agent {agent.id} ({agent.name}) is `{agent.status}`, not build_complete; "
                        "mount an installed agent"
                    )
            else:
                agent = await installed_agent(backend, str(mount.agent_name))
            mount = mount.model_copy(update={"agent_id": agent.id, "agent_name": None})
        pinned.append(mount)
    return pinned


async def resolve_agent_mounts(backend: Backend, specs: Sequence[AgentMountSpec]) -> list[AgentMount]:
    """`--agent-mount`s as Runloop's agent mounts, each of the installed agent it names."""
    mounts: list[AgentMount] = []
    for spec in specs:
        agent = await installed_agent(backend, spec.name, spec.version)
        mounts.append(AgentMount(agent_id=agent.id, agent_path=spec.path))
    return mounts


def describe(mounts: Sequence[Mount]) -> str:
    """The mounts in a line (a benchmark run's metadata, the console)."""
    return ", ".join(
        f"{m.agent_id}:{m.agent_path or '(default path)'}" if isinstance(m, AgentMount) else m.type for m in mounts
    )
