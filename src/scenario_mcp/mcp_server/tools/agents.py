"""The agent tools: install an agent once (npm, pip, git or an uploaded archive), read it and its
install log, list and delete agents; and the mounts the run and devbox tools take."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from ...backend import Backend, InvalidRequestError
from ...models import (
    BUILD_ENDED,
    AgentBuildLogsListView,
    AgentCreateParameters,
    AgentListView,
    AgentView,
    Mount,
)
from .inputs import AgentIdInput, CreateAgentInput, GetAgentInput, ListAgentsInput
from .shapes import MountInput
from .spec import Unfinished
from .waiting import poll

MOUNT: TypeAdapter[Mount] = TypeAdapter(Mount)


def runloop_mounts(mounts: list[MountInput] | None) -> list[Mount] | None:
    """The flat mount inputs as Runloop's mounts; an error names the mount and what is wrong."""
    if not mounts:
        return None
    shaped = []
    for index, mount in enumerate(mounts):
        try:
            shaped.append(MOUNT.validate_python(mount.model_dump(exclude_none=True)))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
            raise InvalidRequestError(f"mounts[{index}] ({mount.type}): {problems}") from None
    return shaped


async def create_agent(backend: Backend, params: CreateAgentInput) -> AgentView | Unfinished:
    settings: dict[str, object] = {"agent_setup": params.agent_setup}
    if params.source_type in ("npm", "pip"):
        settings.update(package_name=params.package_name, registry_url=params.registry_url)
    elif params.source_type == "git":
        settings.update(repository=params.repository)
    else:
        settings.update(object_id=params.object_id)
    source = {"type": params.source_type, params.source_type: {k: v for k, v in settings.items() if v is not None}}
    try:
        request = AgentCreateParameters.model_validate(
            {"name": params.name, "version": params.version, "source": source}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(
            f"a {params.source_type} agent needs its fields ({problems}): npm/pip package_name, git repository, "
            "object object_id"
        ) from None
    created = await backend.create_agent(request)
    return await _waited(backend, created.id, params.wait_seconds)


async def get_agent(backend: Backend, params: GetAgentInput) -> AgentView | Unfinished:
    return await _waited(backend, params.agent_id, params.wait_seconds)


async def _waited(backend: Backend, agent_id: str, wait_seconds: float) -> AgentView | Unfinished:
    view = await poll(lambda: backend.get_agent(agent_id), lambda a: a.status in BUILD_ENDED, wait_seconds)
    if view.status in BUILD_ENDED:
        return view
    return Unfinished(view, f"still {view.status}: call get_agent with wait_seconds to wait for the install")


async def get_agent_logs(backend: Backend, params: AgentIdInput) -> AgentBuildLogsListView:
    return await backend.agent_logs(params.agent_id)


async def list_agents(backend: Backend, params: ListAgentsInput) -> AgentListView:
    return await backend.list_agents(
        limit=params.limit, starting_after=params.starting_after, name=params.name, version=params.version
    )


async def delete_agent(backend: Backend, params: AgentIdInput) -> AgentView:
    view = await backend.get_agent(params.agent_id)
    await backend.delete_agent(params.agent_id)
    return view
