"""Files in a devbox: read and write text (under /home/user), upload and download bytes (at any
path in the devbox; a relative one is relative to /home/user)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .common import ApiError, RouteTable, backend, body, json_response, path_param

MAX_UPLOAD_BYTES = 256 * 1024 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadFileBody(_Body):
    file_path: str


class WriteFileBody(_Body):
    file_path: str
    contents: str


class DownloadFileBody(_Body):
    path: str


async def read_file(request: Request) -> Response:
    read = await body(request, ReadFileBody)
    return PlainTextResponse(await backend(request).read_file(path_param(request, "id"), read.file_path))


async def write_file(request: Request) -> Response:
    devbox_id = path_param(request, "id")
    write = await body(request, WriteFileBody)
    await backend(request).write_file(devbox_id, write.file_path, write.contents)
    return json_response({"devbox_id": devbox_id, "stdout": "", "stderr": "", "exit_status": 0, "shell_name": None})


async def _upload_form(request: Request) -> tuple[str, bytes]:
    """The `path` and `file` fields of a multipart upload; a 4xx naming what is wrong otherwise."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "upload_file takes multipart/form-data with fields `path` and `file`")
    try:
        form = await request.form()  # file parts spool to disk; other fields stay small
    except HTTPException as exc:  # starlette's parser: a body that is not the multipart it declares
        raise ApiError(
            400, f"request body is not valid multipart/form-data ({exc.detail}): expected fields `path` and `file`"
        ) from exc
    try:
        path, upload = form.get("path"), form.get("file")
        if not isinstance(path, str) or not path:
            raise ApiError(
                400, "path: required form field missing (where to write the file: absolute, or relative to /home/user)"
            )
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "file: required form field missing (the file's contents, as a file part)")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
    finally:
        await form.close()
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, f"file is larger than {MAX_UPLOAD_BYTES} bytes")
    return path, data


async def upload_file(request: Request) -> Response:
    devbox_id = path_param(request, "id")
    path, data = await _upload_form(request)
    await backend(request).upload_file(devbox_id, path, data)
    return json_response({})


async def download_file(request: Request) -> Response:
    download = await body(request, DownloadFileBody)
    data = await backend(request).download_file(path_param(request, "id"), download.path)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", download.path.rstrip("/").rsplit("/", 1)[-1]) or "file"
    return Response(
        data, media_type="application/octet-stream", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


ROUTES: RouteTable = [
    ("POST", "/v1/devboxes/{id}/read_file_contents", read_file),
    ("POST", "/v1/devboxes/{id}/write_file_contents", write_file),
    ("POST", "/v1/devboxes/{id}/upload_file", upload_file),
    ("POST", "/v1/devboxes/{id}/download_file", download_file),
]
