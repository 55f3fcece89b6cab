"""What the REST tests share: Runloop's success and error shapes, and a scenario to work with."""

from __future__ import annotations

from typing import Any

import httpx2

CONTRACT = {
    "scoring_function_parameters": [
        {"name": "ok", "weight": 1.0, "scorer": {"type": "bash_script_scorer", "bash_script": "echo 1.0"}}
    ]
}


def ok(response: httpx2.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx2.Response, status: int) -> str:
    """Runloop's error shape: the status as `code`, a kind and a message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and isinstance(body["error"], str)
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


async def scenario(http: httpx2.AsyncClient, name: str = "s", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "input_context": {"problem_statement": "p"}, "scoring_contract": CONTRACT, **extra}
    return dict(ok(await http.post("/v1/scenarios", json=body)))
