"""Scenarios as files: Harbor and Terminal-Bench task directories imported as scenarios, and a
scenario exported as a Harbor task directory."""

from .export import export_scenario, scenario_task
from .harbor import task_files, write_harbor
from .importer import ImportResult, TaskImportError, import_tasks, read_task
from .task import Task, TaskFormatError

__all__ = [
    "ImportResult",
    "Task",
    "TaskFormatError",
    "TaskImportError",
    "export_scenario",
    "import_tasks",
    "read_task",
    "scenario_task",
    "task_files",
    "write_harbor",
]
