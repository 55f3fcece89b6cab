"""Secrets on the engine: sealed at rest with a key of its own, given to a devbox's commands by name,
redacted from what the engine keeps of their output, and never in a view."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import anyio
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.secrets import KEY_FILE, Redactor, SecretKey
from scenario_mcp.models import (
    BashScriptScorer,
    BlueprintCreateParameters,
    DevboxCreateParameters,
    RunProfile,
    SecretCreateParameters,
    SecretUpdateParameters,
)

from .helpers import contract, results_by_name, scenario_with, score, start

VALUE = "sk-test-7f3a9c1e5b2d4086aa"


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    # os.walk, not rglob: a scorer's sandbox dir may vanish mid-walk, and rglob (before 3.13) raises then.
    found = []
    for top, _dirs, names in os.walk(root):
        for path in (Path(top) / name for name in names):
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found


@pytest.mark.anyio
async def test_a_secret_reaches_commands_and_nothing_else(backend: LocalBackend, data_dir: Path) -> None:
    created = await backend.create_secret(SecretCreateParameters(name="MODEL_KEY", value=VALUE))
    assert created.id.startswith("sec_") and VALUE not in created.model_dump_json()
    key = data_dir / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32

    box = await backend.create_devbox(DevboxCreateParameters(secrets={"OPENAI_API_KEY": "MODEL_KEY"}))
    done = await backend.execute(
        box.id,
        'echo "key=$OPENAI_API_KEY"; echo "$OPENAI_API_KEY" >&2; '
        'printf %s "$OPENAI_API_KEY" | sha256sum | cut -d" " -f1 > hash',
    )
    assert done.exit_status == 0
    assert done.stdout == "key=[secret MODEL_KEY]\n" and done.stderr == "[secret MODEL_KEY]\n"
    # The program had the value itself: its hash is the value's.
    assert (await backend.read_file(box.id, "hash")).strip() == hashlib.sha256(VALUE.encode()).hexdigest()
    # Written one character at a time, it is still caught across the pipe's chunks.
    slow = await backend.execute(
        box.id, 'for i in $(seq 0 $((${#OPENAI_API_KEY}-1))); do printf %s "${OPENAI_API_KEY:$i:1}"; sleep 0.01; done'
    )
    assert slow.stdout == "[secret MODEL_KEY]"

    views = [
        (await backend.get_devbox(box.id)).model_dump_json(),
        (await backend.devbox_logs(box.id)).model_dump_json(),
        (await backend.list_secrets()).model_dump_json(),
    ]
    assert not [v for v in views if VALUE in v]
    assert "MODEL_KEY" not in (await backend.get_devbox(box.id)).model_dump_json()  # nor which secrets it has
    await backend.shutdown_devbox(box.id)
    # Neither the database (with its WAL) nor any log or file the engine keeps holds the value.
    assert _files_containing(data_dir, VALUE.encode()) == []


@pytest.mark.anyio
async def test_update_delete_and_names(backend: LocalBackend) -> None:
    await backend.create_secret(SecretCreateParameters(name="TOKEN", value="first-value-1234"))
    with pytest.raises(InvalidStateError, match="exists already"):
        await backend.create_secret(SecretCreateParameters(name="TOKEN", value="other"))
    with pytest.raises(InvalidRequestError, match="not valid"):
        await backend.create_secret(SecretCreateParameters(name="1-bad", value="x"))
    updated = await backend.update_secret("TOKEN", SecretUpdateParameters(value="second-value-5678"))
    assert updated.update_time_ms >= updated.create_time_ms
    box = await backend.create_devbox(DevboxCreateParameters(secrets={"T": "TOKEN"}))
    assert (await backend.execute(box.id, 'test "$T" = second-value-5678 && echo same')).stdout == "same\n"
    with pytest.raises(InvalidRequestError, match="does not exist"):
        await backend.create_devbox(DevboxCreateParameters(secrets={"T": "MISSING"}))
    assert (await backend.delete_secret("TOKEN")).name == "TOKEN"
    with pytest.raises(NotFoundError):
        await backend.get_secret("TOKEN")
    with pytest.raises(InvalidStateError, match="was deleted"):
        await backend.execute(box.id, "true")


@pytest.mark.anyio
async def test_the_key_stays_and_a_wrong_key_reads_nothing(data_dir: Path, backend: LocalBackend) -> None:
    await backend.create_secret(SecretCreateParameters(name="A", value="value-of-a"))
    secrets = backend.secrets
    _, sealed = await secrets._row("A")
    assert "value-of-a" not in sealed
    assert secrets.key.open("A", sealed) == "value-of-a"
    with pytest.raises(InvalidTag):
        secrets.key.open("B", sealed)  # bound to its name: not movable to another
    other = SecretKey(data_dir / "other.key")
    with pytest.raises(InvalidTag):
        other.open("A", sealed)


@given(
    value=st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_the_redactor_finds_a_value_across_any_chunks(value: str, prefix: str, suffix: str, cuts: list[int]) -> None:
    data = (prefix + value + suffix).encode()
    redactor = Redactor({"S": value})
    out = b""
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += redactor.feed(data[start : max(start, cut)])
        start = max(start, cut)
    out += redactor.feed(data[start:]) + redactor.flush()
    assert out.decode() == (prefix + value + suffix).replace(value, "[secret S]")


@pytest.mark.anyio
async def test_a_run_gives_its_agent_a_secret_and_its_scorers_none(backend: LocalBackend, data_dir: Path) -> None:
    await backend.create_secret(SecretCreateParameters(name="MODEL_KEY", value=VALUE))
    # The scorer prints what the agent left, and whether it has the variable itself.
    scorer = BashScriptScorer(bash_script='cat leaked.txt; echo "scorer sees [${OPENAI_API_KEY:-nothing}]"; echo 1')
    scenario = await scenario_with(backend, contract(("leak", 1, scorer)))
    run = await start(backend, scenario, run_profile=RunProfile(secrets={"OPENAI_API_KEY": "MODEL_KEY"}))
    wrote = await backend.execute(run.devbox_id, 'echo "$OPENAI_API_KEY" > leaked.txt && cat leaked.txt')
    assert wrote.stdout == "[secret MODEL_KEY]\n"
    scored = await score(backend, run.id)
    state, _, output = results_by_name(scored)["leak"]
    assert state == "complete", output
    assert output.splitlines()[:2] == ["[secret MODEL_KEY]", "scorer sees [nothing]"]
    seen = [
        scored.model_dump_json(),
        (await backend.get_devbox(run.devbox_id)).model_dump_json(),
        *(entry.model_dump_json() for entry in await backend.run_logs(run.id)),
    ]
    assert not [text for text in seen if VALUE in text]
    # The scoring's directories (the scorer's raw output, the copy of the agent's changes) went to
    # the trash as it ended; once that is emptied, only the file the agent wrote itself, in its
    # devbox's own layer, holds it.
    with anyio.fail_after(10):
        while any(backend.devboxes.trash.directory.iterdir()):
            await anyio.sleep(0.02)
    assert [path.name for path in _files_containing(data_dir, VALUE.encode())] == ["leaked.txt"]
    await backend.complete_run(run.id)


@pytest.mark.anyio
async def test_a_build_uses_a_secret_its_layers_and_logs_never_hold(backend: LocalBackend, data_dir: Path) -> None:
    await backend.create_secret(SecretCreateParameters(name="MODEL_KEY", value=VALUE))
    setup = [
        'echo "building with $TOKEN"',
        'printf %s "$TOKEN" | sha256sum | cut -d" " -f1 > /home/user/built.sha',
    ]
    with pytest.raises(InvalidRequestError, match="does not exist"):
        await backend.create_blueprint(
            BlueprintCreateParameters(name="nope", system_setup_commands=setup, secrets={"TOKEN": "MISSING"})
        )
    queued = await backend.create_blueprint(
        BlueprintCreateParameters(name="with-secret", system_setup_commands=setup, secrets={"TOKEN": "MODEL_KEY"})
    )
    built = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    logs = await backend.blueprint_logs(built.id)
    assert built.status == "build_complete", logs
    assert "building with [secret MODEL_KEY]" in logs.model_dump_json()
    box = await backend.create_devbox(DevboxCreateParameters(blueprint_id=built.id))
    assert (await backend.read_file(box.id, "built.sha")).strip() == hashlib.sha256(VALUE.encode()).hexdigest()
    assert (await backend.execute(box.id, 'echo "[${TOKEN:-unset}]"')).stdout == "[unset]\n"
    assert VALUE not in built.model_dump_json()
    await backend.shutdown_devbox(box.id)
    assert _files_containing(data_dir, VALUE.encode()) == []
