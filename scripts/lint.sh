#!/usr/bin/env bash
# Style and types: ruff (lint and format) and mypy --strict, as CI runs them before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || EXTRAS=test bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/mypy --strict
