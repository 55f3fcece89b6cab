#!/usr/bin/env bash
# What benchmarks/bench_images.py needs beyond the project: a registry to pull from, skopeo for the
# floor, mmdebstrap to build the Debian minbase image (cached under .tools/). Root, Debian/Ubuntu.
#
#   bash benchmarks/setup-images.sh [--with-docker]
#
# --with-docker also installs Debian's docker.io, for Docker's figures as peers. Only here, never
# for the tests. Its daemon is not started by the package (a policy-rc.d denies it during the
# install, and systemd's units are disabled after): bench_images.py starts its own dockerd with
# --iptables=false --bridge=none (no network of the host changes) and stops it when done.
set -euo pipefail
cd "$(dirname "$0")/.."
with_docker=0
for arg in "$@"; do
  case $arg in
    --with-docker) with_docker=1 ;;
    *) echo "usage: $0 [--with-docker]" >&2; exit 2 ;;
  esac
done
need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ $with_docker = 1 ] && ! command -v dockerd >/dev/null && need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # no service starts during the install
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  else
    echo "bench setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
if [ $with_docker = 1 ] && [ -d /run/systemd/system ]; then
  # No socket activation either: a daemon started with its defaults would add a bridge and rules.
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh
