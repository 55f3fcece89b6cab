"""Secrets on the remote API (Runloop's /v1/secrets, addressed by name)."""

from __future__ import annotations

from urllib.parse import quote

from ..models import SecretCreateParameters, SecretListView, SecretUpdateParameters, SecretView
from .http import RemoteHttp, dump


class SecretsMixin:
    http: RemoteHttp

    async def create_secret(self, params: SecretCreateParameters) -> SecretView:
        return await self.http.post("/v1/secrets", SecretView, dump(params))

    async def get_secret(self, name: str) -> SecretView:
        return await self.http.get(f"/v1/secrets/{quote(name, safe='')}", SecretView)

    async def list_secrets(self, *, limit: int = 20, starting_after: str | None = None) -> SecretListView:
        return await self.http.get("/v1/secrets", SecretListView, limit=limit, starting_after=starting_after)

    async def update_secret(self, name: str, params: SecretUpdateParameters) -> SecretView:
        return await self.http.post(f"/v1/secrets/{quote(name, safe='')}", SecretView, dump(params))

    async def delete_secret(self, name: str) -> SecretView:
        return await self.http.post(f"/v1/secrets/{quote(name, safe='')}/delete", SecretView, {})
