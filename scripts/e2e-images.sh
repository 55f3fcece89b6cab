#!/usr/bin/env bash
# End to end, slow (a few minutes; needs Debian's mirror and PyPI, and root for mmdebstrap): a
# Dockerfile on a real Debian image whose RUN pip-installs from PyPI, built in the engine's own
# sandboxes from behind this machine's TLS-intercepting proxy, with and without the host's added
# CAs (tests/e2e/images.py says what it proves). Installs what it needs on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)  # the image's loopback registry
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)     # the Debian minbase image
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "e2e-images: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "e2e-images: please install: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
EXTRAS=test bash scripts/setup.sh
exec .venv/bin/python -m tests.e2e.images "$@"
