#!/usr/bin/env bash
# What benchmarks/bench_images.py needs beyond the project: a registry to pull from, skopeo for the
# floor, mmdebstrap to build the Debian minbase image (cached under .tools/). Root, Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bench setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh
