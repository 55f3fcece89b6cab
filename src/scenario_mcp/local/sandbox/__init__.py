"""Long-lived Linux sandboxes: namespaces held by an init process that starts every command.

A sandbox has its own user, mount, PID, IPC, UTS and network namespaces; its root is a stack of
overlayfs layers (spec.py, mount_plan.py); given network, slirp4netns serves its namespace behind
egress rules it cannot change (network.py). The spawner helper (spawner.py) prepares sandboxes
ahead of time; each one's init (init.py) builds its root and serves its commands.
"""

from ...conventions import HOME
from .handle import Sandbox
from .protocol import LAUNCHER_SOCKET, MAX_MESSAGE
from .spawner import spawns_settled
from .spec import (
    HOST_DIRS,
    HOST_TOOLS_PATH,
    SANDBOX_PATH,
    SandboxError,
    SandboxSpec,
    check_host_support,
    prepare_dirs,
    root_plan,
    sandbox_env,
)

__all__ = [
    "HOME",
    "HOST_DIRS",
    "HOST_TOOLS_PATH",
    "LAUNCHER_SOCKET",
    "MAX_MESSAGE",
    "SANDBOX_PATH",
    "Sandbox",
    "SandboxError",
    "SandboxSpec",
    "check_host_support",
    "prepare_dirs",
    "root_plan",
    "sandbox_env",
    "spawns_settled",
]
