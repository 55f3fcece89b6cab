"""Devboxes from Dockerfile blueprints on the engine: the build's life (queued, building, complete
or failed, one log entry per step), the image's own root and config in the devbox, snapshots and
scoring on it. The base is a tiny busybox image in a real registry on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.trust import EXTRA_CA_FILE, TrustSettings
from scenario_mcp.models import (
    BlueprintCreateParameters,
    CommandScorer,
    DevboxCreateParameters,
    InputContext,
    LaunchParameters,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
    UserParameters,
)

from ..conftest import seed_default_blueprint, shutdown_all
from .conftest import seed_image
from .helpers import score
from .oci_registry import Pusher, busybox_layer
from .test_trust import make_ca

pytestmark = pytest.mark.anyio

IMAGE_CONFIG = {"Env": ["PATH=/bin", "FROM_IMAGE=yes"], "WorkingDir": "/srv", "Cmd": ["/bin/sh"]}


@pytest.fixture
def base_image(registry: Pusher) -> str:
    registry.image("images/busybox", "1", [busybox_layer()], config=IMAGE_CONFIG)
    return f"{registry.address}/images/busybox:1"


async def built(backend: LocalBackend, params: BlueprintCreateParameters) -> str:
    queued = await backend.create_blueprint(params)
    assert queued.status == "queued"  # Runloop's answer: at once, before the build
    done = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    assert done.status == "build_complete", done.failure_message
    return done.id


async def test_a_dockerfile_blueprint_makes_devboxes_with_the_images_root_and_config(
    backend: LocalBackend, base_image: str
) -> None:
    dockerfile = f"FROM {base_image}\nENV ADDED=1\nWORKDIR /app\nRUN echo built > /app/built.txt\n"
    blueprint_id = await built(
        backend,
        BlueprintCreateParameters(
            name="busy",
            dockerfile=dockerfile,
            file_mounts={"/app/mounted.txt": "from a file mount\n"},
            system_setup_commands=["echo setup > setup.txt"],
            metadata={"suite": "images"},
        ),
    )
    view = await backend.get_blueprint(blueprint_id)
    assert view.metadata == {"suite": "images"} and view.state == "created"
    assert view.image_config is not None and view.image_config["cmd"] == ["/bin/sh"]  # kept, not run
    assert view.image_config["working_dir"] == "/app" and ["ADDED", "1"] in view.image_config["env"]
    messages = [log.message for log in (await backend.blueprint_logs(blueprint_id)).logs]
    assert any(m.startswith("line 4: RUN echo built > /app/built.txt") for m in messages), messages
    assert any(m.startswith("$ echo setup > setup.txt") for m in messages), messages
    assert any(m.startswith(f"pulled {base_image}") for m in messages), messages  # the pull's progress lines

    box = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    run = await backend.execute(box, "pwd; cat built.txt setup.txt mounted.txt; echo $FROM_IMAGE$ADDED $PATH")
    assert run.exit_status == 0, run.stderr
    assert run.stdout == "/app\nbuilt\nsetup\nfrom a file mount\nyes1 /bin\n"
    # The image's root, not the host's: no host python, no host /etc/os-release.
    probe = await backend.execute(box, "test -e /usr/bin/python3 || test -e /etc/os-release || echo image-only")
    assert probe.stdout == "image-only\n"

    # A snapshot of it is an image environment too.
    await backend.execute(box, "echo changed > /app/built.txt")
    snapshot = await backend.snapshot_disk(box, name="busy-changed")
    again = (await backend.create_devbox(DevboxCreateParameters(snapshot_id=snapshot.id))).id
    assert (await backend.execute(again, "cat built.txt; echo $FROM_IMAGE")).stdout == "changed\nyes\n"


async def test_a_base_that_cannot_be_pulled_fails_the_build_not_the_engine(
    backend: LocalBackend, registry: Pusher, base_image: str
) -> None:
    dockerfile = f"FROM {registry.address}/images/none:1\nRUN true\n"
    queued = await backend.create_blueprint(BlueprintCreateParameters(name="no-base", dockerfile=dockerfile))
    failed = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    assert failed.status == "failed" and failed.failure_reason == "build_failed"
    assert "could not be pulled" in (failed.failure_message or "") and "images/none" in (failed.failure_message or "")
    # The engine goes on: the next build and devbox work.
    fine = await built(backend, BlueprintCreateParameters(name="fine", dockerfile=f"FROM {base_image}\n"))
    box = await backend.create_devbox(DevboxCreateParameters(blueprint_id=fine))
    assert (await backend.execute(box.id, "echo $FROM_IMAGE")).stdout == "yes\n"


async def test_a_failing_step_fails_the_build_with_its_line_and_output(backend: LocalBackend, base_image: str) -> None:
    dockerfile = f"FROM {base_image}\nRUN echo fine\nRUN echo about to fail && exit 7\nRUN echo never\n"
    queued = await backend.create_blueprint(BlueprintCreateParameters(name="broken", dockerfile=dockerfile))
    failed = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    assert failed.status == "failed" and failed.failure_reason == "build_failed"
    assert "line 3" in (failed.failure_message or "") and "exited 7" in (failed.failure_message or "")
    logs = (await backend.blueprint_logs(queued.id)).logs
    failing = [log for log in logs if log.level == "error"]
    assert failing[0].message.startswith("line 3: RUN echo about to fail") and "about to fail" in failing[0].message
    assert not any("never" in log.message.split("\n")[0] for log in logs)
    with pytest.raises(InvalidStateError, match="failed"):
        await backend.create_devbox(DevboxCreateParameters(blueprint_id=queued.id))


async def test_a_blueprints_launch_parameters_are_its_devboxes_defaults(backend: LocalBackend, base_image: str) -> None:
    launch = LaunchParameters(keep_alive_time_seconds=321, launch_commands=["echo booted >> boot.txt"])
    blueprint_id = await built(
        backend, BlueprintCreateParameters(name="launch", dockerfile=f"FROM {base_image}\n", launch_parameters=launch)
    )
    for _ in range(2):  # the second create takes the defaults the engine kept from the first
        box = await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))
        assert box.launch_parameters.keep_alive_time_seconds == 321
        assert (await backend.execute(box.id, "cat boot.txt")).stdout == "booted\n"
    # What the caller gives wins over the blueprint's, field by field.
    own = await backend.create_devbox(
        DevboxCreateParameters(
            blueprint_id=blueprint_id, launch_parameters=LaunchParameters(keep_alive_time_seconds=60)
        )
    )
    assert own.launch_parameters.keep_alive_time_seconds == 60
    assert own.launch_parameters.launch_commands == ["echo booted >> boot.txt"]


async def test_a_dockerfile_with_a_base_blueprint_or_no_text_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(InvalidRequestError, match="not both"):
        await backend.create_blueprint(
            BlueprintCreateParameters(name="x", dockerfile="FROM scratch\n", base_blueprint_name="other")
        )
    with pytest.raises(InvalidRequestError, match="empty"):
        await backend.create_blueprint(BlueprintCreateParameters(name="x", dockerfile="  \n"))


async def test_a_scenario_on_an_image_blueprint_scores_in_the_image(backend: LocalBackend, base_image: str) -> None:
    blueprint_id = await built(backend, BlueprintCreateParameters(name="busy-task", dockerfile=f"FROM {base_image}\n"))
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="touch-done",
            input_context=InputContext(problem_statement="Create the file `done`."),
            # The image's WorkingDir, where the agent's commands start.
            environment_parameters=ScenarioEnvironment(blueprint_id=blueprint_id, working_directory="/srv"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    # busybox's sh, not bash: the image has no bash, and the scorer runs in the image.
                    ScoringFunction(
                        name="done", weight=1.0, scorer=CommandScorer(command="test -f done && test -x /bin/busybox")
                    )
                ]
            ),
        )
    )
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    assert run.devbox_id is not None
    assert (await backend.execute(run.devbox_id, "touch done")).exit_status == 0
    scored = await score(backend, run.id)
    assert scored.scoring_contract_result is not None, scored
    assert scored.scoring_contract_result.score == 1.0, scored.scoring_contract_result


async def test_every_devbox_feature_works_on_a_debian_image(
    backend: LocalBackend, debian_image: tuple[str, Path]
) -> None:
    """Named shells, files, suspend and resume, limits, snapshots, a python scorer in a fresh
    sandbox and reference validation, on a realistic image (Debian with python3)."""
    reference, pulled = debian_image
    seed_image(backend, pulled)
    blueprint_id = await built(backend, BlueprintCreateParameters(name="debian", dockerfile=f"FROM {reference}\n"))
    limited = LaunchParameters(custom_gb_memory=1)
    made = await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id, launch_parameters=limited))
    host_based = await backend.create_devbox(DevboxCreateParameters(launch_parameters=limited))
    assert made.limits == host_based.limits and made.limits  # the same cgroup limits as any devbox
    box = made.id
    await backend.execute(box, "cd /tmp && export GREETING=hi", shell_name="main")
    kept = await backend.execute(box, "echo $PWD $GREETING", shell_name="main")
    assert kept.stdout == "/tmp hi\n"
    await backend.write_file(box, "project/calc.py", "def add(a, b):\n    return a - b\n")
    assert await backend.read_file(box, "project/calc.py") == "def add(a, b):\n    return a - b\n"
    assert "calc.py" in await backend.list_files(box, "project")
    await backend.suspend_devbox(box)
    await backend.resume_devbox(box)
    assert (await backend.execute(box, "python3 -c 'print(6 * 7)'")).stdout == "42\n"
    snapshot = await backend.snapshot_disk(box, name="debian-task")
    await backend.shutdown_devbox(box)

    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="debian-calc",
            input_context=InputContext(problem_statement="Fix add in project/calc.py."),
            environment_parameters=ScenarioEnvironment(snapshot_id=snapshot.id, working_directory="/home/user/project"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(
                        name="add",
                        weight=1.0,
                        scorer=CommandScorer(command="python3 -c 'from calc import add; assert add(2, 3) == 5'"),
                    )
                ]
            ),
            reference_output="sed -i 's/a - b/a + b/' calc.py",
        )
    )
    verdict = await backend.validate_scenario(scenario.id)
    assert verdict.valid, verdict.verdict
    assert verdict.gold.result is not None and verdict.gold.result.score == 1.0
    assert verdict.untouched.result is not None and verdict.untouched.result.score == 0.0


async def test_an_image_devbox_trusts_the_hosts_added_cas_and_its_snapshot_keeps_none(
    tmp_path: Path, registry: Pusher, default_blueprint_cache: Path
) -> None:
    ca = make_ca(tmp_path, "devbox-test-ca")
    settings = TrustSettings(host_ca_certs=False, extra_ca_certs=(ca,))
    registry.image("images/trusting", "1", [busybox_layer()], config={"Env": ["PATH=/bin"]})
    async with LocalBackend(tmp_path / "data", trust=settings) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        blueprint_id = await built(
            engine,
            BlueprintCreateParameters(name="trusting", dockerfile=f"FROM {registry.address}/images/trusting:1\n"),
        )
        box = (await engine.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
        seen = await engine.execute(box, 'cat "$SSL_CERT_FILE"; echo "$REQUESTS_CA_BUNDLE"')
        assert ca.read_text().strip() in seen.stdout and seen.stdout.endswith(f"{EXTRA_CA_FILE}\n")
        await engine.execute(box, "echo mine > /etc/mine.txt")
        snapshot = await engine.snapshot_disk(box)
        again = (await engine.create_devbox(DevboxCreateParameters(snapshot_id=snapshot.id))).id
        assert (await engine.execute(again, "cat /etc/mine.txt")).stdout == "mine\n"
        layer = engine.devboxes.layers.path(snapshot.id)
        assert not any(ca.read_text().strip() in p.read_text() for p in layer.rglob("*.pem") if p.is_file())
        await shutdown_all(engine)


async def test_a_workdir_no_step_writes_to_exists_in_the_devbox(backend: LocalBackend, base_image: str) -> None:
    """As Docker: `WORKDIR /x` at the end of a Dockerfile makes /x, and commands start there."""
    dockerfile = f"FROM {base_image}\nRUN echo ok\nWORKDIR /srv/never/written\n"
    blueprint_id = await built(backend, BlueprintCreateParameters(name="workdir", dockerfile=dockerfile))
    box = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    assert (await backend.execute(box, "pwd")).stdout == "/srv/never/written\n"


async def test_an_image_devbox_root_holds_only_the_images_files(backend: LocalBackend, base_image: str) -> None:
    """No engine bookkeeping (markers, the layer store's names) shows in an image's root."""
    blueprint_id = await built(
        backend, BlueprintCreateParameters(name="clean-root", dockerfile=f"FROM {base_image}\nRUN mkdir /made\n")
    )
    box = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    listed = (await backend.execute(box, "ls -A /")).stdout.split()
    assert ".complete" not in listed and "made" in listed and "bin" in listed


async def test_uploads_belong_to_the_images_user(backend: LocalBackend, base_image: str) -> None:
    """An image whose USER is not root: what upload_file makes (the file and each directory made
    for it) is that user's, as on Runloop, so its commands can change it. (write_file needs
    `realpath -m`, which busybox lacks; test_files.py covers it on the host environment.)"""
    dockerfile = f"FROM {base_image}\nRUN mkdir -p /home/user /srv/kept\nUSER 1234:2345\n"
    blueprint_id = await built(backend, BlueprintCreateParameters(name="as-1234", dockerfile=dockerfile))
    box = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    await backend.upload_file(box, "/srv/kept/new/file.bin", b"\x00\x01")
    await backend.upload_file(box, "made/notes.txt", b"x")  # relative: under /home/user
    seen = await backend.execute(
        box,
        "stat -c '%n %u:%g' /srv/kept /srv/kept/new /srv/kept/new/file.bin /home/user /home/user/made "
        "/home/user/made/notes.txt && echo more >> /srv/kept/new/file.bin && id -u",
    )
    assert seen.stdout.splitlines() == [
        "/srv/kept 0:0",
        "/srv/kept/new 1234:2345",
        "/srv/kept/new/file.bin 1234:2345",
        "/home/user 0:0",
        "/home/user/made 1234:2345",
        "/home/user/made/notes.txt 1234:2345",
        "1234",
    ], seen.stderr


async def test_commands_run_as_the_user_the_launch_or_the_image_names(
    backend: LocalBackend, debian_image: tuple[str, Path]
) -> None:
    reference, pulled = debian_image
    seed_image(backend, pulled)
    dockerfile = f"FROM {reference}\nRUN useradd --create-home --uid 1234 agent\nUSER agent\nWORKDIR /home/agent\n"
    blueprint_id = await built(backend, BlueprintCreateParameters(name="as-agent", dockerfile=dockerfile))
    image_user = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    seen = await backend.execute(image_user, 'id -u; id -G; echo "$HOME $USER"; pwd; touch mine && stat -c %u mine')
    assert seen.stdout == "1234\n1234\n/home/agent agent\n/home/agent\n1234\n", seen.stderr
    assert (await backend.execute(image_user, "cat /etc/shadow")).exit_status != 0  # not root any more
    await backend.execute(image_user, "cd /tmp && export KEPT=yes", shell_name="work")
    assert (await backend.execute(image_user, "echo $PWD $KEPT", shell_name="work")).stdout == "/tmp yes\n"

    as_root = LaunchParameters(user_parameters=UserParameters(username="root", uid=0))  # as Harbor asks
    root = (
        await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id, launch_parameters=as_root))
    ).id
    assert (await backend.execute(root, "id -u")).stdout == "0\n"
    by_uid = LaunchParameters(user_parameters=UserParameters(username="nobody-here", uid=4321))
    other = (
        await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id, launch_parameters=by_uid))
    ).id
    assert (await backend.execute(other, "id -u")).stdout == "4321\n"

    bad = await built(backend, BlueprintCreateParameters(name="ghost", dockerfile=f"FROM {reference}\nUSER ghost\n"))
    with pytest.raises(InvalidRequestError, match="not in its /etc/passwd"):
        await backend.create_devbox(DevboxCreateParameters(blueprint_id=bad))
