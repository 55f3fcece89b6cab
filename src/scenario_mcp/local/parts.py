"""The local engine's parts, each the owner of one noun, wired together once the data dir is held
(engine.py holds the data dir and hands each call to the part that owns it)."""

from __future__ import annotations

from pathlib import Path

from anyio.abc import TaskGroup

from .agents import Agents
from .blueprints import Blueprints
from .custom_scorers import CustomScorers
from .devboxes import Devboxes
from .executions import Executions
from .files import Files
from .garbage import GarbageCollector
from .layers import LayerStore
from .mounts import Mounts
from .network_policies import NetworkPolicies
from .objects import Objects
from .runs import Runs
from .scenarios import Scenarios
from .scoring import Scoring
from .secrets import KEY_FILE, Secrets
from .snapshots import Snapshots
from .store import Store
from .trust import TrustSettings
from .tunnels import Tunnels


class Parts:
    """The engine's parts, made once the data dir is held."""

    def __init__(self, store: Store, data_dir: Path, tg: TaskGroup, trust: TrustSettings) -> None:
        self.trust = trust  # what image devboxes and build steps are given to trust (trust.py)
        self.objects = Objects(store, data_dir / "objects")
        self.network_policies = NetworkPolicies(store)
        self.secrets = Secrets(store, data_dir / KEY_FILE)
        self.blueprints = Blueprints(store, LayerStore(data_dir / "layers"), data_dir / "devboxes")
        self.blueprints.attach_task_group(tg)
        self.blueprints.open_context = self.objects.content_path
        self.blueprints.trust = trust
        self.blueprints.secrets = self.secrets
        self.agents = Agents(store, self.blueprints)
        self.agents.attach_task_group(tg)
        self.devboxes = Devboxes(store, data_dir, self.blueprints, self.network_policies)
        self.devboxes.attach_task_group(tg)
        tg.start_soon(self.devboxes.trash.empty_forever)
        self.devboxes.mounts = Mounts(self.agents, self.blueprints.layers, self._object_content)
        self.devboxes.secrets = self.secrets
        self.executions = Executions(store, self.devboxes)
        self.files = Files(self.devboxes)
        self.tunnels = Tunnels(self.devboxes)
        self.snapshots = Snapshots(store, self.devboxes)
        self.custom_scorers = CustomScorers(store)
        self.scoring = Scoring(store, self.devboxes, self.custom_scorers, data_dir / "scoring")
        self.scenarios = Scenarios(store, self.devboxes, self.executions, self.custom_scorers)
        self.runs = Runs(store, self.devboxes, self.scenarios, self.scoring)
        self.runs.attach_task_group(tg)
        self.garbage = GarbageCollector(store, self.blueprints, tg, self.agents)

    async def _object_content(self, object_id: str) -> tuple[str, Path]:
        """An object's content type and bytes, for an object mount."""
        path = await self.objects.content_path(object_id)
        return (await self.objects.get(object_id)).content_type, path
