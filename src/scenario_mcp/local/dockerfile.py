"""Dockerfiles, read as Docker reads them: instructions, stages, build arguments, substitution.

I/O-free: this module turns a Dockerfile's text and its build arguments into stages of typed
instructions, and keeps each stage's image configuration (ENV, WORKDIR, USER, ...) as the
instructions that change it are applied. The builder (builds.py) runs RUN, COPY and ADD.
Parsing is dockerfile-parse's (the parser Harbor itself uses); it does not know heredocs, so
`RUN <<EOF ... EOF` bodies are gathered here from the raw lines.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from dockerfile_parse import DockerfileParser

# Instructions the builder runs or applies, and those kept as inert metadata (Docker records them
# in the image; a devbox has no use for them). Anything else is refused with its line.
SUPPORTED = {
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "LABEL",
    "EXPOSE",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
}
INERT = {"VOLUME", "STOPSIGNAL", "HEALTHCHECK", "MAINTAINER"}
DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Build arguments Docker predefines (usable without an ARG line, e.g. behind a proxy).
PREDEFINED_ARGS = {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"}
PREDEFINED_ARGS |= {name.lower() for name in PREDEFINED_ARGS}
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"--([a-z][a-z-]*)(?:=(\S*))?")


class DockerfileError(ValueError):
    """A Dockerfile the builder cannot take, said with its line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"Dockerfile line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # after the flags, continuation lines joined
    line: int  # 1-based, of the keyword
    flags: dict[str, str] = field(default_factory=dict)
    heredoc: str | None = None  # the body of a `<<WORD` heredoc, when there is one
    original: str = ""  # as written, for logs

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array form (`["a", "b"]`), or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None  # Docker runs a malformed array as a shell command
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None
        return value


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # `AS name`, lower case
    base: str  # an image reference, an earlier stage's name or index, or `scratch`
    instructions: tuple[Instruction, ...]
    line: int


