"""The docs:// resource: the reference the tool descriptions leave out.

A tool's description and input schema travel with every turn of an agent's conversation, so they
say only what it takes to choose and call the tool. What an agent reads once, when it needs it
(scorer types and how each scores, the waiting convention, the shapes of maps, paths, states) is
here, read on demand.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer

DOCS_URI = "docs://scenario-mcp/tools"

TOOLS_REFERENCE = """\
# scenario-mcp tools: reference

## Waiting
No call blocks for long. A tool whose work can take longer (create_devbox, snapshot_devbox,
validate_scenario, start_run, run_scenario, run_benchmark, execute_on_devbox, score_run) waits at
most `wait_seconds` (default 4; 0 answers at once), reporting progress, then answers with what
there is and a `message`:
- create_devbox, snapshot_devbox, validate_scenario, start_run, run_scenario, run_benchmark,
  execute_on_devbox: the work goes on in the server; call the same tool with the same arguments
  to wait for its result (the work is not started twice). An unfinished create_devbox answers
  `status: queued` without an id: the first devbox on a fresh data dir waits for the default
  environment, built once (`scenario-mcp setup` builds it ahead; the server starts it at start).
- score_run: the run in state `scoring`; get_run(run_id, wait_seconds=N) waits for `scored`.
- get_execution(devbox_id, execution_id, wait_seconds=N) waits for a command started with
  execute_async; get_blueprint(blueprint_id, wait_seconds=N) for a build (create_blueprint takes
  wait_seconds too, default 0: `queued` at once); while waiting, progress tells the image's pull
  (MiB fetched and unpacked) and each step done.

## Maps
Where Runloop's API takes a free map (metadata, environment_variables, build_args, file_mounts),
a tool takes a list of {key, value}: `metadata: [{"key": "team", "value": "infra"}]`. A custom
scorer's `scorer_params` values are JSON text (`"3"` is the number 3; text that is not JSON stays
text). Results show maps as maps.

## Scenarios
`create_scenario`: `name`; `input_context.problem_statement` (and optional `additional_context`,
text); `environment_parameters` {`snapshot_id` | `blueprint_id` | `blueprint_name`,
`working_directory` (absolute, default /home/user), `launch_parameters`}; `scoring_contract`
{`scoring_function_parameters`: [{`name`, `weight` > 0, `scorer`}]} (weights are normalised to sum
1.0); `reference_output`: a bash command that solves the task, run in the working directory of a
fresh devbox by validate_scenario, never shown to solvers. Metadata
`scenario_mcp.solver_sees_scorer_output` = "true" lets solvers read scorer output.

Scorers run after the run's processes are stopped, each in a fresh sandbox that sees the
environment plus the solver's changes inside the working directory only; their own files win
over the solver's. Types:
- `bash_script_scorer` {bash_script}, `python_script_scorer` {python_script}: the last line
  printed is the score, a float in [0, 1] (`1.0` or `score=0.5`).
- `command_scorer` {command}: exit status 0 scores 1.0, anything else 0.0.
- `test_based_scorer` {test_command, test_files: [{file_path, file_contents}]}: the test files are
  written into the working directory, then the command runs; the score is pytest's pass rate
  (else 1.0 on exit 0).
- `ast_grep_scorer` {pattern, search_directory, lang}: ast-grep searches `search_directory`
  (relative to the working directory, or absolute) for the structural `pattern` (passed in double
  quotes on a command line, so escape `$` as `\\$`); any match scores 1.0, none 0.0.
- `custom_scorer` {custom_scorer_type, scorer_params}: a registered custom scorer's bash script,
  with the params as JSON in RL_SCORER_CONTEXT.
