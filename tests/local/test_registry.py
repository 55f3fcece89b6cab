"""Image references as Docker users write them, where their registries are, and whose credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scenario_mcp.local.registry import Endpoint, ImageError, is_loopback, load_docker_auths, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:24.04", "docker.io/library/ubuntu:24.04"),
        ("python:3.13-slim", "docker.io/library/python:3.13-slim"),
        ("laude/tbench:v1", "docker.io/laude/tbench:v1"),
        ("index.docker.io/library/debian:12", "docker.io/library/debian:12"),
        ("ghcr.io/laude-institute/t-bench/base:latest", "ghcr.io/laude-institute/t-bench/base:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost/app:1", "localhost/app:1"),
        ("127.0.0.1:5000/a/b:2", "127.0.0.1:5000/a/b:2"),
        (f"ubuntu@{DIGEST}", f"docker.io/library/ubuntu@{DIGEST}"),
        (f"quay.io/x/y:1@{DIGEST}", f"quay.io/x/y:1@{DIGEST}"),
    ],
)
def test_references_are_normalised_as_docker_does(text: str, name: str) -> None:
    assert parse_reference(text).name == name


@pytest.mark.parametrize("text", ["Ubuntu", "ubuntu@sha256:short", "a:b:c", "ubuntu:bad tag", ""])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(ImageError, match="invalid image reference"):
        parse_reference(text)


def test_a_digest_reference_resolves_by_digest() -> None:
    assert parse_reference(f"ubuntu@{DIGEST}").manifest_ref == DIGEST
    assert parse_reference("ubuntu:24.04").manifest_ref == "24.04"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:80", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_endpoints_plain_http_only_on_loopback_or_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCENARIO_MCP_INSECURE_REGISTRIES", raising=False)
    monkeypatch.delenv("SCENARIO_MCP_REGISTRY_MIRROR", raising=False)
    assert [e.base_url for e in Endpoint.for_registry("docker.io")] == ["https://registry-1.docker.io"]
    assert [e.base_url for e in Endpoint.for_registry("localhost:5000")] == ["http://localhost:5000"]
    assert [e.base_url for e in Endpoint.for_registry("reg.lan:5000")] == ["https://reg.lan:5000"]
    monkeypatch.setenv("SCENARIO_MCP_INSECURE_REGISTRIES", "reg.lan:5000, other.lan")
    assert [e.base_url for e in Endpoint.for_registry("reg.lan:5000")] == ["http://reg.lan:5000"]
    assert [e.base_url for e in Endpoint.for_registry("other.lan:443")] == ["http://other.lan:443"]


def test_a_mirror_is_tried_first_for_docker_hub_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_MCP_REGISTRY_MIRROR", "https://mirror.example/")
    assert [e.base_url for e in Endpoint.for_registry("docker.io")] == [
        "https://mirror.example",
        "https://registry-1.docker.io",
    ]
    assert [e.base_url for e in Endpoint.for_registry("ghcr.io")] == ["https://ghcr.io"]
    monkeypatch.setenv("SCENARIO_MCP_REGISTRY_MIRROR", "127.0.0.1:5000")
    assert Endpoint.for_registry("docker.io")[0].base_url == "http://127.0.0.1:5000"


def test_docker_config_auths(tmp_path: Path) -> None:
    def auth(user: str, password: str) -> dict[str, str]:
        return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}

    config = {
        "auths": {
            "https://index.docker.io/v1/": auth("hub", "p1"),
            "ghcr.io": auth("gh", "tok:en"),
            "localhost:5000": {"identitytoken": "ignored"},
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_docker_auths(tmp_path) == {"docker.io": ("hub", "p1"), "ghcr.io": ("gh", "tok:en")}
    assert load_docker_auths(tmp_path / "missing") == {}
