"""The options several commands share: the data dir and log level, the backend, retention and what
image devboxes trust."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from ..local.trust import TrustSettings


def default_data_dir() -> Path:
    env = os.environ.get("SCENARIO_MCP_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("scenario-mcp"))


def common_options() -> argparse.ArgumentParser:
    """Every command's: where the data lives and how much it logs."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the database and devbox disks live (env SCENARIO_MCP_DATA_DIR; default: the user data dir)",
    )
    common.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return common


def backend_options() -> argparse.ArgumentParser:
    """The commands that open a backend: which one, what its image devboxes trust, what it retains."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--backend",
        choices=["local", "remote"],
        default="local",
        help="local: the embedded engine (default); remote: a Runloop-compatible REST API at RUNLOOP_BASE_URL "
        "(default https://api.runloop.ai) with RUNLOOP_API_KEY",
    )
    _add_trust_options(options)
    add_retain_option(options)
    return options


def add_retain_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retain",
        default="7d",
        metavar="DURATION",
        help="how long outputs and logs of ended devboxes and runs are kept (their records stay): "
        "7d (default), 12h, 30m, 90s, or 0",
    )


def _add_trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extra-ca-certs",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="local backend: a CA certificate file (PEM or DER) image devboxes and Dockerfile build steps trust "
        "too, besides the host's own added CAs (repeatable; env SCENARIO_MCP_EXTRA_CA_CERTS, files separated by ':')",
    )
    parser.add_argument(
        "--no-host-ca-certs",
        action="store_true",
        default=os.environ.get("SCENARIO_MCP_NO_HOST_CA_CERTS", "").lower() in ("1", "true", "yes"),
        help="local backend: do not give image devboxes and build steps the CAs this host added to its own trust "
        "store (/usr/local/share/ca-certificates, /etc/pki/ca-trust/source/anchors), as they are by default "
        "(env SCENARIO_MCP_NO_HOST_CA_CERTS=1)",
    )


def trust_settings(args: argparse.Namespace) -> TrustSettings:
    """What image devboxes and build steps trust, from the options and the environment; raises
    TrustError for an extra CA file that cannot be used."""
    from ..local.trust import TrustSettings

    from_env = [Path(p) for p in os.environ.get("SCENARIO_MCP_EXTRA_CA_CERTS", "").split(os.pathsep) if p]
    settings = TrustSettings(not args.no_host_ca_certs, tuple(from_env + args.extra_ca_certs))
    settings.check()
    return settings
