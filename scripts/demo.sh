#!/usr/bin/env bash
# Installs scenario-mcp and runs its demo: the seed workflow through a real MCP client over stdio.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/scenario-mcp demo "$@"