@dataclass(frozen=True)
class ImageConfig:
    """What a stage's instructions leave in its image's configuration (OCI `config`)."""

    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def with_env(self, updates: dict[str, str]) -> ImageConfig:
        merged = {**self.env_dict, **updates}
        return replace(self, env=tuple(merged.items()))

    def to_json(self) -> dict[str, Any]:
        """As kept in the engine's records (JSON: tuples become lists)."""
        return {
            "env": [list(pair) for pair in self.env],
            "working_dir": self.working_dir,
            "user": self.user,
            "shell": list(self.shell),
            "labels": [list(pair) for pair in self.labels],
            "exposed_ports": list(self.exposed_ports),
            "cmd": None if self.cmd is None else list(self.cmd),
            "entrypoint": None if self.entrypoint is None else list(self.entrypoint),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageConfig:
        def pairs(key: str) -> tuple[tuple[str, str], ...]:
            return tuple((str(k), str(v)) for k, v in data.get(key) or ())

        def words(key: str) -> tuple[str, ...] | None:
            value = data.get(key)
            return None if value is None else tuple(str(w) for w in value)

        return cls(
            env=pairs("env"),
            working_dir=str(data.get("working_dir") or ""),
            user=str(data.get("user") or ""),
            shell=words("shell") or DEFAULT_SHELL,
            labels=pairs("labels"),
            exposed_ports=words("exposed_ports") or (),
            cmd=words("cmd"),
            entrypoint=words("entrypoint"),
        )


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, in order, with heredoc bodies gathered."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    raw_lines = text.splitlines()
    instructions: list[Instruction] = []
    skip_until = -1
    for item in parser.structure:
        start, end = int(item["startline"]), int(item["endline"])
        if start <= skip_until:
            continue  # a line of a heredoc body, which the parser took for an instruction
        keyword = str(item["instruction"]).upper()
        if keyword == "COMMENT":
            continue  # comments and parser directives (`# syntax=`): nothing to build
        flags, args = _split_flags(str(item["value"]))
        heredoc = None
        if keyword in ("RUN", "COPY", "ADD") and (found := _HEREDOC.search(args)):
            heredoc, skip_until = _heredoc_body(raw_lines, end + 1, found.group(3), strip_tabs=bool(found.group(1)))
            if skip_until < 0:
                raise DockerfileError(start + 1, f"heredoc <<{found.group(3)} is never closed")
        instructions.append(Instruction(keyword, args, start + 1, flags, heredoc, str(item["content"]).rstrip("\n")))
    return instructions


def _split_flags(value: str) -> tuple[dict[str, str], str]:
    """`--from=build --chown=1:1 src dst` → ({"from": "build", "chown": "1:1"}, "src dst")."""
    flags: dict[str, str] = {}
    rest = value.lstrip()
    while rest.startswith("--"):
        match = _FLAG.match(rest)
        if match is None:
            break
        flags[match.group(1)] = match.group(2) if match.group(2) is not None else "true"
        rest = rest[match.end() :].lstrip()
    return flags, rest


def _heredoc_body(lines: list[str], first: int, word: str, *, strip_tabs: bool) -> tuple[str, int]:
    """The body of a heredoc starting at 0-based line `first`, and the line of its terminator."""
    body: list[str] = []
    for number in range(first, len(lines)):
        line = lines[number].lstrip("\t") if strip_tabs else lines[number]
        if line == word:
            return "".join(f"{b}\n" for b in body), number
        body.append(line)
    return "", -1


def substitute(text: str, env: dict[str, str], *, line: int = 0) -> str:
    """Docker's variable substitution: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, and
    `\\$` for a literal dollar. Unset variables become empty."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        if text[i + 1] == "{":
            close = text.find("}", i + 2)
            if close < 0:
                raise DockerfileError(line, f"missing '}}' in {text!r}")
            out.append(_expand(text[i + 2 : close], env, line))
            i = close + 1
            continue
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1 :])
        if match is None:
            out.append(char)
            i += 1
            continue
        out.append(env.get(match.group(0), ""))
        i += 1 + match.end()
    return "".join(out)


def _expand(inner: str, env: dict[str, str], line: int) -> str:
    for operator in (":-", ":+"):
        name, found, word = inner.partition(operator)
        if found:
            value = env.get(name, "")
            if operator == ":-":
                return value or substitute(word, env, line=line)
            return substitute(word, env, line=line) if value else ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner):
        raise DockerfileError(line, f"unsupported substitution ${{{inner}}}")
    return env.get(inner, "")


def global_args(instructions: list[Instruction], build_args: dict[str, str]) -> dict[str, str]:
    """The ARGs declared before the first FROM, with the build arguments that override them."""
    found: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword != "ARG":
            break
        for name, default in parse_arg(instruction):
            value = build_args.get(name, default)
            if value is not None:
                found[name] = substitute(value, found, line=instruction.line)
    return found


def stages(instructions: list[Instruction], build_args: dict[str, str]) -> list[Stage]:
    """Split into stages at each FROM; resolve FROM lines against the ARGs declared before the
    first FROM (and the build arguments that override them). Refuses what the builder cannot do."""
    args = global_args(instructions, build_args)
    result: list[Stage] = []
    current: list[Instruction] | None = None
    header: tuple[int, str | None, str, int] | None = None

    def close() -> None:
        if header is not None and current is not None:
            result.append(Stage(header[0], header[1], header[2], tuple(current), header[3]))

    for instruction in instructions:
        keyword = instruction.keyword
        if keyword not in SUPPORTED and keyword not in INERT:
            raise DockerfileError(instruction.line, f"{keyword} is not supported by this builder")
        if keyword == "FROM":
            close()
            base, name = _from_line(instruction, args)
            if name is not None and any(stage.name == name for stage in result):
                raise DockerfileError(instruction.line, f"stage name {name!r} is used twice")
            header = (len(result), name, base, instruction.line)
            current = []
        elif current is None:
            if keyword != "ARG":
                raise DockerfileError(instruction.line, f"{keyword} before the first FROM; only ARG may come first")
        else:
            current.append(instruction)
    close()
    if not result:
        raise DockerfileError(1, "no FROM instruction: a Dockerfile starts FROM an image (or scratch)")
    return result


def _from_line(instruction: Instruction, global_args: dict[str, str]) -> tuple[str, str | None]:
    words = substitute(instruction.args, global_args, line=instruction.line).split()
    platform = instruction.flags.get("platform")
    if platform and platform not in ("linux/amd64", "$BUILDPLATFORM", "$TARGETPLATFORM"):
        raise DockerfileError(instruction.line, f"FROM --platform={platform}: only linux/amd64 images run here")
    if len(words) == 1:
        return words[0], None
    if len(words) == 3 and words[1].lower() == "as":
        return words[0], words[2].lower()
    raise DockerfileError(instruction.line, f"FROM takes an image and an optional `AS name`, got {instruction.args!r}")


def parse_arg(instruction: Instruction) -> list[tuple[str, str | None]]:
    """`ARG A B=2` → [("A", None), ("B", "2")]."""
    pairs: list[tuple[str, str | None]] = []
    for word in shlex.split(instruction.args):
        name, eq, default = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise DockerfileError(instruction.line, f"ARG name {name!r} is not a valid variable name")
        pairs.append((name, default if eq else None))
    return pairs


def parse_pairs(instruction: Instruction, env: dict[str, str]) -> dict[str, str]:
    """The key=value pairs of ENV or LABEL (or the legacy `ENV key value` form), substituted."""
    text = instruction.args.strip()
    words = shlex.split(text)
    if instruction.keyword == "ENV" and words and "=" not in words[0]:
        key, _, value = text.partition(" ")  # ENV key the rest of the line
        return {key: substitute(value.strip(), env, line=instruction.line)}
    pairs = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(instruction.line, f"{instruction.keyword} expects key=value, got {word!r}")
        pairs[substitute(key, env, line=instruction.line)] = substitute(value, env, line=instruction.line)
    return pairs


@dataclass
class StageState:
    """A stage's configuration and build arguments while its instructions are applied."""

    config: ImageConfig
    build_args: dict[str, str]
    global_args: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)  # the ARGs in scope in this stage

    @property
    def scope(self) -> dict[str, str]:
        """Variables for substitution: ARGs, then ENV over them (as Docker resolves them)."""
        return {**self.args, **self.config.env_dict}

    def run_env(self) -> dict[str, str]:
        """The environment of a RUN: the image's ENV with the ARGs in scope (ENV wins)."""
        env = {**self.args, **self.config.env_dict}
        env.setdefault("PATH", DEFAULT_PATH)
        return env

    def apply(self, instruction: Instruction) -> None:
        """Apply a configuration instruction (not RUN, COPY or ADD)."""
        keyword, config = instruction.keyword, self.config
        if keyword == "ARG":
            for name, default in parse_arg(instruction):
                if name in self.build_args:
                    self.args[name] = self.build_args[name]
                elif default is not None:
                    self.args[name] = substitute(default, self.scope, line=instruction.line)
                elif name in self.global_args:
                    self.args[name] = self.global_args[name]
        elif keyword == "ENV":
            self.config = config.with_env(parse_pairs(instruction, self.scope))
        elif keyword == "LABEL":
            labels = {**dict(config.labels), **parse_pairs(instruction, self.scope)}
            self.config = replace(config, labels=tuple(labels.items()))
        elif keyword == "WORKDIR":
            path = substitute(instruction.args.strip(), self.scope, line=instruction.line)
            if not path.startswith("/"):
                path = (config.working_dir or "/").rstrip("/") + "/" + path
            self.config = replace(config, working_dir=path)
        elif keyword == "USER":
            self.config = replace(config, user=substitute(instruction.args.strip(), self.scope, line=instruction.line))
        elif keyword == "EXPOSE":
            ports = substitute(instruction.args, self.scope, line=instruction.line).split()
            self.config = replace(config, exposed_ports=(*config.exposed_ports, *ports))
        elif keyword in ("CMD", "ENTRYPOINT", "SHELL"):
            self._apply_command(instruction)

    def _apply_command(self, instruction: Instruction) -> None:
        keyword, config = instruction.keyword, self.config
        array = instruction.exec_form
        if keyword == "SHELL":
            if array is None or not array:
                raise DockerfileError(instruction.line, 'SHELL takes a JSON array, e.g. ["/bin/bash", "-c"]')
            self.config = replace(config, shell=tuple(array))
            return
        command = tuple(array) if array is not None else (*config.shell, instruction.args)
        if keyword == "CMD":
            self.config = replace(config, cmd=command)
        else:
            self.config = replace(config, entrypoint=command, cmd=None)  # ENTRYPOINT resets CMD


def run_argv(instruction: Instruction, config: ImageConfig) -> list[str]:
    """What a RUN executes: its array as is, or its shell form through the stage's SHELL; a
    bare heredoc (`RUN <<EOF`) is the script, any other heredoc feeds the command."""
    array = instruction.exec_form
    if array is not None:
        return array
    if instruction.heredoc is not None:
        command = _HEREDOC.sub("", instruction.args, count=1).strip()
        if not command:
            return [*config.shell, instruction.heredoc]
        word = _HEREDOC.search(instruction.args)
        assert word is not None
        return [*config.shell, f"{instruction.args}\n{instruction.heredoc}{word.group(3)}\n"]
    return [*config.shell, instruction.args]
