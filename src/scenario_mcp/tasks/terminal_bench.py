"""Terminal-Bench 0.2 task directories, read into a Task (import only).

```
task.yaml            instruction, max_agent_timeout_sec (360), max_test_timeout_sec (60), difficulty, ...
Dockerfile           the environment; the task directory (less the files below) its build context
docker-compose.yaml  one `client` service (more are refused: a devbox is one machine)
run-tests.sh         the grader, run as `bash /tests/run-tests.sh` with tests/ beside it in /tests
tests/               the tests
solution.sh          the oracle (solution.yaml's keystrokes are not supported)
```
Graded as Terminal-Bench grades: pytest's `-rA` summary, 1.0 only when every test passed. The
test.sh made here does that and leaves the reward where Harbor's verifier contract reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .task import Task, TaskFormatError, read_tree

NOT_CONTEXT = frozenset(
    {"task.yaml", "solution.sh", "solution.yaml", "run-tests.sh", "tests", "docker-compose.yaml", "docker-compose.yml"}
)
DEFAULT_AGENT_TIMEOUT = 360.0
DEFAULT_TEST_TIMEOUT = 60.0

# Terminal-Bench's pytest parser, in bash: a PASSED line and no FAILED or ERROR line in `-rA`'s summary.
TEST_SH = """\
#!/bin/bash
# Terminal-Bench grading (made by scenario-mcp's import): run-tests.sh's pytest -rA summary;
# the reward is 1 only when every test passed.
mkdir -p /logs/verifier
bash /tests/run-tests.sh > /logs/verifier/run-tests.txt 2>&1
cat /logs/verifier/run-tests.txt
if grep -Eq '^PASSED ' /logs/verifier/run-tests.txt && ! grep -Eq '^(FAILED|ERROR) ' /logs/verifier/run-tests.txt; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
"""


def _client_services(directory: Path) -> None:
    for name in ("docker-compose.yaml", "docker-compose.yml"):
        path = directory / name
        if not path.is_file():
            continue
        try:
            compose = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TaskFormatError(f"{path}: {exc}") from None
        services = compose.get("services") or {}
        if not isinstance(services, dict):
            raise TaskFormatError(f"{path}: services must be a mapping")
        if len(services) > 1:
            raise TaskFormatError(
                f"{path} has {len(services)} services ({', '.join(sorted(services))}); a scenario's environment is "
                "one devbox, so only a task with the one `client` service can be imported"
            )


def _positive(data: dict[str, Any], key: str, default: float, path: Path) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise TaskFormatError(f"{path}: {key} must be a positive number, got {value!r}")
    return float(value)


def read_terminal_bench(directory: Path) -> Task:
    yaml_path = directory / "task.yaml"
    try:
        data = yaml.safe_load(yaml_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TaskFormatError(f"{yaml_path}: {exc}") from None
    if not isinstance(data, dict):
        raise TaskFormatError(f"{yaml_path} must be a mapping")
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise TaskFormatError(f"{yaml_path}: instruction is missing; it holds the task's text")
    _client_services(directory)
    dockerfile = directory / "Dockerfile"
    if not dockerfile.is_file():
        raise TaskFormatError(f"{directory}: Dockerfile is missing; it builds the task's environment")
    run_tests = directory / "run-tests.sh"
    if not run_tests.is_file():
        raise TaskFormatError(f"{directory}: run-tests.sh is missing; it runs the task's tests")
    tests = read_tree(directory / "tests")
    if "run-tests.sh" in tests or "test.sh" in tests:
        raise TaskFormatError(f"{directory}: tests/ may not hold run-tests.sh or test.sh (both are placed in /tests)")
    tests["run-tests.sh"] = run_tests.read_bytes()
    tests["test.sh"] = TEST_SH.encode()
    solution = {}
    if (directory / "solution.sh").is_file():
        solution["solve.sh"] = (directory / "solution.sh").read_bytes()
    executables: set[str] = set()
    context = read_tree(directory, skip=NOT_CONTEXT, executables=executables)
    context.pop("Dockerfile", None)
    known = {"instruction", "max_agent_timeout_sec", "max_test_timeout_sec"}
    return Task(
        name=directory.resolve().name,
        format="terminal-bench",
        instruction=instruction,
        dockerfile=dockerfile.read_text(),
        docker_image=None,
        context=context,
        tests=tests,
        solution=solution,
        verifier_timeout_sec=_positive(data, "max_test_timeout_sec", DEFAULT_TEST_TIMEOUT, yaml_path),
        agent_timeout_sec=_positive(data, "max_agent_timeout_sec", DEFAULT_AGENT_TIMEOUT, yaml_path),
        network_mode="public",
        # run-tests.sh finds the tests through $TEST_DIR, as Terminal-Bench's harness sets it.
        verifier_env={"TEST_DIR": "/tests"},
        metadata={k: v for k, v in data.items() if k not in known},
        context_executables=executables - {"Dockerfile"},
    )
