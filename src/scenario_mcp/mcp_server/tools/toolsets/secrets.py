"""The secrets toolset. Secrets devboxes and runs get as environment variables."""

from __future__ import annotations

from ....models import SecretListView, SecretView
from ..inputs import CreateSecretInput, ListSecretsInput
from ..secrets import create_secret, list_secrets
from ..spec import READ, ToolSpec, hints

SECRET_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_secret",
        "Create secret",
        "Store a value (an API key) encrypted under a name; devboxes and runs get it as an env var "
        "(REST secrets / runProfile.secrets). The value is never shown again.",
        CreateSecretInput,
        SecretView,
        create_secret,
        hints(),
        "secrets",
        authoring=True,
    ),
    ToolSpec(
        "list_secrets",
        "List secrets",
        "List secrets by name, newest first (no values).",
        ListSecretsInput,
        SecretListView,
        list_secrets,
        READ,
        "secrets",
        authoring=True,
    ),
)
