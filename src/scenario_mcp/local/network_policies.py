"""Network policies on the local engine: records, and what a policy means for a devbox.

A policy is egress rules a devbox names at launch (`launch_parameters.network_policy_id`):
`allow_all` gives it network; no host allowed gives it none (its own namespace with only `lo`); an
allowlist gives it network whose egress reaches only those hosts' addresses, resolved when the
devbox starts (sandbox/network.py enforces it in the devbox's own namespace). Names are unique, as
they are per account on Runloop; the agent and MCP gateways and devbox-to-devbox tunnels do not
exist here, so those flags are kept but grant nothing.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

import anyio

from ..backend import InvalidRequestError, InvalidStateError, NotFoundError
from ..conventions import MAX_LIST_LIMIT
from ..models import (
    EgressRulesView,
    LaunchParameters,
    NetworkPolicyCreateParameters,
    NetworkPolicyListView,
    NetworkPolicyUpdateParameters,
    NetworkPolicyView,
    new_id,
    now_ms,
)
from .store import Store

# A hostname, or `*.` and one: what an allowlist entry may be (no addresses, no ports, no paths).
_HOSTNAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.I)


@dataclass(frozen=True)
class Egress:
    """What a devbox's network is: none, all, or only to these hosts."""

    network: bool
    allowed_hostnames: tuple[str, ...] = ()  # empty with network: every host

    async def addresses(self) -> list[str] | None:
        """The allowlist's hosts resolved now, as the devbox starts (None: no allowlist). A
        wildcard `*.example.com` stands for the name under it, `example.com`."""
        if not self.allowed_hostnames:
            return None
        found: dict[str, None] = {}
        for name in self.allowed_hostnames:
            host = name.removeprefix("*.")
            try:
                infos = await anyio.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise InvalidRequestError(
                    f"allowed hostname {name!r} of the devbox's network policy does not resolve ({exc}); fix "
                    "the policy, or check this machine's DNS"
                ) from exc
            for info in infos:
                found.setdefault(str(info[4][0]).split("%")[0])
        return list(found)

    @classmethod
    def of(cls, rules: EgressRulesView) -> Egress:
        if rules.allow_all:
            return cls(True)
        if rules.allowed_hostnames:
            return cls(True, tuple(rules.allowed_hostnames))
        return cls(False)


def _check_hostnames(hostnames: list[str] | None) -> list[str]:
    checked = []
    for name in hostnames or []:
        name = name.strip().lower().rstrip(".")
        if not _HOSTNAME.fullmatch(name):
            raise InvalidRequestError(
                f"allowed_hostnames entry {name!r} is not a hostname; give names such as `github.com` or "
                "`*.npmjs.org` (no scheme, port, path or address)"
            )
        checked.append(name)
    return sorted(dict.fromkeys(checked))


