"""Runloop's metadata listings: which keys the objects of a kind carry, and the values of one key.

Public objects (`…/public/metadata/…`) are Runloop's catalogue; there are none here, so their
listings are empty.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from ..models import COLLECTION_PATHS, MetadataKeysView, MetadataKind, MetadataValuesView
from .common import RouteTable, backend, model_response, path_param

_WITH_PUBLIC: tuple[MetadataKind, ...] = ("blueprints", "snapshots")


async def metadata_keys(request: Request, kind: MetadataKind) -> Response:
    return model_response(await backend(request).metadata_keys(kind))


async def metadata_values(request: Request, kind: MetadataKind) -> Response:
    return model_response(await backend(request).metadata_values(kind, path_param(request, "key")))


async def public_keys(request: Request) -> Response:
    return model_response(MetadataKeysView(keys=[]))


async def public_values(request: Request) -> Response:
    return model_response(MetadataValuesView(key=path_param(request, "key"), values=[]))


# First among all routes: `…/metadata/keys` is not an object id.
ROUTES: RouteTable = [
    *(
        route
        for kind, path in COLLECTION_PATHS.items()
        for route in (
            ("GET", f"{path}/metadata/keys", partial(metadata_keys, kind=kind)),
            ("GET", f"{path}/metadata/keys/{{key}}/values", partial(metadata_values, kind=kind)),
        )
    ),
    *(("GET", f"{COLLECTION_PATHS[kind]}/public/metadata/keys", public_keys) for kind in _WITH_PUBLIC),
    *(("GET", f"{COLLECTION_PATHS[kind]}/public/metadata/keys/{{key}}/values", public_values) for kind in _WITH_PUBLIC),
]
