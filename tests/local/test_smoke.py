import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


async def test_devbox_runs_python_with_pytest(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    result = await backend.execute(box.id, "pytest --version && pwd")
    assert result.exit_status == 0, result.stderr
    assert result.stdout.strip().endswith("/home/user")
