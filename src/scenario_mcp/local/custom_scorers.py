"""Custom scorers on the local engine: registered bash scripts that scenarios name by `type`.

A scenario's `custom_scorer` scoring function says `custom_scorer_type: <type>`; the script
registered under that type runs with `RL_SCORER_CONTEXT` set to the function's `scorer_params`.
The type is the registry's key, so it is unique: registering a type twice is an error, and an
update may rename a scorer only to a type no other scorer has.
"""

from __future__ import annotations

from ..backend import InvalidRequestError, NotFoundError
from ..models import (
    HARBOR_VERIFIER,
    CreateCustomScorerParameters,
    ScenarioScorersListView,
    ScenarioScorerView,
    new_id,
)
from .boundary import check_limit
from .store import Store, Table

TABLE: Table = "scorers"


class CustomScorers:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _save(self, view: ScenarioScorerView) -> None:
        # `name` holds the type: the indexed column the by-type lookup filters on.
        await self.store.put(TABLE, view.id, view.model_dump(mode="json"), name=view.type)

    async def by_type(self, scorer_type: str) -> ScenarioScorerView | None:
        """The scorer registered under `scorer_type`, if any (what scoring a custom_scorer needs)."""
        page = await self.store.list(TABLE, limit=1, name=scorer_type)
        return ScenarioScorerView.model_validate(page.rows[0].data) if page.rows else None

    async def _check_type_free(self, scorer_type: str, *, except_id: str | None = None) -> None:
        if scorer_type == HARBOR_VERIFIER:
            raise InvalidRequestError(
                f"custom scorer type {HARBOR_VERIFIER!r} is the engine's own (Harbor's verifier contract); "
                "choose another type"
            )
        existing = await self.by_type(scorer_type)
        if existing is not None and existing.id != except_id:
            raise InvalidRequestError(
                f"a custom scorer of type {scorer_type!r} already exists ({existing.id}); "
                "update that one or choose another type"
            )

    async def create(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        if not params.bash_script.strip():
            raise InvalidRequestError("bash_script is empty; give a script whose last output line is the score")
        await self._check_type_free(params.type)
        view = ScenarioScorerView(id=new_id("scorer"), type=params.type, bash_script=params.bash_script)
        await self._save(view)
        return view

    async def get(self, scorer_id: str) -> ScenarioScorerView:
        row = await self.store.get(TABLE, scorer_id)
        if row is None:
            raise NotFoundError("custom scorer", scorer_id)
        return ScenarioScorerView.model_validate(row.data)

    async def list(self, *, limit: int, starting_after: str | None = None) -> ScenarioScorersListView:
        page = await self.store.list(TABLE, limit=limit, starting_after=starting_after)
        return ScenarioScorersListView(
            scorers=[ScenarioScorerView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def update(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        current = await self.get(scorer_id)
        if not params.bash_script.strip():
            raise InvalidRequestError("bash_script is empty; give a script whose last output line is the score")
        if params.type != current.type:
            await self._check_type_free(params.type, except_id=scorer_id)
        view = current.model_copy(update={"type": params.type, "bash_script": params.bash_script})
        await self._save(view)
        return view


class CustomScorerCalls:
    """LocalBackend's custom scorer calls (the Backend protocol's), each handed to its `custom_scorers`."""

    @property
    def custom_scorers(self) -> CustomScorers:
        raise NotImplementedError  # LocalBackend's own

    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.custom_scorers.create(params)

    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView:
        return await self.custom_scorers.get(scorer_id)

    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView:
        return await self.custom_scorers.list(limit=check_limit(limit), starting_after=starting_after)

    async def update_custom_scorer(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.custom_scorers.update(scorer_id, params)
