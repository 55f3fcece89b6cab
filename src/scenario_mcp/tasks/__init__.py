"""Scenarios as files: Harbor and Terminal-Bench task directories imported as scenarios, and a
scenario exported as a Harbor task directory."""

from .importer import ImportResult, TaskImportError, import_tasks, read_task
from .task import Task, TaskFormatError

__all__ = ["ImportResult", "Task", "TaskFormatError", "TaskImportError", "import_tasks", "read_task"]
