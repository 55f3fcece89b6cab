"""The files toolset. A devbox's files: read, write and list them."""

from __future__ import annotations

from ..devboxes import list_devbox_files, read_devbox_file, write_devbox_file
from ..inputs import DirectoryListing, FileContents, FileWritten, ListFilesInput, ReadFileInput, WriteFileInput
from ..spec import READ, ToolSpec, hints

FILE_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "read_devbox_file",
        "Read a devbox file",
        "Read a text file from a devbox.",
        ReadFileInput,
        FileContents,
        read_devbox_file,
        READ,
        "files",
    ),
    ToolSpec(
        "write_devbox_file",
        "Write a devbox file",
        "Create or replace a text file in a devbox.",
        WriteFileInput,
        FileWritten,
        write_devbox_file,
        hints(idempotent=True),
        "files",
    ),
    ToolSpec(
        "list_devbox_files",
        "List a devbox directory",
        "List a devbox directory.",
        ListFilesInput,
        DirectoryListing,
        list_devbox_files,
        READ,
        "files",
    ),
)
