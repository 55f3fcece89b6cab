"""Reading the reward Harbor's verifier left: reward.json before reward.txt, bad values an error,
and only a regular file the scoring sandbox wrote (a whiteout or a link is no reward)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scenario_mcp.local.verifier import RewardError, read_reward


def written(upper: Path, **files: str) -> Path:
    logs = upper / "logs" / "verifier"
    logs.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (logs / name.replace("_", ".")).write_text(text)
    return upper


def test_reward_json_wins_and_its_reward_key_is_the_score(tmp_path: Path) -> None:
    upper = written(tmp_path, reward_json='{"reward": 0.25, "tests_passed": 7}', reward_txt="1.0")
    assert read_reward(upper)[0] == 0.25
    assert read_reward(written(tmp_path / "b", reward_json='{"add": 1, "sub": 0}'))[0] == 0.5
    assert read_reward(written(tmp_path / "c", reward_txt=" 1\n")) == (1.0, "reward.txt -> 1.0")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"reward_json": "not json"}, "reward.json is not JSON"),
        ({"reward_json": "[1]"}, "non-empty flat map"),
        ({"reward_json": '{"a": true}'}, "not a finite number"),
        ({"reward_json": '{"a": 1, "b": 5}'}, "outside"),
        ({"reward_json": '{"reward": 2}'}, "outside"),
        ({"reward_txt": "NaN"}, "not a finite number"),
        ({"reward_txt": "1 2"}, "not one number"),
        ({}, "wrote no reward"),
    ],
)
def test_a_bad_or_missing_reward_is_an_error_saying_what(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(RewardError, match=message):
        read_reward(written(tmp_path, **files))


def test_a_removed_or_linked_reward_file_is_never_read(tmp_path: Path) -> None:
    logs = written(tmp_path) / "logs" / "verifier"
    os.mknod(logs / "reward.json", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs's whiteout
    (tmp_path / "forged").write_text("1.0")
    (logs / "reward.txt").symlink_to(tmp_path / "forged")
    with pytest.raises(RewardError, match=r"reward\.txt is a symbolic link"):
        read_reward(tmp_path)
    (logs / "reward.txt").unlink()
    with pytest.raises(RewardError, match="wrote no reward"):  # the whiteout alone: no reward.json
        read_reward(tmp_path)
