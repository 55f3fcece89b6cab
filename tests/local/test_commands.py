"""A command of plain words runs without bash, and nothing about it tells the difference."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenario_mcp.local.commands import direct_argv
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters

HOME = "/home/user"
ENV = {"PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("true", ["true"]),
        ("  pytest -q\t-x ", ["pytest", "-q", "-x"]),
        ("ls -la /home/user", ["ls", "-la", "/home/user"]),
        ("pip install foo==1.0 bar@1", ["pip", "install", "foo==1.0", "bar@1"]),
        ("./run.sh a,b c:d 50%", ["./run.sh", "a,b", "c:d", "50%"]),
    ],
)
def test_plain_words_are_the_program_and_its_arguments(command: str, words: list[str]) -> None:
    assert direct_argv(command, HOME, ENV) == words


@pytest.mark.parametrize(
    "command",
    [
        "",
        "   ",
        "echo hi",  # a builtin: bash's own echo, not /bin/echo
        "cd /tmp",
        "true --help",  # /bin/true would print its help; the builtin does not
        "if true",
        "FOO=1 env",  # an assignment
        "ls > out",
        "ls | wc",
        "ls; ls",
        "ls &",
        "cat $HOME",
        "ls *.py",
        "ls ~",
        "ls {a,b}",
        "echo 'quoted'",
        'cat "x y"',
        "cat x\\ y",
        "ls `pwd`",
        "ls # comment",
        "ls\nls",
        "ls\xa0-la",  # one word to bash: no break at a non-breaking space
    ],
)
def test_anything_bash_would_interpret_goes_to_bash(command: str) -> None:
    assert direct_argv(command, HOME, ENV) is None


@pytest.mark.parametrize("working_directory", ["relative", "/home/user/", "/home/user/../tmp", "/a//b", "/a b"])
def test_a_directory_bash_would_spell_differently_goes_to_bash(working_directory: str) -> None:
    assert direct_argv("ls", working_directory, ENV) is None


@pytest.mark.parametrize("path", ["", "bin:/usr/bin", "/usr/bin::/bin"])
def test_a_relative_search_path_goes_to_bash(path: str) -> None:
    assert direct_argv("ls", HOME, {"PATH": path}) is None
    assert direct_argv("ls", HOME, {}) is None  # bash's own default PATH ends in `.`
    assert direct_argv("./run.sh", HOME, {"PATH": path}) == ["./run.sh"]  # no search at all


@pytest.mark.parametrize("name", ["BASH_ENV", "BASH_FUNC_ls%%", "SHELLOPTS", "PWD", "SHLVL"])
def test_an_environment_that_changes_bash_goes_to_bash(name: str) -> None:
    assert direct_argv("ls", HOME, {**ENV, name: "x"}) is None
    assert direct_argv("ls", HOME, {**ENV, "OTHER": "x"}) == ["ls"]


@pytest.mark.anyio
async def test_a_plain_command_is_inits_own_child(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    direct = await backend.execute(box.id, "cat /proc/self/stat")
    through_bash = await backend.execute(box.id, "cat /proc/self/stat;")
    assert (direct.stdout or "").split()[3] == "1"  # no shell in between
    assert (through_bash.stdout or "").split()[3] != "1"


# Each is run as is (without bash, where plain) and with a `;` added (through bash): the results
# must be the same.
SAME_EITHER_WAY = [
    ("true", None),
    ("false", None),
    ("env", None),  # PWD, OLDPWD, SHLVL and _ as bash sets them
    ("/bin/pwd -L", None),
    ("/bin/pwd -L", "/tmp"),
    ("ls -a", "/home/user/sub"),
    ("cat missing-file", None),
    ("no-such-program --flag", None),  # bash's "command not found", 127
    ("./no-shebang.sh one two", None),  # not executable by the kernel: bash runs it as a script
    ("./not-executable.sh", None),  # permission denied, 126
    ("ls", "/home/user/missing"),  # bash's cd error, 1
    ("sub", None),  # a directory
    ("python3 -c pass", None),
]


@pytest.mark.anyio
async def test_plain_commands_behave_exactly_as_through_bash(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    setup = await backend.execute(
        box.id,
        "mkdir -p sub && touch sub/file"
        " && printf 'echo \"args: $*\"\\nexit 3\\n' > no-shebang.sh && chmod +x no-shebang.sh"
        " && printf '#!/bin/sh\\n' > not-executable.sh",
    )
    assert setup.exit_status == 0, setup.stderr
    for command, working_directory in SAME_EITHER_WAY:
        direct = await backend.execute(box.id, command, working_directory=working_directory)
        through_bash = await backend.execute(box.id, command + ";", working_directory=working_directory)
        got = (direct.exit_status, direct.stdout, direct.stderr)
        expected = (through_bash.exit_status, through_bash.stdout, through_bash.stderr)
        if command == "env":
            got, expected = sorted((got[1] or "").splitlines()), sorted((expected[1] or "").splitlines())
        assert got == expected, command


# What bash itself makes of a command: its words (with globbing off and nothing run but `set`), and
# what the first word is to it.
_BASH_WORDS = 'set -f; eval "set -- $1"; printf "%s\\0" "$(type -t -- "$1" || echo none)" "$@"'
_plain = st.text(alphabet="abcxyz019_./:,+@%=^-", min_size=1, max_size=6)
_risky = st.tuples(_plain, st.sampled_from(list("$*?[]{}~'\"\\;|&<>()`#!\n")), _plain).map("".join)
_commands = st.lists(_plain | _risky, min_size=1, max_size=4).map(" ".join) | st.sampled_from(
    ["true", "false", "ls -la", "cd /tmp", "echo x", "if x", "$HOME", "a$b", "x=1 y", "~ ls"]
)


@settings(max_examples=200, deadline=None)
@given(_commands)
def test_what_runs_without_bash_is_what_bash_would_run(command: str) -> None:
    words = direct_argv(command, HOME, ENV)
    if words is None:
        return  # bash runs it: always right
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", _BASH_WORDS, "_", command],
        capture_output=True,
        check=False,
        env=ENV,
    )
    kind, *parsed = result.stdout.decode().split("\0")[:-1]
    assert parsed == words  # the same words, nothing expanded
    # The program bash would run: a file on PATH (or none found); never a builtin, keyword or alias.
    assert kind in ("file", "none") or words in (["true"], ["false"])
