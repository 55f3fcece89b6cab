"""The Runloop-compatible REST API over any Backend (see scenario_mcp.rest_api.build_rest_app)."""
