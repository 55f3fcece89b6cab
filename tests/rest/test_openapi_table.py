"""README.md's table of Runloop's OpenAPI paths matches the REST app's routes
(scripts/openapi_table.py makes it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from .openapi import ROOT


def table_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_table", ROOT / "scripts" / "openapi_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readmes_table_is_the_one_the_routes_make() -> None:
    script = table_script()
    readme = (ROOT / "README.md").read_text()
    assert script.readme_table(readme) == script.render(), (
        "README.md's OpenAPI table is stale: run `.venv/bin/python scripts/openapi_table.py --write`"
    )


def test_every_path_not_served_needs_a_reason_and_no_served_path_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    script = table_script()
    reasons = dict(script.NOT_SERVED)
    monkeypatch.setattr(script, "NOT_SERVED", {k: v for k, v in reasons.items() if k != "/v1/axons"})
    with pytest.raises(ValueError, match=r"/v1/axons is not served and NOT_SERVED gives no reason"):
        script.rows()
    monkeypatch.setattr(script, "NOT_SERVED", {**reasons, "/v1/blueprints/{id}": "stale"})
    with pytest.raises(ValueError, match=r"/v1/blueprints/\{id\} is served now"):
        script.rows()
    monkeypatch.setattr(script, "ROUTES", [r for r in script.ROUTES if r[1] != "/v1/objects/list_public"])
    monkeypatch.setattr(script, "NOT_SERVED", reasons)
    with pytest.raises(ValueError, match=r"/v1/objects/list_public is not served"):
        script.rows()


def test_the_script_checks_the_readme_from_the_command_line() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "openapi_table.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "openapi_table.py")], capture_output=True, text=True
    )
    assert "| `/v1/blueprints/list_public` | GET | yes |" in printed.stdout
