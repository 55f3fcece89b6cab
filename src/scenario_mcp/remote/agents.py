"""Agents on the remote API (Runloop's /v1/agents; their install logs are this engine's own)."""

from __future__ import annotations

from ..models import BUILD_ENDED, AgentBuildLogsListView, AgentCreateParameters, AgentListView, AgentView
from .http import RemoteHttp, dump, poll


class AgentsMixin:
    http: RemoteHttp

    async def create_agent(self, params: AgentCreateParameters) -> AgentView:
        return await self.http.post("/v1/agents", AgentView, dump(params))

    async def get_agent(self, agent_id: str) -> AgentView:
        return await self.http.get(f"/v1/agents/{agent_id}", AgentView)

    async def wait_for_agent(self, agent_id: str, *, timeout_seconds: float = 1800) -> AgentView:
        # Runloop's agents have no install state: its views read as build_complete at once.
        return await poll(
            lambda: self.get_agent(agent_id),
            lambda a: a.status in BUILD_ENDED,
            timeout=timeout_seconds,
            what=f"the install of agent {agent_id}",
        )

    async def list_agents(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        version: str | None = None,
        search: str | None = None,
    ) -> AgentListView:
        return await self.http.get(
            "/v1/agents",
            AgentListView,
            limit=limit,
            starting_after=starting_after,
            name=name,
            version=version,
            search=search,
        )

    async def agent_logs(self, agent_id: str) -> AgentBuildLogsListView:
        return await self.http.get(f"/v1/agents/{agent_id}/logs", AgentBuildLogsListView)

    async def delete_agent(self, agent_id: str) -> None:
        await self.http.request("POST", f"/v1/agents/{agent_id}/delete")
