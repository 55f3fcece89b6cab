#!/usr/bin/env bash
# Style and types: ruff (lint and format) and mypy --strict, as CI runs them before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || EXTRAS=test bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/mypy --strict
# The benchmarks and scripts are scripts, not a package: their own dir (and the repository root, for
# tests.local.oci_registry) on mypy's path, as on Python's when they run.
MYPYPATH=benchmarks:scripts:. .venv/bin/mypy --strict --no-namespace-packages benchmarks/*.py scripts/*.py
