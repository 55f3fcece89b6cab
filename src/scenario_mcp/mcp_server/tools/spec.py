"""What a tool is: its spec (name, title, description, models, handler, annotations, who is offered
it), the progress reporter long handlers take, and the annotation presets. catalogue.py lists them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mcp.types import ToolAnnotations
from pydantic import BaseModel


class Progress(Protocol):
    async def __call__(self, done: float, total: float | None = None, message: str | None = None) -> None: ...


Handler = Callable[..., Awaitable[BaseModel]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    annotations: ToolAnnotations
    authoring: bool = False  # hidden from solver sessions
    pinned: bool = True  # offered to a solver pinned to one run (--run)
    progress: bool = False  # the handler takes a Progress reporter as its third argument
    heartbeat: bool = False  # may take long: the server reports elapsed time while it runs
    lists_change: bool = False  # creates something that resources/list shows
    host_dirs: bool = False  # the handler takes the server's allowed host directories (`host_dirs=`)


def hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    # openWorldHint is false: the local engine touches nothing outside this machine (build_server
    # sets it true over a remote backend).
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


READ = hints(read_only=True, idempotent=True)
