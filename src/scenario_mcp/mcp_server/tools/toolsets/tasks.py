"""The tasks toolset. Task directories: import Harbor and Terminal-Bench tasks, export a scenario as one."""

from __future__ import annotations

from ..inputs import ExportScenarioInput, ImportScenariosInput
from ..spec import ToolSpec, hints
from ..tasks import ExportScenarioView, ImportScenariosView, export_scenario, import_scenarios

TASK_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "import_scenarios",
        "Import task directories",
        "Create or update scenarios from Harbor or Terminal-Bench task dirs on the server's machine (builds their "
        "environments); an unchanged task changes nothing.",
        ImportScenariosInput,
        ImportScenariosView,
        import_scenarios,
        hints(idempotent=True),
        "tasks",
        authoring=True,
        bounded=True,
        host_dirs=True,
        lists_change=True,
    ),
    ToolSpec(
        "export_scenario",
        "Export scenario as a Harbor task",
        "Write an imported scenario as a Harbor task dir (under --allow-dir), or return its files.",
        ExportScenarioInput,
        ExportScenarioView,
        export_scenario,
        hints(),
        "tasks",
        authoring=True,
        host_dirs=True,
    ),
)
