"""The agents toolset. Agents installed once and mounted into devboxes and runs."""

from __future__ import annotations

from ....models import AgentBuildLogsListView, AgentListView, AgentView
from ..agents import create_agent, delete_agent, get_agent, get_agent_logs, list_agents
from ..inputs import AgentIdInput, CreateAgentInput, GetAgentInput, ListAgentsInput
from ..spec import READ, ToolSpec, hints

AGENT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_agent",
        "Create agent",
        "Install an agent once (npm or pip package, git repo, uploaded archive), to mount into devboxes and runs "
        "(mounts: agent_mount). Waits wait_seconds; then get_agent.",
        CreateAgentInput,
        AgentView,
        create_agent,
        hints(),
        "agents",
        authoring=True,
        waits=True,
    ),
    ToolSpec(
        "get_agent",
        "Get agent",
        "An agent and its install status (queued, building, build_complete, failed).",
        GetAgentInput,
        AgentView,
        get_agent,
        READ,
        "agents",
        authoring=True,
        waits=True,
    ),
    ToolSpec(
        "get_agent_logs",
        "Agent install logs",
        "An agent's install log, one entry per step.",
        AgentIdInput,
        AgentBuildLogsListView,
        get_agent_logs,
        READ,
        "agents",
        authoring=True,
    ),
    ToolSpec(
        "list_agents",
        "List agents",
        "List agents, newest first.",
        ListAgentsInput,
        AgentListView,
        list_agents,
        READ,
        "agents",
        authoring=True,
    ),
    ToolSpec(
        "delete_agent",
        "Delete agent",
        "Delete an agent; devboxes that mount it keep it until they end.",
        AgentIdInput,
        AgentView,
        delete_agent,
        hints(destructive=True),
        "agents",
        authoring=True,
    ),
)
