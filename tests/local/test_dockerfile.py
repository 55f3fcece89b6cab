"""Dockerfiles read as Docker reads them: stages, ARG scoping, substitution, heredocs, refusals."""

from __future__ import annotations

import pytest

from scenario_mcp.local.dockerfile import (
    DEFAULT_SHELL,
    DockerfileError,
    ImageConfig,
    StageState,
    parse,
    run_argv,
    stages,
    substitute,
)

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG BASE=debian:12-slim
ARG TAG
FROM ${BASE} AS build
ARG TAG
ARG LOCAL=x
ENV APP=/app \\
    MODE="two words"
WORKDIR $APP
WORKDIR src
RUN echo "$MODE" > mode.txt && \\
    echo $TAG >> mode.txt
COPY --chown=1000:1000 --chmod=644 src/ ./
FROM scratch
COPY --from=build /app /app
USER 1000:1000
EXPOSE 8080/tcp 9090
LABEL org.example.tag=${TAG:-none} plain=yes
ENTRYPOINT ["/app/run"]
CMD ["--serve"]
"""


def apply_all(stage_index: int, text: str, build_args: dict[str, str]) -> StageState:
    all_stages = stages(parse(text), build_args)
    globals_ = {"TAG": build_args.get("TAG", "")} if "TAG" in build_args else {}
    state = StageState(ImageConfig(), build_args, globals_)
    for instruction in all_stages[stage_index].instructions:
        if instruction.keyword not in ("RUN", "COPY", "ADD"):
            state.apply(instruction)
    return state


def test_stages_and_the_global_args_of_their_from_lines() -> None:
    found = stages(parse(MULTI_STAGE), {"BASE": "python:3.13-slim"})
    assert [(s.index, s.name, s.base) for s in found] == [(0, "build", "python:3.13-slim"), (1, None, "scratch")]
    default = stages(parse(MULTI_STAGE), {})
    assert default[0].base == "debian:12-slim"
    copy = found[1].instructions[0]
    assert (copy.keyword, copy.flags, copy.args, copy.line) == ("COPY", {"from": "build"}, "/app /app", 15)


def test_configuration_follows_the_instructions() -> None:
    build = apply_all(0, MULTI_STAGE, {"TAG": "v1"})
    assert build.config.env_dict == {"APP": "/app", "MODE": "two words"}
    assert build.config.working_dir == "/app/src"  # a relative WORKDIR adds to the last one
    assert build.args == {"TAG": "v1", "LOCAL": "x"}  # ARG TAG re-imports the global value
    assert build.run_env()["MODE"] == "two words" and build.run_env()["TAG"] == "v1"
    final = apply_all(1, MULTI_STAGE, {"TAG": "v1"})
    assert final.config.user == "1000:1000"
    assert final.config.exposed_ports == ("8080/tcp", "9090")
    assert dict(final.config.labels) == {"org.example.tag": "none", "plain": "yes"}  # no ARG TAG in stage 2
    assert final.config.entrypoint == ("/app/run",) and final.config.cmd == ("--serve",)
    assert "TAG" not in final.run_env()  # an ARG is scoped to the stage that declares it


def test_shell_form_runs_through_the_stage_shell_and_exec_form_as_is() -> None:
    text = (
        'FROM scratch\nRUN echo $HOME\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN ["/bin/true", "x"]\nRUN a | b\n'
    )
    state = StageState(ImageConfig(), {}, {})
    argvs = []
    for instruction in stages(parse(text), {})[0].instructions:
        if instruction.keyword == "RUN":
            argvs.append(run_argv(instruction, state.config))
        else:
            state.apply(instruction)
    assert argvs == [[*DEFAULT_SHELL, "echo $HOME"], ["/bin/true", "x"], ["/bin/bash", "-o", "pipefail", "-c", "a | b"]]


def test_heredocs_are_gathered_from_the_raw_lines() -> None:
    text = "FROM scratch\nRUN <<EOF\nset -e\necho one > /a\nEOF\nRUN python3 <<PY\nprint(1)\nPY\nWORKDIR /w\n"
    instructions = stages(parse(text), {})[0].instructions
    assert [i.keyword for i in instructions] == ["RUN", "RUN", "WORKDIR"]
    script, fed = (run_argv(i, ImageConfig()) for i in instructions[:2])
    assert script == ["/bin/sh", "-c", "set -e\necho one > /a\n"]
    assert fed == ["/bin/sh", "-c", "python3 <<PY\nprint(1)\nPY\n"]
    with pytest.raises(DockerfileError, match="line 2: heredoc <<EOF is never closed"):
        parse("FROM scratch\nRUN <<EOF\necho\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A-${B}", "1-two"),
        ("${MISSING:-fallback}", "fallback"),
        ("${A:-fallback}", "1"),
        ("${A:+set}${MISSING:+never}", "set"),
        ("\\$A costs $", "$A costs $"),
        ("$MISSING.", "."),
    ],
)
def test_substitution(text: str, expected: str) -> None:
    assert substitute(text, {"A": "1", "B": "two"}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM scratch\nONBUILD RUN x\n", "line 2: ONBUILD is not supported"),
        ("RUN echo\nFROM scratch\n", "line 1: RUN before the first FROM"),
        ("# nothing\n", "no FROM instruction"),
        ("FROM a AS x\nFROM b AS X\n", "line 2: stage name 'x' is used twice"),
        ("FROM --platform=linux/arm64 debian\n", "only linux/amd64"),
        ("FROM scratch\nENV A=${B\n", "line 2: missing '}'"),
    ],
)
def test_what_the_builder_refuses_names_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        for stage in stages(parse(text), {}):
            state = StageState(ImageConfig(), {}, {})
            for instruction in stage.instructions:
                state.apply(instruction)


def test_legacy_env_form_and_inert_metadata() -> None:
    text = "FROM scratch\nENV GREETING hello world\nVOLUME /data\nHEALTHCHECK CMD true\n"
    state = StageState(ImageConfig(), {}, {})
    for instruction in stages(parse(text), {})[0].instructions:
        state.apply(instruction)
    assert state.config.env_dict == {"GREETING": "hello world"}
