"""An OCI distribution client: image references as Docker users write them, registry auth, blobs.

Reads what `docker pull` reads: manifests (OCI and Docker v2, single images and indexes) and
blobs, over HTTPS, or plain HTTP for registries on loopback addresses (as Docker allows) and those
named in SCENARIO_MCP_INSECURE_REGISTRIES. Auth: anonymous bearer tokens (the `WWW-Authenticate:
Bearer realm=...` flow of Docker Hub and GHCR) and the `auths` entries of ~/.docker/config.json,
sent to the token service or as Basic auth. Credential helpers (`credsStore`) are not run.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
INSECURE_ENV = "SCENARIO_MCP_INSECURE_REGISTRIES"
MIRROR_ENV = "SCENARIO_MCP_REGISTRY_MIRROR"

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
MAX_MANIFEST = 4 << 20

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class ImageError(Exception):
    """An image could not be pulled or unpacked; the message says why."""


@dataclass(frozen=True)
class ImageReference:
    registry: str  # as the user means it: docker.io, ghcr.io, localhost:5000
    repository: str  # library/ubuntu
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """What Docker shows: docker.io/library/ubuntu:24.04, ghcr.io/o/r@sha256:..."""
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def manifest_ref(self) -> str:
        return self.digest or self.tag or "latest"


def parse_reference(text: str) -> ImageReference:
    """Normalise a reference the way Docker does (`ubuntu:24.04` is docker.io/library/ubuntu:24.04)."""
    ref = text.strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageError(f"invalid image reference {text!r}: digest must be sha256:<64 hex digits>")
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _TAG.match(tag):
            raise ImageError(f"invalid image reference {text!r}: bad tag {tag!r}")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, ref
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO.match(repository):
        raise ImageError(f"invalid image reference {text!r}: repository names are lowercase letters, digits, . _ - /")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry, repository, tag, digest)


def is_loopback(host: str) -> bool:
    """Whether a registry host (`127.0.0.1:5000`, `[::1]:5000`, `localhost`) is on this machine."""
    if host.startswith("["):
        name = host[1 : host.find("]")]
    elif host.count(":") == 1:
        name = host.split(":")[0]
    else:
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def load_docker_auths(config_dir: Path | None = None) -> dict[str, tuple[str, str]]:
    """host -> (user, password) from config.json's `auths` (DOCKER_CONFIG, else ~/.docker)."""
    directory = config_dir or Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        data = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    auths: dict[str, tuple[str, str]] = {}
    for key, entry in (data.get("auths") or {}).items():
        encoded = entry.get("auth") if isinstance(entry, dict) else None
        if not encoded:
            continue
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            continue
        host = re.sub(r"^https?://", "", key).split("/", 1)[0]
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = DOCKER_HUB
        auths[host] = (user, password)
    return auths


@dataclass(frozen=True)
class Endpoint:
    """Where a registry's API is: scheme and host (a mirror's, for Docker Hub when one is set)."""

    base_url: str
    credentials_host: str

    @classmethod
    def for_registry(cls, registry: str) -> list[Endpoint]:
        """The endpoints to try, in order: the mirror first for Docker Hub, then the registry."""
        endpoints = []
        mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
        if registry == DOCKER_HUB and mirror:
            if "://" not in mirror:
                mirror = f"{'http' if _plain_http(mirror) else 'https'}://{mirror}"
            endpoints.append(cls(mirror, mirror.split("://", 1)[1].split("/", 1)[0]))
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        endpoints.append(cls(f"{'http' if _plain_http(registry) else 'https'}://{host}", registry))
        return endpoints


def _plain_http(host: str) -> bool:
    insecure = {h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip()}
    return is_loopback(host) or host in insecure or host.split(":")[0] in insecure


