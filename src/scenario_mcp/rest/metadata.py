"""Runloop's metadata listings: which keys the objects of a kind carry, and the values of one key.

Public objects (`…/public/metadata/…`) are Runloop's catalogue; there are none here, so their
listings are empty.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..backend import Backend
from ..models import COLLECTION_PATHS, MetadataKeysView, MetadataKind, MetadataValuesView
from .common import model_response, path_param

_WITH_PUBLIC: tuple[MetadataKind, ...] = ("blueprints", "snapshots")


def routes(backend: Backend) -> list[Route]:
    def keys_of(kind: MetadataKind) -> Route:
        async def keys(request: Request) -> Response:
            return model_response(await backend.metadata_keys(kind))

        return Route(f"{COLLECTION_PATHS[kind]}/metadata/keys", keys, methods=["GET"])

    def values_of(kind: MetadataKind) -> Route:
        async def values(request: Request) -> Response:
            return model_response(await backend.metadata_values(kind, path_param(request, "key")))

        return Route(f"{COLLECTION_PATHS[kind]}/metadata/keys/{{key}}/values", values, methods=["GET"])

    async def public_keys(request: Request) -> Response:
        return model_response(MetadataKeysView(keys=[]))

    async def public_values(request: Request) -> Response:
        return model_response(MetadataValuesView(key=path_param(request, "key"), values=[]))

    return [
        *(route for kind in COLLECTION_PATHS for route in (keys_of(kind), values_of(kind))),
        *(
            Route(f"{COLLECTION_PATHS[kind]}/public/metadata/keys", public_keys, methods=["GET"])
            for kind in _WITH_PUBLIC
        ),
        *(
            Route(f"{COLLECTION_PATHS[kind]}/public/metadata/keys/{{key}}/values", public_values, methods=["GET"])
            for kind in _WITH_PUBLIC
        ),
    ]
