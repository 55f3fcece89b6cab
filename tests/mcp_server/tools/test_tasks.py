"""import_scenarios and export_scenario through a real MCP client: paths only under --allow-dir,
export inline or to an allowed directory, and an imported task's tests hidden from solvers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.host_dirs import HostDirs
from scenario_mcp.mcp_server.server import build_server
from tests.local.conftest import seed_image

from ..helpers import error_text, ok

TASK = Path(__file__).resolve().parents[2] / "tasks" / "harbor" / "etc-config"

pytestmark = pytest.mark.anyio


async def test_import_and_export_over_mcp(
    backend: LocalBackend, debian_image: tuple[str, Path], tmp_path: Path
) -> None:
    reference, pulled = debian_image
    seed_image(backend, pulled)
    allowed = tmp_path / "allowed"
    task = shutil.copytree(TASK, allowed / "etc-config")
    dockerfile = task / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM debian:bookworm", f"FROM {reference}"))
    outside = shutil.copytree(task, tmp_path / "outside")

    server = build_server(backend, host_dirs=HostDirs.of([str(allowed)]), toolsets=["tasks", "scenarios"])
    async with Client(server) as client:
        imported = await ok(client, "import_scenarios", paths=[str(allowed)], wait_seconds=60)
        [result] = imported["results"]
        assert result["action"] == "created" and result["name"] == "etc-config"
        again = await ok(client, "import_scenarios", paths=[str(task)], wait_seconds=60)
        assert again["results"][0]["action"] == "unchanged"
        refused = await error_text(client, "import_scenarios", paths=[str(outside)])
        assert "is not under a directory this server allows" in refused
        broken = allowed / "broken"
        broken.mkdir()
        (broken / "task.toml").write_text("[verifier]\ntimeout_sec = 60\n")
        assert "instruction.md is missing" in await error_text(client, "import_scenarios", paths=[str(broken)])

        inline = await ok(client, "export_scenario", scenario_id=result["scenario_id"])
        files = {f["path"]: f["contents"] for f in inline["files"]}
        assert files["tests/test.sh"] == (task / "tests" / "test.sh").read_text()
        assert files["solution/solve.sh"] == (task / "solution" / "solve.sh").read_text()
        assert "[environment]" in files["task.toml"] and "environment/Dockerfile" in files
        written = await ok(client, "export_scenario", scenario_id=result["scenario_id"], directory=str(allowed / "out"))
        assert (Path(written["directory"]) / "tests" / "test.sh").is_file()
        elsewhere = await error_text(
            client, "export_scenario", scenario_id=result["scenario_id"], directory=str(tmp_path / "out")
        )
        assert "is not under a directory this server allows" in elsewhere

    async with Client(build_server(backend, role="solver", toolsets=["all"])) as solver:
        tools = {tool.name for tool in (await solver.list_tools()).tools}
        assert not tools & {"import_scenarios", "export_scenario"}
        seen = await ok(solver, "get_scenario", scenario_id=result["scenario_id"])
        assert "mode=$EXPECTED" not in str(seen) and "mkdir -p /etc/scenario" not in str(seen)
        assert seen["scoring_contract"]["scoring_function_parameters"][0]["scorer"]["scorer_params"] is None
        assert seen["scoring_scope"] == "whole_filesystem"