class RegistryClient:
    """One registry's API for one repository, with its auth; an async context manager."""

    def __init__(self, endpoint: Endpoint, repository: str, auths: dict[str, tuple[str, str]] | None = None) -> None:
        self.endpoint = endpoint
        self.repository = repository
        auths = load_docker_auths() if auths is None else auths
        self.credentials = auths.get(endpoint.credentials_host)
        loopback = is_loopback(endpoint.base_url.split("://", 1)[1].split("/", 1)[0])
        self._client = httpx2.AsyncClient(
            verify=ssl.create_default_context(),  # the system's CAs (and SSL_CERT_FILE), not certifi's
            timeout=httpx2.Timeout(60.0, connect=15.0),
            follow_redirects=True,  # blobs redirect to storage; the Authorization header stays behind
            trust_env=not loopback,
        )
        self._authorization: str | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def _url(self, kind: str, ref: str) -> str:
        return f"{self.endpoint.base_url}/v2/{self.repository}/{kind}/{ref}"

    @contextlib.asynccontextmanager
    async def _get(self, url: str, headers: dict[str, str]) -> AsyncIterator[httpx2.Response]:
        """A streamed GET, authenticating once when the registry asks for it."""
        for attempt in range(2):
            sent = dict(headers)
            if self._authorization:
                sent["Authorization"] = self._authorization
            try:
                async with self._client.stream("GET", url, headers=sent) as response:
                    if response.status_code == 401 and attempt == 0:
                        challenge = response.headers.get("www-authenticate", "")
                        await response.aclose()
                        await self._authenticate(challenge)
                        continue
                    if response.status_code >= 400:
                        body = (await response.aread())[:500].decode(errors="replace")
                        raise ImageError(f"{url}: HTTP {response.status_code}: {_registry_message(body)}")
                    yield response
                    return
            except httpx2.HTTPError as exc:
                raise ImageError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise ImageError(f"{url}: the registry refused the credentials (HTTP 401)")

    async def _authenticate(self, challenge: str) -> None:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        basic = None
        if self.credentials:
            basic = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if scheme.lower() == "basic":
            if basic is None:
                raise ImageError(
                    f"{self.endpoint.base_url} wants a login: add it to ~/.docker/config.json (`docker login`)"
                )
            self._authorization = basic
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise ImageError(f"{self.endpoint.base_url}: unsupported auth challenge {challenge!r}")
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{self.repository}:pull"
        headers = {"Authorization": basic} if basic else {}
        try:
            response = await self._client.get(params["realm"], params=query, headers=headers)
        except httpx2.HTTPError as exc:
            raise ImageError(f"token service {params['realm']}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ImageError(f"token service {params['realm']}: HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ImageError(f"token service {params['realm']} returned no token")
        self._authorization = f"Bearer {token}"

    async def manifest(self, ref: str) -> tuple[bytes, str]:
        """A manifest's bytes and media type, by tag or digest."""
        async with self._get(self._url("manifests", ref), {"Accept": ACCEPT}) as response:
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise ImageError(f"manifest {ref} is larger than {MAX_MANIFEST} bytes")
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "text/plain"):
            with contextlib.suppress(ValueError):
                media_type = json.loads(data).get("mediaType", media_type)
        return bytes(data), media_type

    @contextlib.asynccontextmanager
    async def blob(self, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """A blob's bytes as they arrive (the caller verifies them against `digest`)."""
        async with self._get(self._url("blobs", digest), {}) as response:
            yield response.aiter_bytes(1 << 20)

    async def blob_bytes(self, digest: str, limit: int = MAX_MANIFEST) -> bytes:
        data = bytearray()
        async with self.blob(digest) as chunks:
            async for chunk in chunks:
                data += chunk
                if len(data) > limit:
                    raise ImageError(f"blob {digest} is larger than {limit} bytes")
        return bytes(data)


def _registry_message(body: str) -> str:
    """The registry's own error text (`{"errors": [{"code": ..., "message": ...}]}`) when it has one."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        errors: list[dict[str, Any]] = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    return body.strip() or "(no body)"