- `custom_scorer` of type `harbor_verifier` (made by import_scenarios): Harbor's verifier; the
  params' `tests` go to a fresh /tests, `test.sh` runs, the reward file it writes in
  /logs/verifier (reward.json's `reward` or mean, else reward.txt) is the score. Such scenarios
  have `scoring_scope: whole_filesystem`: their scorer sees every change the solver made.

## Task directories
`import_scenarios` {paths}: Harbor task dirs (task.toml, instruction.md, environment/, tests/,
solution/) or Terminal-Bench ones (task.yaml, Dockerfile, run-tests.sh, tests/, solution.sh), or
dirs of them, under the server's --allow-dir: each becomes a scenario on a built blueprint,
created, updated, or unchanged by content checksum. `export_scenario` {scenario_id, directory?}:
an imported scenario as a Harbor task dir, or its files inline.

`validate_scenario`: the reference output on a fresh devbox must score 1.0 and the untouched
environment below 1.0; the answer has `valid`, a `verdict` and each side's per-scorer results.

## Devboxes and commands
A devbox is a sandboxed Linux box; files and the default working directory are under /home/user
(file tools take paths relative to it). Background processes (`cmd &`) outlive their command.
`execute_on_devbox`: stdout and stderr are capped at 64 KiB inline (`*_truncated` says so;
read_execution_output pages the rest); `timeout_seconds` (default 120) kills the command with
exit status 124; a `shell_name` runs commands in order, keeping the working directory and
exported variables. `execute_async` + `send_execution_stdin` drive interactive programs.

## Runs
States: running -> scoring -> scored -> completed (or canceled, failed, timeout). A scored run
may be worked on and scored again; complete_run makes the score final. Resources: the task at
scenario://{scenario_id}/problem_statement, the run at run://{run_id}, its logs at
run://{run_id}/logs, a devbox file at devbox://{devbox_id}/files/{path}.

## Benchmarks
run_benchmark without `agent` starts a run of each scenario. With `agent` (oracle: the reference
outputs; nop: nothing; command:CMD: CMD in each run's devbox, in its working directory, with
$SCENARIO_PROBLEM_STATEMENT) it runs every scenario `attempts` times, `concurrency` at once, to a
score, reporting progress per attempt, and answers the completed benchmark run. Every attempt's
result (each scorer's score and output, the agent's output and diff, phase times) and the summary
(mean, standard error, pass@k) are at benchmark-run://{benchmark_run_id}.
## Agents and mounts (toolset `agents`)
`create_agent` installs an agent once: `source_type` npm or pip (`package_name`, `version`,
`registry_url`), git (`repository`, `version` as the ref) or object (`object_id` of an uploaded
tar/tgz), then `agent_setup` commands; wait with get_agent, read get_agent_logs when it `failed`.
With this toolset create_devbox, start_run and run_scenario take `mounts`, each with a `type`:
- `agent_mount` {agent_name or agent_id, agent_path (default /opt/agents/{name})}: the agent,
  read-only, its bin/ first on PATH; not in the scorer's sandbox.
- `file_mount` {target, content}: a file (a relative target is under /home/user).
- `object_mount` {object_id, object_path}: an archive unpacked there, read-only; else a file.
- `code_mount` {repo_name (a git URL, or a name with repo_owner), git_ref, install_command}: a
  clone in /home/user/{repo_name}, then install_command run in it.
Paths are absolute (or, for a file, relative to /home/user), without `..`. A solver session
mounts agents and files only.

## Toolsets
A server offers the toolsets it was started with (`scenario-mcp serve --toolsets ...`):
scenarios, devboxes, runs, files, executions, benchmarks, blueprints, agents, or all. By default an
author gets scenarios, devboxes, executions, files and runs; a solver gets scenarios, runs,
executions and files.
"""


def register_docs(server: MCPServer[Any]) -> None:
    @server.resource(
        DOCS_URI,
        name="tools_reference",
        title="scenario-mcp tools reference",
        description="What the tool descriptions leave out: waiting, maps, scorer types, paths, states, toolsets.",
        mime_type="text/markdown",
    )
    def tools_reference() -> str:
        return TOOLS_REFERENCE
