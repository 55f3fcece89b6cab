"""The MCP prompts: `solve_scenario` briefs a solver on its run; `author_scenario` guides authoring.

Prompts read through the same (role-dependent) backend as the tools: a solver's brief is built from
the redacted scenario, so it names each scoring function, its type and weight, never its contents.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import Field

from ..backend import Backend, NotFoundError
from ..models import ScenarioRunState, ScenarioRunView, ScenarioView
from .access import Role
from .redaction import solver_sees_scorer_output


def solve_brief(run: ScenarioRunView, scenario: ScenarioView, *, role: Role) -> str:
    workdir = scenario.working_directory
    functions = scenario.scoring_contract.scoring_function_parameters
    scorers = "\n".join(f"  - `{f.name}`: {f.scorer.type}, weight {f.weight:.2f}" for f in functions)
    extra = scenario.input_context.additional_context
    context = f"\n\n### Additional context\n\n{extra}" if extra else ""
    if role == "author" or solver_sees_scorer_output(scenario):
        outputs = "each function's score, state and output"
    else:
        outputs = "each function's score and state (its output is hidden: scorers are not yours to read)"
    launch = scenario.environment.launch_parameters if scenario.environment else None
    network = bool(launch and launch.network)
    state_note = ""
    if run.state not in (ScenarioRunState.RUNNING, ScenarioRunState.SCORED):
        state_note = (
            f"\n\n**Note:** this run is `{run.state.value}`; its devbox takes no more work. "
            "Start a new run with start_run to try again."
        )
    return f"""\
You are solving the scenario **{scenario.name}** (`{scenario.id}`) in run `{run.id}` \
(state `{run.state.value}`).{state_note}

## The task

{scenario.input_context.problem_statement}{context}

## Your environment

- Your devbox is `{run.devbox_id}`: a sandboxed Linux machine{"" if network else " without network access"}.
- Work in `{workdir}`. Only changes inside it are scored; anything else in the devbox is not.
- Run shell commands with `execute_on_devbox(devbox_id="{run.devbox_id}", command=...)` (default working directory \
/home/user; background processes keep running). For long or interactive commands: `execute_async`, then \
`get_execution` / `send_execution_stdin` / `kill_execution`.
- Files: `read_devbox_file`, `write_devbox_file`, `list_devbox_files` with paths relative to /home/user, or read the \
resource `devbox://{run.devbox_id}/files/<path>`.

## Scoring yourself

The run is scored by {len(functions)} weighted scoring function(s):
{scorers}

1. When you think you are done, call `score_run(run_id="{run.id}")`. Your processes in the devbox are \
stopped, then the scorers run on your working directory. The result has the total score in [0, 1] and {outputs}; \
if it is still `scoring`, `get_run(run_id="{run.id}", wait_seconds=30)` waits for it.
2. Below 1.0? Keep working in the same devbox and call score_run again: a scored run may be scored again.
3. When you are satisfied, call `complete_run(run_id="{run.id}")`: the score becomes final and the devbox is shut \
down. To give up, `cancel_run`.

The run's state and score are also in the resource `run://{run.id}`, and every command and scorer result, \
timestamped, in `run://{run.id}/logs`.
"""


def author_brief(goal: str) -> str:
    return f"""\
Help me author a scenario for an AI agent to solve. The goal: **{goal}**

A scenario is a problem statement, an environment (a devbox snapshot or blueprint), weighted scorers that turn the \
devbox's final state into a score in [0, 1], and a hidden reference output that proves the scorers right. Walk me \
through it step by step with the scenario-mcp tools, asking me when a choice is mine, until the scenario validates.

1. **Environment.** `create_devbox` (default: Python 3 with pip and pytest; for other packages \
`create_blueprint` with `system_setup_commands`, which run once with network). Build the starting state in the \
working directory, /home/user, with `write_devbox_file` and `execute_on_devbox`: the code with the bug, the \
half-done project. Then `snapshot_devbox` and note the snapshot id; `shutdown_devbox` when done.
2. **Problem statement.** What the solver must achieve and how success is judged, in the solver's terms. Do not \
give away the solution.
3. **Scorers, with weights.** One or more scoring functions, each `{{name, weight > 0, scorer}}` (weights are \
normalised to sum 1.0). Scorer types: `bash_script_scorer` / `python_script_scorer` (print a score in [0, 1] \
last), `command_scorer` (exit 0 scores 1.0), `test_based_scorer` (`test_files` written into the working \
directory at scoring time, then `test_command`; the pass rate is the score), `ast_grep_scorer` (`pattern`, \
`search_directory`, `lang`: a structural match scores 1.0). Scorers run after the solver's \
processes are stopped, in a fresh sandbox that sees the environment plus the solver's changes inside the working \
directory; the solver never sees scorer bodies or test files. Prefer several scorers that give partial credit \
over one all-or-nothing check, and check behaviour, not one exact text.
4. **Reference output.** A bash command that, run in the working directory of a fresh devbox, solves the task \
(e.g. a heredoc that writes the fixed file, or `patch -p1` with an inline diff). It is never shown to solvers.
5. **Create it.** `create_scenario` with `name`, `input_context.problem_statement`, `environment_parameters` \
(`snapshot_id` or `blueprint_id`, and `working_directory`), `scoring_contract.scoring_function_parameters` and \
`reference_output`. Metadata is a list of `{{key, value}}`: set `scenario_mcp.solver_sees_scorer_output` to \
"true" only if scorer output may be shown to solvers (it can quote hidden tests).
6. **Validate.** `validate_scenario(scenario_id)`: the reference output on a fresh devbox must score 1.0, and the \
untouched environment must score below 1.0. If not, read each scorer's result, fix the scorers, the reference or \
the environment with `update_scenario`, and validate again.
7. **Report** the scenario id, its scorers and weights, and the validation verdict.

A tool that answers with a `message` instead of its result is still working: do what the message says (usually: \
the same call again). The resource `docs://scenario-mcp/tools` has the details of every scorer and tool.
"""


def register_prompts(server: MCPServer[Any], backend: Backend, *, role: Role) -> None:
    @server.prompt(
        name="solve_scenario",
        title="Solve a scenario run",
        description="Brief an agent on its run: the problem statement, its devbox, the working directory, the tools "
        "to work with, and how to score itself.",
    )
    async def solve_scenario(
        run_id: Annotated[str, Field(description="The run to solve (scr_...), from start_run.")],
    ) -> list[UserMessage]:
        try:
            run = await backend.get_run(run_id)
            scenario = await backend.get_scenario(run.scenario_id)
        except NotFoundError as exc:
            raise MCPError(INVALID_PARAMS, exc.message) from exc
        return [UserMessage(solve_brief(run, scenario, role=role))]

    if role != "author":
        return

    @server.prompt(
        name="author_scenario",
        title="Author a scenario",
        description="Guide a chat to a complete scenario: environment, problem statement, weighted scorers, a "
        "reference output, then validate_scenario.",
    )
    async def author_scenario(
        goal: Annotated[
            str, Field(description="What the scenario should test, e.g. 'fix an off-by-one in a date parser'.")
        ],
    ) -> list[UserMessage]:
        return [UserMessage(author_brief(goal))]
