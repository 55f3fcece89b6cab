"""The models' shared parts: id prefixes and new ids, times, the strict base model."""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..conventions import HOME

ID_PREFIXES = {
    "scenario": "scn",
    "run": "scr",
    "scorer": "sco",
    "benchmark": "bmd",
    "benchmark_run": "bmr",
    "devbox": "dbx",
    "snapshot": "snp",
    "blueprint": "bpt",
    "execution": "exe",
    "object": "obj",
    "network_policy": "npo",
    "agent": "agt",
    "secret": "sec",
}

DEFAULT_WORKING_DIRECTORY = HOME
DEFAULT_SCORER_TIMEOUT_SEC = 1800
DEFAULT_KEEP_ALIVE_SECONDS = 3600
MAX_KEEP_ALIVE_SECONDS = 172_800


def new_id(kind: str) -> str:
    """A Runloop-style id: the kind's prefix and 24 random characters."""
    return f"{ID_PREFIXES[kind]}_{secrets.token_hex(12)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def given(**values: Any) -> dict[str, Any]:
    """The values that were given (not None): a request body, a query, or a partial update."""
    return {name: value for name, value in values.items() if value is not None}


class _Model(BaseModel):
    # Input bodies reject unknown fields so a typo is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid")


Metadata = dict[str, str]


def _is_none(value: Any) -> bool:
    return value is None


def omitted_when_unset(description: str | None = None) -> Any:
    """A view field Runloop's OpenAPI types as optional but never null: left out of the JSON
    while it has no value, rather than sent as null."""
    return Field(default=None, exclude_if=_is_none, description=description)
