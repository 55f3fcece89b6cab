"""The layer garbage collector: what nothing stands on goes, what anything stands on stays."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidStateError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BlueprintCreateParameters, DevboxCreateParameters

from .oci_registry import Pusher, busybox_layer, file, make_tar

pytestmark = pytest.mark.anyio


async def layer_chain(backend: LocalBackend, blueprint_id: str) -> list[str]:
    assert backend.store is not None
    row = await backend.store.get("blueprints", blueprint_id)
    assert row is not None
    return list(row.internal["layers"])


async def test_layers_go_once_nothing_stands_on_them(backend: LocalBackend, registry: Pusher) -> None:
    registry.image("gc/base", "1", [busybox_layer(), make_tar([file("marker", "gc")])], config={"Env": ["PATH=/bin"]})
    dockerfile = f"FROM {registry.address}/gc/base:1\nRUN echo step > /step.txt\n"
    queued = await backend.create_blueprint(BlueprintCreateParameters(name="gc", dockerfile=dockerfile))
    with pytest.raises(InvalidStateError, match="in flight"):
        await backend.collect_garbage(grace_seconds=0)  # its layers are not recorded yet
    blueprint = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    assert blueprint.status == "build_complete", blueprint.failure_message
    layers = backend.devboxes.layers
    chain = await layer_chain(backend, blueprint.id)
    assert len(chain) == 3 and all(layers.exists(layer) for layer in chain)

    box = await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint.id))
    await backend.delete_blueprint(blueprint.id)
    report = await backend.collect_garbage(grace_seconds=0)
    assert all(layers.exists(layer) for layer in chain), "a running devbox stands on them"
    assert not set(chain) & {*report.layers, *report.image_layers}
    # The pulled image's record goes (here, or in the collection the delete started): nothing
    # names it now, only its layers are used.
    assert not layers.list_images()
    assert (await backend.execute(box.id, "cat /step.txt /marker")).stdout == "step\ngc"

    await backend.shutdown_devbox(box.id)
    report = await backend.collect_garbage(grace_seconds=0)
    assert set(chain) <= {*report.layers, *report.image_layers}
    assert not any(layers.exists(layer) for layer in chain)
    assert report.freed_bytes > 0
    # The default environment (a blueprint still recorded) is untouched.
    assert (await backend.execute((await backend.create_devbox(DevboxCreateParameters())).id, "true")).exit_status == 0


async def test_young_layers_stay_within_the_grace_period(backend: LocalBackend, registry: Pusher) -> None:
    registry.image("gc/young", "1", [busybox_layer()], config={"Env": ["PATH=/bin"]})
    queued = await backend.create_blueprint(
        BlueprintCreateParameters(name="young", dockerfile=f"FROM {registry.address}/gc/young:1\nRUN true\n")
    )
    await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
    chain = await layer_chain(backend, queued.id)
    await backend.delete_blueprint(queued.id)
    await backend.collect_garbage()  # the default grace: made a moment ago, so perhaps not recorded yet
    assert all(backend.devboxes.layers.exists(layer) for layer in chain)
