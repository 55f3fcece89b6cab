#!/usr/bin/env bash
# Harbor end to end: `harbor run --env runloop` (Harbor 0.25, Runloop's SDK 3.x) against
# `scenario-mcp api` over tests/harbor_tasks. Harbor needs Python >= 3.12: it gets its own venv
# under .tools/ (from python3.12 on PATH, or pyenv's 3.12). See scripts/harbor_e2e.py.
set -euo pipefail
cd "$(dirname "$0")/.."
HARBOR_VERSION=0.25.0
venv=.tools/harbor-venv
if [ ! -x "$venv/bin/harbor" ] || ! "$venv/bin/harbor" --version 2>/dev/null | grep -qx "$HARBOR_VERSION"; then
  py=""
  # A pyenv shim may exist for a version that is not selected: try each candidate for real.
  for candidate in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 python3.12 python3.13 python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      py=$(command -v "$candidate"); break
    fi
  done
  if [ -z "$py" ]; then
    echo "harbor-e2e: Harbor needs Python 3.12 or newer; install python3.12 (or pyenv install 3.12) and rerun" >&2
    exit 1
  fi
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "harbor[runloop]==$HARBOR_VERSION"
fi
[ -x .venv/bin/python ] || EXTRAS=test bash scripts/setup.sh
exec .venv/bin/python scripts/harbor_e2e.py --harbor "$venv/bin/harbor" "$@"
