#!/usr/bin/env bash
# Installs scenario-mcp, builds the default devbox environment once (`scenario-mcp setup`: a venv
# with pytest, from PyPI), and runs the demo: the seed workflow through a real MCP client over stdio.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/scenario-mcp setup "$@"
exec .venv/bin/scenario-mcp demo "$@"
