"""Network policies on the remote API (Runloop's /v1/network-policies)."""

from __future__ import annotations

from ..models import (
    NetworkPolicyCreateParameters,
    NetworkPolicyListView,
    NetworkPolicyUpdateParameters,
    NetworkPolicyView,
)
from .http import RemoteHttp, dump


class NetworkPoliciesMixin:
    http: RemoteHttp

    async def create_network_policy(self, params: NetworkPolicyCreateParameters) -> NetworkPolicyView:
        return await self.http.post("/v1/network-policies", NetworkPolicyView, dump(params))

    async def get_network_policy(self, policy_id: str) -> NetworkPolicyView:
        return await self.http.get(f"/v1/network-policies/{policy_id}", NetworkPolicyView)

    async def list_network_policies(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        policy_id: str | None = None,
    ) -> NetworkPolicyListView:
        return await self.http.get(
            "/v1/network-policies",
            NetworkPolicyListView,
            limit=limit,
            starting_after=starting_after,
            name=name,
            id=policy_id,
        )

    async def update_network_policy(self, policy_id: str, params: NetworkPolicyUpdateParameters) -> NetworkPolicyView:
        return await self.http.post(f"/v1/network-policies/{policy_id}", NetworkPolicyView, dump(params))

    async def delete_network_policy(self, policy_id: str) -> NetworkPolicyView:
        return await self.http.post(f"/v1/network-policies/{policy_id}/delete", NetworkPolicyView, {})
