"""What a tool is: its spec (name, title, description, models, handler, annotations, toolset, who is
offered it, how it waits), the progress reporter long handlers take, an unfinished answer, and the
annotation presets. catalogue.py lists them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mcp.types import ToolAnnotations
from pydantic import BaseModel


class Progress(Protocol):
    async def __call__(self, done: float, total: float | None = None, message: str | None = None) -> None: ...


@dataclass(frozen=True)
class Unfinished:
    """An answer in the object's current state (`scoring`, `building`, `running`), with a message
    saying which tool to call to wait for the rest."""

    current: BaseModel
    message: str


Handler = Callable[..., Awaitable[BaseModel | Unfinished]]
Pending = Callable[[Any], dict[str, Any]]  # the parts of an unfinished operation's answer its input tells

Toolset = Literal[
    "scenarios",
    "devboxes",
    "runs",
    "files",
    "executions",
    "benchmarks",
    "blueprints",
    "tasks",
    "agents",
    "secrets",
    "tunnels",
]


def no_fields(_params: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    annotations: ToolAnnotations
    toolset: Toolset
    authoring: bool = False  # hidden from solver sessions
    pinned: bool = True  # offered to a solver pinned to one run (--run)
    progress: bool = False  # the handler takes a Progress reporter as its third argument
    # May take long: the server runs it as an operation and waits at most the input's
    # `wait_seconds` (operations.py); `pending` fills the answer given while it goes on.
    bounded: bool = False
    pending: Pending = no_fields
    waits: bool = False  # may answer Unfinished (a `message` joins its output schema)
    lists_change: bool = False  # creates something that resources/list shows
    host_dirs: bool = False  # the handler takes the server's allowed host directories (`host_dirs=`)

    @property
    def quick(self) -> bool:
        """Answers at once, with nothing to report on the way (no progress, no wait, no operation)."""
        return not (self.progress or self.bounded or self.waits)


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
