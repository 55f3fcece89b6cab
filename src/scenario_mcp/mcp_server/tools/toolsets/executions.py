"""The executions toolset. Commands on a devbox: run one, start one, read its output, feed it, kill it."""

from __future__ import annotations

from ....models import ExecutionOutputChunk, ExecutionView
from ..devboxes import (
    execute_async,
    execute_on_devbox,
    get_execution,
    kill_execution,
    read_execution_output,
    send_execution_stdin,
)
from ..inputs import (
    ExecuteAsyncInput,
    ExecuteInput,
    ExecutionIdInput,
    ExecutionOutputInput,
    GetExecutionInput,
    SendStdinInput,
)
from ..spec import READ, ToolSpec, hints

EXECUTION_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "execute_on_devbox",
        "Run a command on a devbox",
        "Run a bash command in a devbox: exit_status, stdout, stderr. Background processes keep running.",
        ExecuteInput,
        ExecutionView,
        execute_on_devbox,
        hints(),
        "executions",
        bounded=True,
        pending=lambda p: {"devbox_id": p.devbox_id, "status": "running"},
    ),
    ToolSpec(
        "execute_async",
        "Start a command on a devbox",
        "Start a bash command and return its execution_id at once.",
        ExecuteAsyncInput,
        ExecutionView,
        execute_async,
        hints(),
        "executions",
    ),
    ToolSpec(
        "get_execution",
        "Get execution",
        "An execution's status and, once completed, its output.",
        GetExecutionInput,
        ExecutionView,
        get_execution,
        READ,
        "executions",
        waits=True,
    ),
    ToolSpec(
        "read_execution_output",
        "Read execution output",
        "Read an execution's output from a byte offset, until done.",
        ExecutionOutputInput,
        ExecutionOutputChunk,
        read_execution_output,
        READ,
        "executions",
    ),
    ToolSpec(
        "send_execution_stdin",
        "Send input to an execution",
        "Write to the stdin of an execution started with attach_stdin.",
        SendStdinInput,
        ExecutionView,
        send_execution_stdin,
        hints(),
        "executions",
    ),
    ToolSpec(
        "kill_execution",
        "Kill execution",
        "Kill a running execution.",
        ExecutionIdInput,
        ExecutionView,
        kill_execution,
        hints(destructive=True, idempotent=True),
        "executions",
    ),
)
