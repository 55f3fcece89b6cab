#!/usr/bin/env bash
# Sets up a fresh Linux machine for scenario-mcp: system packages (when root and missing), then a
# virtualenv in .venv with the project installed. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v unshare >/dev/null || need+=(util-linux)
command -v nsenter >/dev/null || need+=(util-linux)
command -v slirp4netns >/dev/null || need+=(slirp4netns)  # a networked devbox's own network
command -v nft >/dev/null || need+=(nftables)              # ... and its egress rules
command -v ip >/dev/null || need+=(iproute2)               # tests read the host's addresses with it
command -v bwrap >/dev/null || need+=(bubblewrap)          # the benchmarks' floor
command -v newuidmap >/dev/null || need+=(uidmap)
# Builds start each step's process with a small C program (local/sandbox/step_starter.c), compiled on
# first use; without a compiler they fall back to a slower way.
command -v cc >/dev/null || need+=(gcc libc6-dev)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# The tests: a loopback OCI registry for image pulls, and a static busybox to build images from
# scratch with (no registry, no base image needed).
case ",${EXTRAS:-}," in
  *,test,*)
    [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
    [ -x /bin/busybox ] || need+=(busybox-static)
    command -v mmdebstrap >/dev/null || need+=(mmdebstrap)  # the realistic Debian test image (tests/local/conftest.py)
    command -v openssl >/dev/null || need+=(openssl)  # test CA certificates (tests/local/test_trust.py)
    command -v chromium >/dev/null || need+=(chromium)  # the HTML report's browser test (tests/harness/test_report.py)
    command -v npm >/dev/null || need+=(npm)          # an npm agent (tests/local/test_agents.py)
    command -v git >/dev/null || need+=(git)          # code mounts from a loopback git daemon (test_mounts.py)
    ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
  fi
fi

# slirp4netns opens /dev/net/tun as the server's user: udev makes it 0666 on Debian, but machines
# without udev (containers, small VMs) leave it 0600, which only a server run as root can use.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 600 ]; then
  chmod 0666 /dev/net/tun
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
spec=.
[ -n "${EXTRAS:-}" ] && spec=".[${EXTRAS}]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 | grep -v '^WARNING: Location' || true
