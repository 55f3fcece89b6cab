"""Argument completion for prompts and resource templates: recent run, scenario and devbox ids.

A client typing `solve_scenario`'s run_id, or the `{scenario_id}` of a template, gets the ids that
start with what was typed. Lookups go through the session's backend, so a solver is offered only
what it may see (a pinned one: its own run, scenario and devbox).
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from ..backend import Backend, BackendError
from .access import Role

CANDIDATES = 100


async def candidate_ids(backend: Backend, argument: str, *, role: Role) -> list[str]:
    if argument == "run_id":
        return [r.id for r in (await backend.list_runs(limit=CANDIDATES)).runs]
    if argument == "scenario_id":
        return [s.id for s in (await backend.list_scenarios(limit=CANDIDATES)).scenarios]
    if argument == "devbox_id":
        ids = [r.devbox_id for r in (await backend.list_runs(limit=CANDIDATES)).runs]
        if role == "author":
            running = await backend.list_devboxes(limit=CANDIDATES, status="running")
            ids = [d.id for d in running.devboxes] + ids
        return list(dict.fromkeys(ids))
    return []


def register_completions(server: MCPServer[Any], backend: Backend, *, role: Role) -> None:
    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves it untyped
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        try:
            ids = await candidate_ids(backend, argument.name, role=role)
        except BackendError:
            ids = []
        matches = [i for i in ids if i.startswith(argument.value)]
        return Completion(values=matches[:CANDIDATES], total=len(matches), has_more=False)