class NetworkPolicies:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, params: NetworkPolicyCreateParameters) -> NetworkPolicyView:
        await self._check_name_free(params.name)
        allow_all = bool(params.allow_all)
        created = now_ms()
        view = NetworkPolicyView(
            id=new_id("network_policy"),
            name=params.name,
            description=params.description,
            egress=EgressRulesView(
                allow_all=allow_all,
                # As Runloop: allow_all implies devbox-to-devbox.
                allow_devbox_to_devbox=allow_all or bool(params.allow_devbox_to_devbox),
                allowed_hostnames=_check_hostnames(params.allowed_hostnames),
                allow_agent_gateway=bool(params.allow_agent_gateway),
                allow_mcp_gateway=bool(params.allow_mcp_gateway),
            ),
            create_time_ms=created,
            update_time_ms=created,
        )
        await self._save(view)
        return view

    async def _check_name_free(self, name: str, *, but: str | None = None) -> None:
        taken = (await self.store.list("network_policies", limit=1, name=name)).rows
        if taken and taken[0].id != but:
            raise InvalidStateError(
                f"a network policy named {name!r} exists already ({taken[0].id}); use it, or choose another name"
            )

    async def _save(self, view: NetworkPolicyView) -> None:
        await self.store.put("network_policies", view.id, view.model_dump(mode="json"), name=view.name)

    async def get(self, policy_id: str) -> NetworkPolicyView:
        row = await self.store.get("network_policies", policy_id)
        if row is None:
            raise NotFoundError("network policy", policy_id)
        return NetworkPolicyView.model_validate(row.data)

    async def list(
        self, *, limit: int, starting_after: str | None, name: str | None, policy_id: str | None
    ) -> NetworkPolicyListView:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        contains = [(("name",), name)] if name else []
        page = await self.store.list(
            "network_policies", limit=limit, starting_after=starting_after, contains=contains, id=policy_id
        )
        return NetworkPolicyListView(
            network_policies=[NetworkPolicyView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def update(self, policy_id: str, params: NetworkPolicyUpdateParameters) -> NetworkPolicyView:
        """The fields given replace the policy's; devboxes already running keep what they started with."""
        view = await self.get(policy_id)
        if params.name is not None:
            await self._check_name_free(params.name, but=policy_id)
        egress = view.egress.model_dump()
        for field in ("allow_all", "allow_devbox_to_devbox", "allow_agent_gateway", "allow_mcp_gateway"):
            if (value := getattr(params, field)) is not None:
                egress[field] = value
        if params.allowed_hostnames is not None:
            egress["allowed_hostnames"] = _check_hostnames(params.allowed_hostnames)
        egress["allow_devbox_to_devbox"] = egress["allow_all"] or egress["allow_devbox_to_devbox"]
        updated = view.model_copy(
            update={
                "name": params.name if params.name is not None else view.name,
                "description": params.description if params.description is not None else view.description,
                "egress": EgressRulesView(**egress),
                "update_time_ms": now_ms(),
            }
        )
        await self._save(updated)
        return updated

    async def delete(self, policy_id: str) -> NetworkPolicyView:
        view = await self.get(policy_id)
        await self.store.delete("network_policies", policy_id)
        return view

    async def egress(self, policy_id: str) -> Egress:
        try:
            return Egress.of((await self.get(policy_id)).egress)
        except NotFoundError as exc:
            raise InvalidRequestError(
                f"launch_parameters.network_policy_id {policy_id!r} names no network policy; create one "
                "(POST /v1/network-policies) or leave it out"
            ) from exc

    async def launch_egress(self, launch: LaunchParameters, default_network: bool) -> Egress:
        """The devbox's network: its policy's, or (with none) `network` (off by default)."""
        if launch.network_policy_id is None:
            return Egress(default_network if launch.network is None else launch.network)
        egress = await self.egress(launch.network_policy_id)
        if launch.network is not None and launch.network != egress.network:
            raise InvalidRequestError(
                f"launch_parameters.network is {launch.network} but network policy {launch.network_policy_id} "
                f"{'allows' if egress.network else 'denies'} network; give one of the two"
            )
        return egress


class NetworkPolicyCalls:
    """LocalBackend's network-policy calls (the Backend protocol's), each handed to its part."""

    @property
    def network_policies(self) -> NetworkPolicies:
        raise NotImplementedError  # LocalBackend's own

    async def create_network_policy(self, params: NetworkPolicyCreateParameters) -> NetworkPolicyView:
        return await self.network_policies.create(params)

    async def get_network_policy(self, policy_id: str) -> NetworkPolicyView:
        return await self.network_policies.get(policy_id)

    async def list_network_policies(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        policy_id: str | None = None,
    ) -> NetworkPolicyListView:
        return await self.network_policies.list(
            limit=limit, starting_after=starting_after, name=name, policy_id=policy_id
        )

    async def update_network_policy(self, policy_id: str, params: NetworkPolicyUpdateParameters) -> NetworkPolicyView:
        return await self.network_policies.update(policy_id, params)

    async def delete_network_policy(self, policy_id: str) -> NetworkPolicyView:
        return await self.network_policies.delete(policy_id)
