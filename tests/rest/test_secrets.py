"""Secrets over the REST API on a real server on 127.0.0.1: Runloop's /v1/secrets as SDK 1.32 calls
it, the remote backend over it, and a devbox given a secret by name whose value no answer shows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from runloop_api_client import AsyncRunloop

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import SecretCreateParameters, SecretUpdateParameters
from scenario_mcp.remote import RemoteBackend

from .helpers import error, ok
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

VALUE = "sk-rest-a1b2c3d4e5f60718"


@pytest.fixture
async def served(backend: LocalBackend) -> AsyncIterator[str]:
    async with serve_rest(backend) as url:
        yield url


async def test_the_sdk_manages_secrets_and_never_gets_a_value_back(served: str) -> None:
    async with AsyncRunloop(bearer_token=TOKEN, base_url=served, max_retries=0) as sdk:
        created = await sdk.secrets.create(name="MODEL_KEY", value=VALUE)
        assert created.name == "MODEL_KEY" and created.id.startswith("sec_")
        updated = await sdk.secrets.update("MODEL_KEY", value=VALUE + "-2")
        assert updated.update_time_ms >= created.update_time_ms
        assert [s.name for s in (await sdk.secrets.list()).secrets] == ["MODEL_KEY"]
        assert (await sdk.secrets.delete("MODEL_KEY")).id == created.id
        assert (await sdk.secrets.list()).secrets == []


async def test_a_devbox_uses_a_secret_that_no_answer_shows(served: str) -> None:
    async with httpx2.AsyncClient(base_url=served, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
        answers = [ok(await api.post("/v1/secrets", json={"name": "MODEL_KEY", "value": VALUE}))]
        assert "exists already" in error(await api.post("/v1/secrets", json={"name": "MODEL_KEY", "value": "x"}), 409)
        assert "not valid" in error(await api.post("/v1/secrets", json={"name": "no-dash", "value": "x"}), 400)
        assert "MISSING" in error(await api.post("/v1/devboxes", json={"secrets": {"K": "MISSING"}}), 400)
        box = ok(await api.post("/v1/devboxes", json={"secrets": {"OPENAI_API_KEY": "MODEL_KEY"}}))
        done = ok(
            await api.post(
                f"/v1/devboxes/{box['id']}/execute_sync",
                json={"command": 'test -n "$OPENAI_API_KEY"; echo $OPENAI_API_KEY'},
            )
        )
        assert done["stdout"] == "[secret MODEL_KEY]\n" and done["exit_status"] == 0
        for path in [
            f"/v1/devboxes/{box['id']}",
            f"/v1/devboxes/{box['id']}/logs",
            "/v1/secrets",
            "/v1/secrets/MODEL_KEY",
        ]:
            answers.append(ok(await api.get(path)))
        answers.append(ok(await api.post(f"/v1/devboxes/{box['id']}/shutdown")))
        assert not [answer for answer in answers if VALUE in str(answer)]
        assert error(await api.get("/v1/secrets/NOPE"), 404)


async def test_the_remote_backend_speaks_secrets(served: str) -> None:
    async with RemoteBackend(served, TOKEN) as remote:
        created = await remote.create_secret(SecretCreateParameters(name="A_KEY", value=VALUE))
        assert (await remote.get_secret("A_KEY")).id == created.id
        await remote.update_secret("A_KEY", SecretUpdateParameters(value="other-value"))
        assert [s.name for s in (await remote.list_secrets()).secrets] == ["A_KEY"]
        assert (await remote.delete_secret("A_KEY")).name == "A_KEY"
