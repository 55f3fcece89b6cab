"""Secrets on the local engine: values kept encrypted in the database, given to devbox commands as
environment variables, and redacted from whatever output the engine keeps of them.

Each value is sealed with AES-256-GCM (the `cryptography` library), its name as associated data so
a sealed value cannot be moved to another name. The key is a file of its own in the data dir,
`secrets.key`, made on first use and readable by the server's user only (0600). That keeps the
values out of a copy of the database, a backup or a bug report that carries `scenario-mcp.sqlite3`
without the key; it does not protect them from anyone who can read the server's user's files (they
can read the key too), nor from a devbox's own commands, which see the values they were given.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from pathlib import Path

import anyio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..backend import InvalidRequestError, InvalidStateError, NotFoundError
from ..conventions import MAX_LIST_LIMIT
from ..models import (
    SecretCreateParameters,
    SecretListView,
    SecretUpdateParameters,
    SecretView,
    new_id,
    now_ms,
)
from ..models.secrets import SECRET_NAME_PATTERN
from .store import Store

KEY_FILE = "secrets.key"
_NAME = re.compile(SECRET_NAME_PATTERN)
NONCE_BYTES = 12


def redaction_marker(name: str) -> str:
    return f"[secret {name}]"


class SecretKey:
    """The data dir's AES-256 key: read from its file, or made there on first use (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._aead: AESGCM | None = None

    def aead(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load_or_make())
        return self._aead

    def _load_or_make(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = self.path.read_bytes()
            if len(key) != 32:
                raise InvalidStateError(
                    f"the secrets key {self.path} is not 32 bytes; restore it from a backup (without it the "
                    "stored secrets cannot be read) or remove it and every secret, then create them again"
                ) from None
            return key
        key = AESGCM.generate_key(bit_length=256)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    def seal(self, name: str, value: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.aead().encrypt(nonce, value.encode(), name.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, name: str, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self.aead().decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode()).decode()


def check_secret_names(mapping: Mapping[str, str] | None, field: str) -> dict[str, str]:
    """A `{env var: secret name}` map with both sides well formed."""
    checked: dict[str, str] = {}
    for env_name, secret_name in (mapping or {}).items():
        if not _NAME.fullmatch(env_name):
            raise InvalidRequestError(
                f"{field} key {env_name!r} is not an environment variable name; use letters, digits and underscores"
            )
        if not isinstance(secret_name, str) or not _NAME.fullmatch(secret_name):
            raise InvalidRequestError(
                f"{field}[{env_name!r}] must name a secret (letters, digits and underscores), got {secret_name!r}"
            )
        checked[env_name] = secret_name
    return checked


class Redactor:
    """Replaces each exact secret value in a byte stream by `[secret NAME]`, across chunk borders:
    the end of a chunk that could begin a value is held back until the next chunk decides it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        # Longest first, so a value that contains another is replaced whole.
        pairs = sorted(
            ((v.encode(), redaction_marker(n).encode()) for n, v in values.items() if v), key=lambda p: -len(p[0])
        )
        self._pairs = pairs
        self._pending = b""

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def text(self, text: str) -> str:
        """A whole text, redacted (no holding back)."""
        for value, marker in self._pairs:
            text = text.replace(value.decode(), marker.decode())
        return text

    def feed(self, data: bytes) -> bytes:
        data = self._replace(self._pending + data)
        hold = self._held(data)
        self._pending = data[len(data) - hold :] if hold else b""
        return data[: len(data) - hold]

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return data

    def _replace(self, data: bytes) -> bytes:
        for value, marker in self._pairs:
            data = data.replace(value, marker)
        return data

    def _held(self, data: bytes) -> int:
        longest = max((len(value) for value, _ in self._pairs), default=0)
        for size in range(min(longest - 1, len(data)), 0, -1):
            tail = data[-size:]
            if any(value.startswith(tail) for value, _ in self._pairs):
                return size
        return 0


class Secrets:
    def __init__(self, store: Store, key_path: Path) -> None:
        self.store = store
        self.key = SecretKey(key_path)

    async def create(self, params: SecretCreateParameters) -> SecretView:
        self._check_name(params.name)
        taken = (await self.store.list("secrets", limit=1, name=params.name)).rows
        if taken:
            raise InvalidStateError(
                f"a secret named {params.name!r} exists already; update its value (POST /v1/secrets/{params.name}) "
                "or choose another name"
            )
        created = now_ms()
        view = SecretView(id=new_id("secret"), name=params.name, create_time_ms=created, update_time_ms=created)
        await self._save(view, params.value)
        return view

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.fullmatch(name):
            raise InvalidRequestError(
                f"secret name {name!r} is not valid; use letters, digits and underscores, not starting with a digit"
            )

    async def _save(self, view: SecretView, value: str) -> None:
        sealed = await anyio.to_thread.run_sync(self.key.seal, view.name, value)
        await self.store.put(
            "secrets", view.id, view.model_dump(mode="json"), internal={"sealed": sealed}, name=view.name
        )

    async def _row(self, name: str) -> tuple[SecretView, str]:
        rows = (await self.store.list("secrets", limit=1, name=name)).rows
        if not rows:
            raise NotFoundError("secret", name)
        return SecretView.model_validate(rows[0].data), str(rows[0].internal["sealed"])

    async def get(self, name: str) -> SecretView:
        return (await self._row(name))[0]

    async def list(self, *, limit: int, starting_after: str | None = None) -> SecretListView:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        page = await self.store.list("secrets", limit=limit, starting_after=starting_after)
        return SecretListView(
            secrets=[SecretView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def update(self, name: str, params: SecretUpdateParameters) -> SecretView:
        view, _ = await self._row(name)
        updated = view.model_copy(update={"update_time_ms": now_ms()})
        await self._save(updated, params.value)
        return updated

    async def delete(self, name: str) -> SecretView:
        view, _ = await self._row(name)
        await self.store.delete("secrets", view.id)
        return view

    async def check_exist(self, mapping: Mapping[str, str], field: str) -> None:
        """Every secret the map names exists (a devbox, run or build names them before it starts)."""
        for env_name, secret_name in mapping.items():
            try:
                await self._row(secret_name)
            except NotFoundError:
                raise InvalidRequestError(
                    f"{field}[{env_name!r}] names secret {secret_name!r}, which does not exist; create it "
                    "(POST /v1/secrets or the create_secret tool) or leave it out"
                ) from None

    async def values(self, mapping: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """`{env var: (secret name, value)}` for a `{env var: secret name}` map, decrypted now."""
        resolved: dict[str, tuple[str, str]] = {}
        for env_name, secret_name in mapping.items():
            try:
                _, sealed = await self._row(secret_name)
            except NotFoundError:
                raise InvalidStateError(
                    f"secret {secret_name!r} (environment variable {env_name}) was deleted; create it again "
                    "to run commands here"
                ) from None
            resolved[env_name] = (secret_name, await anyio.to_thread.run_sync(self.key.open, secret_name, sealed))
        return resolved

    async def redactor(self, mapping: Mapping[str, str]) -> Redactor:
        """A redactor of the values a `{env var: secret name}` map names (a deleted one: nothing)."""
        values: dict[str, str] = {}
        for secret_name in mapping.values():
            try:
                _, sealed = await self._row(secret_name)
            except NotFoundError:
                continue
            values[secret_name] = await anyio.to_thread.run_sync(self.key.open, secret_name, sealed)
        return Redactor(values)


class SecretCalls:
    """LocalBackend's secret calls (the Backend protocol's), each handed to its part."""

    @property
    def secrets(self) -> Secrets:
        raise NotImplementedError  # LocalBackend's own

    async def create_secret(self, params: SecretCreateParameters) -> SecretView:
        return await self.secrets.create(params)

    async def get_secret(self, name: str) -> SecretView:
        return await self.secrets.get(name)

    async def list_secrets(self, *, limit: int = 20, starting_after: str | None = None) -> SecretListView:
        return await self.secrets.list(limit=limit, starting_after=starting_after)

    async def update_secret(self, name: str, params: SecretUpdateParameters) -> SecretView:
        return await self.secrets.update(name, params)

    async def delete_secret(self, name: str) -> SecretView:
        return await self.secrets.delete(name)
