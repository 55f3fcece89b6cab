"""How a command string becomes a process: bash, or (for a plain word list) the program itself.

Every command is bash's to interpret: `bash -c` from the working directory. A command that is
only plain words (no quoting, expansion, redirection, assignment, builtin or keyword) means to
bash exactly "run this program with these arguments"; for those the devbox's init also gets the
word list (`direct_argv`) and starts the program without a shell, with the environment bash would
give it (PWD, OLDPWD, SHLVL, _), saving bash's start-up (about a millisecond) per command. When
it cannot (the program is not found, not executable, the directory is missing), init starts the
bash form instead, so errors read exactly as bash's.
"""

from __future__ import annotations

import posixpath
import re

# Characters with no meaning to bash inside a word (re.ASCII: \w is [A-Za-z0-9_]).
_PLAIN_WORD = re.compile(r"[\w./:,+@%=^-]+", re.ASCII)
_BLANKS = re.compile(r"[ \t]+")
_PLAIN_PATH = re.compile(r"/[\w./:,+@%=^-]*", re.ASCII)
# `compgen -b` and `compgen -k` of bash 5.
_BASH_BUILTINS = (
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs "
    "disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local "
    "logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend "
    "test times trap true type typeset ulimit umask unalias unset wait"
)
_BASH_KEYWORDS = "if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc"
_BUILTINS_AND_KEYWORDS = frozenset(_BASH_BUILTINS.split() + _BASH_KEYWORDS.split())
# `true` and `false` with no arguments do the same as builtins and as programs.
_SAME_AS_PROGRAMS = frozenset({"true", "false"})
# Variables that change what bash itself does before it runs a command.
_SHELL_VARIABLES = frozenset({"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "PWD", "OLDPWD", "SHLVL"})


def direct_argv(command: str, working_directory: str, env: dict[str, str]) -> list[str] | None:
    """The program and arguments `command` names, when bash would do nothing but run them."""
    words = _BLANKS.split(command.strip(" \t"))  # what bash splits words on
    first = words[0]
    if not all(_PLAIN_WORD.fullmatch(word) for word in words) or "=" in first:
        return None  # quoting, expansion, redirection, an assignment, more than one line, or none
    if first in _BUILTINS_AND_KEYWORDS and not (first in _SAME_AS_PROGRAMS and len(words) == 1):
        return None
    if not _PLAIN_PATH.fullmatch(working_directory) or posixpath.normpath(working_directory) != working_directory:
        return None  # bash's `cd` would spell PWD differently
    if any(name in _SHELL_VARIABLES or name.startswith("BASH_FUNC_") for name in env):
        return None  # an exported function or startup file could change what the words mean
    if "/" not in first and not all(entry.startswith("/") for entry in env.get("PATH", "").split(":")):
        return None  # bash searches a relative (or empty) PATH entry from the working directory
    return words


# A named shell keeps its working directory and exported environment in a state file inside the
# devbox (on its private /run; under /tmp for a devbox user that is not root), restored before and
# saved after each command.
_NAMED_SHELL_SCRIPT = r"""
__dir=/run/scenario-mcp/shells; [ "$EUID" = 0 ] || __dir=/tmp/.scenario-mcp-shells-$EUID
state=$__dir/$0
if [ -f "$state" ]; then . "$state"; else cd /home/user || exit 1; fi
if [ -n "$1" ]; then cd -- "$1" || exit 1; fi
eval "$2"
__rc=$?
mkdir -p "$__dir"
{ export -p | grep -v -e '^declare -x \(OLDPWD\|PWD\|SHLVL\)=' ; printf 'cd -- %q\n' "$PWD"; } > "$state"
exit $__rc
"""


def named_shell_argv(shell_name: str, working_directory: str | None, command: str) -> list[str]:
    return [
        "/bin/bash",
        "--noprofile",
        "--norc",
        "-c",
        _NAMED_SHELL_SCRIPT,
        shell_name,
        working_directory or "",
        command,
    ]


def shell_argv(working_directory: str, command: str, shell: str = "/bin/bash") -> list[str]:
    """`shell` (bash, or sh in an image that has no bash) running `command` from
    `working_directory` (a clear failure if it does not exist)."""
    options = ["--noprofile", "--norc"] if shell.endswith("bash") else []
    return [shell, *options, "-c", 'cd -- "$0" || exit 1; eval "$1"', working_directory, command]
