"""Storage objects: create, list, read, complete, delete, download URLs; and the presigned URLs.

A backend that keeps object content itself (the local engine: ObjectTransfers) hands out its
upload and download URLs as paths under OBJECT_STORAGE_PATH; this module answers them (`PUT` to
upload, `GET` to download, without a bearer token: the URL's token or signature is the credential)
and puts the host the request came in on in front of them, so the SDK's unauthenticated PUT and GET
reach this server. A backend without content of its own (the remote one) hands out absolute URLs,
passed on as they are.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..backend import ObjectTransfers
from ..conventions import OBJECT_STORAGE_PATH
from ..models import DEFAULT_DOWNLOAD_SECONDS, MAX_DOWNLOAD_SECONDS, ObjectCreateParameters, ObjectListView
from .common import (
    ApiError,
    RouteTable,
    backend,
    body,
    json_object,
    model_response,
    path_param,
    query_bool,
    query_int,
    query_limit,
    query_str,
)


def absolute(request: Request, url: str) -> str:
    """A path the backend gave, as a URL on the host this request came in on."""
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url


async def create_object(request: Request) -> Response:
    view = await backend(request).create_object(await body(request, ObjectCreateParameters))
    if view.upload_url:
        view = view.model_copy(update={"upload_url": absolute(request, view.upload_url)})
    return model_response(view)


async def list_objects(request: Request) -> Response:
    page = await backend(request).list_objects(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        name=query_str(request, "name"),
        content_type=query_str(request, "content_type"),
        state=query_str(request, "state"),
        search=query_str(request, "search"),
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def list_public_objects(request: Request) -> Response:
    # Runloop's public objects are its own; this server has none.
    return model_response(ObjectListView(objects=[], has_more=False, total_count=0))


async def get_object(request: Request) -> Response:
    return model_response(await backend(request).get_object(path_param(request, "id")))


async def complete_object(request: Request) -> Response:
    await json_object(request, required=False)  # Runloop's empty record: nothing to read
    return model_response(await backend(request).complete_object(path_param(request, "id")))


async def delete_object(request: Request) -> Response:
    await json_object(request, required=False)
    return model_response(await backend(request).delete_object(path_param(request, "id")))


async def download_url(request: Request) -> Response:
    duration = query_int(request, "duration_seconds", DEFAULT_DOWNLOAD_SECONDS, minimum=1, maximum=MAX_DOWNLOAD_SECONDS)
    view = await backend(request).object_download_url(path_param(request, "id"), duration_seconds=duration)
    return model_response(view.model_copy(update={"download_url": absolute(request, view.download_url)}))


# --- the presigned URLs (no bearer token: see app.py's open paths) ----------------------------


def _transfers(request: Request) -> ObjectTransfers:
    engine = backend(request)
    if not isinstance(engine, ObjectTransfers):
        raise ApiError(404, "this server keeps no object content (it serves a remote API); use the URLs that API gave")
    return engine


def _declared_size(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def upload_content(request: Request) -> Response:
    token = query_str(request, "token")
    if token is None:
        raise ApiError(403, "this upload URL has no token; PUT to the upload_url that creating the object returned")
    await _transfers(request).receive_object_upload(
        path_param(request, "id"), token, request.stream(), size=_declared_size(request)
    )
    return Response(status_code=200)


async def download_content(request: Request) -> Response:
    expires, signature = query_str(request, "expires"), query_str(request, "signature")
    if expires is None or not expires.isdigit() or signature is None:
        raise ApiError(
            403, "this download URL is incomplete; use the download_url of GET /v1/objects/{id}/download as it is"
        )
    path = await _transfers(request).object_download_path(path_param(request, "id"), int(expires), signature)
    return FileResponse(path, media_type="application/octet-stream")


# Fixed paths (`list_public`) before the `{id}` routes they would otherwise match.
ROUTES: RouteTable = [
    ("POST", "/v1/objects", create_object),
    ("GET", "/v1/objects", list_objects),
    ("GET", "/v1/objects/list_public", list_public_objects),
    ("GET", "/v1/objects/{id}", get_object),
    ("POST", "/v1/objects/{id}/complete", complete_object),
    ("POST", "/v1/objects/{id}/delete", delete_object),
    ("GET", "/v1/objects/{id}/download", download_url),
    ("PUT", OBJECT_STORAGE_PATH + "/{id}", upload_content),
    ("GET", OBJECT_STORAGE_PATH + "/{id}", download_content),
]
