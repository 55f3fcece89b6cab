"""Scenarios as files over MCP: import task directories, export a scenario as a Harbor task."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ...backend import Backend, InvalidRequestError
from ...tasks import ImportResult, TaskFormatError, TaskImportError, import_tasks, scenario_task, task_files
from ...tasks import export_scenario as write_scenario
from ..host_dirs import HostDirs
from .inputs import ExportScenarioInput, ImportScenariosInput


class ImportScenariosView(BaseModel):
    results: list[ImportResult] = Field(default_factory=list)


class TaskFileView(BaseModel):
    path: str
    contents: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class ExportScenarioView(BaseModel):
    scenario_id: str
    directory: str | None = None
    files: list[TaskFileView] | None = Field(default=None, description="The task's files, when not written.")


async def import_scenarios(
    backend: Backend, params: ImportScenariosInput, *, host_dirs: HostDirs
) -> ImportScenariosView:
    paths = [host_dirs.resolve(p, field="path") for p in params.paths]
    try:
        return ImportScenariosView(results=await import_tasks(backend, paths))
    except (TaskFormatError, TaskImportError) as exc:
        raise InvalidRequestError(str(exc)) from None


def _file(path: str, data: bytes) -> TaskFileView:
    try:
        return TaskFileView(path=path, contents=data.decode())
    except UnicodeDecodeError:
        return TaskFileView(path=path, contents=base64.b64encode(data).decode(), encoding="base64")


async def export_scenario(backend: Backend, params: ExportScenarioInput, *, host_dirs: HostDirs) -> ExportScenarioView:
    try:
        if params.directory is None:
            task = await scenario_task(backend, params.scenario_id)
            files = [_file(path, data) for path, data in sorted(task_files(task).items())]
            return ExportScenarioView(scenario_id=params.scenario_id, files=files)
        target = host_dirs.resolve(params.directory, field="directory", existing=False)
        written = await write_scenario(backend, params.scenario_id, Path(target))
    except TaskFormatError as exc:
        raise InvalidRequestError(str(exc)) from None
    return ExportScenarioView(scenario_id=params.scenario_id, directory=str(written))
