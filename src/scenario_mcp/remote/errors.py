"""Errors answered by the remote API, as BackendErrors that carry the remote status and message, so
an agent sees what the server said."""

from __future__ import annotations

import json

import httpx2

from ..backend import (
    AccessDeniedError,
    BackendError,
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
    PayloadTooLargeError,
)


class RemoteError(BackendError):
    """An error answered by the remote API: its HTTP status and its message."""

    def __init__(self, status: int, message: str) -> None:
        BackendError.__init__(self, message)
        self.status = status


class RemoteInvalidRequestError(RemoteError, InvalidRequestError):
    pass


class RemoteNotFoundError(RemoteError, NotFoundError):
    # NotFoundError's attributes, which the remote message does not split out.
    kind = "object"
    ident = ""


class RemoteInvalidStateError(RemoteError, InvalidStateError):
    pass


class RemoteTimeoutError(RemoteError, OperationTimeoutError):
    pass


class RemoteAccessDeniedError(RemoteError, AccessDeniedError):
    pass


class RemotePayloadTooLargeError(RemoteError, PayloadTooLargeError):
    pass


class RemoteUnavailableError(RemoteError, EnvironmentUnavailableError):
    pass


_ERRORS: dict[int, type[RemoteError]] = {
    400: RemoteInvalidRequestError,
    403: RemoteAccessDeniedError,
    404: RemoteNotFoundError,
    408: RemoteTimeoutError,
    409: RemoteInvalidStateError,
    413: RemotePayloadTooLargeError,
    422: RemoteInvalidRequestError,
    503: RemoteUnavailableError,
}


def remote_error(status: int, message: str) -> RemoteError:
    return _ERRORS.get(status, RemoteError)(status, message)


def answered(status: int, message: str, where: str) -> RemoteError:
    """The error for a remote answer, saying which request got it."""
    return remote_error(status, f"{message} [remote API: {status} on {where}]")


def error_message(response: httpx2.Response) -> str:
    """The message of an error body in Runloop's shape, or in any common shape, or its text."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return text[:2000] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return json.dumps(data)[:2000]


def raise_for_status(response: httpx2.Response, where: str) -> None:
    if response.status_code >= 400:
        raise answered(response.status_code, error_message(response), where)
