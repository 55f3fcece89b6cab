"""How a pydantic ValidationError reads to a caller, the same on the REST API and in MCP tools."""

from __future__ import annotations

from pydantic import ValidationError


def validation_message(exc: ValidationError) -> str:
    """One part per problem, each naming its field: `scoring_contract.weight: must be > 0; name: unknown field`."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown field")
        elif error["type"] == "missing":
            parts.append(f"{loc}: required field missing")
        else:
            parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)
