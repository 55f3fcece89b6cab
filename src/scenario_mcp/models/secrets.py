"""Secrets: named values kept encrypted and given to devboxes as environment variables (Runloop's Secret).

A view never carries a secret's value: it is given once, on create or update, and only a devbox's
commands see it again (as the environment variable a devbox, run or build names it under).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .base import _Model

SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SecretCreateParameters(_Model):
    name: str = Field(
        min_length=1,
        max_length=256,
        description="Unique among this server's secrets; letters, digits and underscores (as an env var name).",
    )
    value: str = Field(min_length=1, max_length=65536, description="Kept encrypted; never shown again.")


class SecretUpdateParameters(_Model):
    value: str = Field(min_length=1, max_length=65536, description="The new value; kept encrypted, never shown again.")


class SecretView(BaseModel):
    id: str
    name: str
    create_time_ms: int
    update_time_ms: int


class SecretListView(BaseModel):
    secrets: list[SecretView]
    has_more: bool
    total_count: int | None = None
