"""Network policies: which egress a devbox gets (Runloop's NetworkPolicy)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .base import _Model


class NetworkPolicyCreateParameters(_Model):
    name: str = Field(min_length=1, description="Unique among this server's network policies.")
    allow_all: bool | None = Field(default=None, description="Every egress allowed (the devbox has network).")
    allowed_hostnames: list[str] | None = Field(
        default=None,
        description="Egress only to these hosts (`github.com`, `*.npmjs.org`), resolved when a devbox starts; "
        "empty with allow_all false: no network at all.",
    )
    allow_devbox_to_devbox: bool | None = None
    allow_agent_gateway: bool | None = None
    allow_mcp_gateway: bool | None = None
    description: str | None = None


class NetworkPolicyUpdateParameters(_Model):
    name: str | None = Field(default=None, min_length=1)
    allow_all: bool | None = None
    allowed_hostnames: list[str] | None = None
    allow_devbox_to_devbox: bool | None = None
    allow_agent_gateway: bool | None = None
    allow_mcp_gateway: bool | None = None
    description: str | None = None


class EgressRulesView(BaseModel):
    allow_all: bool
    allow_devbox_to_devbox: bool
    allowed_hostnames: list[str]
    allow_agent_gateway: bool
    allow_mcp_gateway: bool


class NetworkPolicyView(BaseModel):
    id: str
    name: str
    description: str | None = None
    egress: EgressRulesView
    create_time_ms: int
    update_time_ms: int


class NetworkPolicyListView(BaseModel):
    network_policies: list[NetworkPolicyView]
    has_more: bool
    total_count: int | None = None
