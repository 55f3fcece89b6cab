"""Harbor's verifier contract as one of the engine's scorers (`custom_scorer` of the engine's own
type `harbor_verifier`): the task's tests/ placed fresh at /tests, both reward files removed, then
`/tests/test.sh` run from the working directory (its exit code ignored), and the score read by
the engine, on the host, from what the scoring sandbox itself wrote to /logs/verifier:
`reward.json` (a flat map of numbers: its `reward`, else the mean) before `reward.txt` (one
float). A reward file the agent left is removed before test.sh runs and lies in a layer the
engine never reads, so it is never the score.
"""

from __future__ import annotations

import base64
import json
import math
import os
import stat
from pathlib import Path

from ..models import HarborVerifierParams

VERIFIER_LOGS = "logs/verifier"  # under the scoring sandbox's root
MAX_REWARD_BYTES = 1 << 16


class RewardError(ValueError):
    pass


def verifier_files(params: HarborVerifierParams, scorer_dir: str) -> dict[str, str | bytes]:
    """The tests, kept in the scorer's own directory until the script copies them to /tests."""
    files: dict[str, str | bytes] = {}
    for entry in params.tests:
        contents = base64.b64decode(entry.contents) if entry.encoding == "base64" else entry.contents
        files[f"{scorer_dir}/tests/{entry.path}"] = contents
    files[f"{scorer_dir}/verify.sh"] = verify_script(scorer_dir)
    return files


def verify_script(scorer_dir: str) -> str:
    return f"""\
# Harbor's verifier: fresh /tests, no reward file but what test.sh writes now.
if [ -L /logs ]; then rm -f /logs; fi
rm -rf /tests /logs/verifier
mkdir -p /logs/verifier /logs/agent /logs/artifacts
cp -R {scorer_dir}/tests /tests
chmod -R a+rX /tests && chmod +x /tests/test.sh
/tests/test.sh > /logs/verifier/test-stdout.txt 2>&1
echo "[test.sh exited $?; its output, from /logs/verifier/test-stdout.txt:]"
tail -c 65536 /logs/verifier/test-stdout.txt
"""


def _read_written(path: Path) -> str | None:
    """A regular file the scoring sandbox wrote (its own upper layer), never through a link."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(mode):
        raise RewardError(f"{path.name} is a symbolic link; the reward must be a file test.sh writes")
    if not stat.S_ISREG(mode):
        return None  # a whiteout (the file removed), a device, a fifo
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RewardError(f"{path.name} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None  # a whiteout (the file removed), a device, a fifo
        data = file.read(MAX_REWARD_BYTES + 1)
    if len(data) > MAX_REWARD_BYTES:
        raise RewardError(f"{path.name} is over {MAX_REWARD_BYTES} bytes")
    return data.decode(errors="replace")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RewardError(f"{what} is {value!r}, not a finite number")
    return float(value)


def _score(value: object, what: str) -> float:
    value = _number(value, what)
    if not 0.0 <= value <= 1.0:
        raise RewardError(f"{what} is {value}, outside [0, 1]")
    return value


def read_reward(upper_root: Path) -> tuple[float, str]:
    """The score and a line saying where it came from, from the scoring sandbox's upper layer."""
    logs = upper_root / VERIFIER_LOGS
    text = _read_written(logs / "reward.json")
    if text is not None:
        try:
            rewards = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RewardError(f"reward.json is not JSON: {exc}") from None
        if not isinstance(rewards, dict) or not rewards:
            raise RewardError('reward.json must be a non-empty flat map of numbers, e.g. {"reward": 1.0}')
        values = {str(k): _number(v, f"reward.json's {k!r}") for k, v in rewards.items()}
        if "reward" in values:  # the others are extra figures (counts, times): finite is enough
            score = _score(values["reward"], "reward.json's 'reward'")
        else:
            score = _score(sum(values.values()) / len(values), "the mean of reward.json's values")
            for key, value in values.items():
                _score(value, f"reward.json's {key!r} (no 'reward' key: every value is a score)")
        return score, f"reward.json {json.dumps(values, sort_keys=True)} -> {score}"
    text = _read_written(logs / "reward.txt")
    if text is not None:
        try:
            value = float(text.strip())
        except ValueError:
            raise RewardError(f"reward.txt holds {text.strip()[:100]!r}, not one number") from None
        score = _score(value, "reward.txt")
        return score, f"reward.txt -> {score}"
    raise RewardError("test.sh wrote no reward: neither /logs/verifier/reward.json nor /logs/verifier/reward.txt")
