"""The secret tools: create a secret (its value never shown again) and list secrets by name."""

from __future__ import annotations

from ...backend import Backend
from ...models import SecretCreateParameters, SecretListView, SecretView
from .inputs import CreateSecretInput, ListSecretsInput


async def create_secret(backend: Backend, params: CreateSecretInput) -> SecretView:
    return await backend.create_secret(SecretCreateParameters(name=params.name, value=params.value))


async def list_secrets(backend: Backend, params: ListSecretsInput) -> SecretListView:
    return await backend.list_secrets(limit=params.limit, starting_after=params.starting_after)
