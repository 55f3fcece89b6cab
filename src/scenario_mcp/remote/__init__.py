"""The Backend protocol over a Runloop-compatible REST API (Runloop's cloud, or another machine
running `scenario-mcp api`), with httpx2."""

from .backend import RemoteBackend
from .errors import (
    RemoteAccessDeniedError,
    RemoteError,
    RemoteInvalidRequestError,
    RemoteInvalidStateError,
    RemoteNotFoundError,
    RemotePayloadTooLargeError,
    RemoteTimeoutError,
    RemoteUnavailableError,
)
from .http import DEFAULT_BASE_URL

__all__ = [
    "DEFAULT_BASE_URL",
    "RemoteAccessDeniedError",
    "RemoteBackend",
    "RemoteError",
    "RemoteInvalidRequestError",
    "RemoteInvalidStateError",
    "RemoteNotFoundError",
    "RemotePayloadTooLargeError",
    "RemoteTimeoutError",
    "RemoteUnavailableError",
]
