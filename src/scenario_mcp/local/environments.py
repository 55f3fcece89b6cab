"""What a devbox, a scorer or a build step stands on: its layers, the blueprint they came from and,
when the layers are a container image's, that image's configuration.

A host-based environment (the default, and blueprints of setup commands) is layers over the
host's /usr and /etc. An image environment (a Dockerfile blueprint, or a snapshot of a devbox made
from one) is a whole root of its own: its processes get the image's `Env` and start in its
`WorkingDir`, as `docker exec` would start them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..backend import InvalidRequestError
from ..conventions import HOME
from ..models import LaunchParameters, UserParameters
from .dockerfile import ImageConfig
from .layers import LayerStore
from .sandbox import SandboxSpec
from .sandbox.rootfs import RootPathError, passwd_entries, resolve, user_ids

# What Docker gives a container whose image sets no PATH.
IMAGE_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RunAs:
    """Who a devbox's commands run as, when not root."""

    uid: int
    gid: int
    home: str
    name: str

    def env(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def run_as(root: Path, user_parameters: UserParameters | None, image_user: str) -> RunAs | None:
    """The user launch_parameters.user_parameters names (by name in the devbox's /etc/passwd, else
    by uid), or else the image's USER; None for root. Raises ValueError saying what is wrong."""
    if user_parameters is not None:
        spec, fallback = user_parameters.username, user_parameters.uid
    elif image_user:
        spec, fallback = image_user, None
    else:
        return None
    try:
        uid, gid, home = user_ids(root, spec)
        name = next((e[0] for e in passwd_entries(root) if e[2] == str(uid)), spec.partition(":")[0])
    except RootPathError:
        if fallback is None:
            raise ValueError(f"the image's USER {spec!r} is not in its /etc/passwd") from None
        uid, gid, home, name = fallback, fallback, HOME, spec
    if uid == 0:
        return None
    return RunAs(uid, gid, home if home not in ("", "/", "/nonexistent") else HOME, name)


@dataclass(frozen=True)
class Environment:
    layers: tuple[str, ...]  # topmost first
    blueprint_id: str | None = None
    image: ImageConfig | None = None

    @classmethod
    def from_internal(cls, internal: dict[str, Any], blueprint_id: str | None = None) -> Environment:
        """From a blueprint's, snapshot's or devbox's engine-only record."""
        image = internal.get("image")
        return cls(
            tuple(internal.get("layers", ())), blueprint_id, None if image is None else ImageConfig.from_json(image)
        )

    def to_internal(self) -> dict[str, Any]:
        record: dict[str, Any] = {"layers": list(self.layers)}
        if self.image is not None:
            record["image"] = self.image.to_json()
        return record

    def on_top(self, layer_id: str) -> Environment:
        """This environment with one more layer (a snapshot's, a blueprint's setup) on top."""
        return replace(self, layers=(layer_id, *self.layers))

    def spec(
        self,
        store: LayerStore,
        state_dir: Path,
        *,
        network: bool,
        hostname: str,
        extra_layers: tuple[Path, ...] = (),
        egress_allow: tuple[str, ...] | None = None,
        mounts: tuple[tuple[Path, str], ...] = (),
    ) -> SandboxSpec:
        """The sandbox for this environment; `extra_layers` go on top of its own."""
        return SandboxSpec(
            state_dir=state_dir,
            layers=(*extra_layers, *(store.path(layer) for layer in self.layers)),
            skeleton=store.skeleton,
            etc_mask=store.etc_mask,
            network=network,
            hostname=hostname,
            image_root=self.image is not None,
            egress_allow=egress_allow,
            mounts=mounts,
        )

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What a process gets over the sandbox's defaults: the image's Env, then `extra`."""
        if self.image is None:
            return dict(extra or {})
        return {"PATH": IMAGE_DEFAULT_PATH, **self.image.env_dict, **(extra or {})}

    def shell(self, root: Path) -> str:
        """The shell commands run with in the sandbox whose root is `root` (/proc/PID/root): bash,
        or sh in an image that has no bash (Alpine, busybox)."""
        if self.image is None:
            return "/bin/bash"
        try:
            return "/bin/bash" if os.path.lexists(resolve(root, "/bin/bash")) else "/bin/sh"
        except RootPathError:
            return "/bin/sh"

    def make_working_directory(self, root: Path) -> None:
        """Create the image's WorkingDir when no layer has it, as Docker's WORKDIR does (a
        Dockerfile that ends with `WORKDIR /app` and never writes there still has /app)."""
        if self.image is None or not self.image.working_dir:
            return
        with contextlib.suppress(OSError, RootPathError):
            resolve(root, self.image.working_dir).mkdir(parents=True, exist_ok=True)

    @property
    def working_directory(self) -> str:
        """Where a command starts when its caller names no directory."""
        if self.image is not None and self.image.working_dir:
            return self.image.working_dir
        return HOME


def devbox_user(root: Path, launch: LaunchParameters, environment: Environment) -> RunAs | None:
    """Who a devbox's commands run as: user_parameters, else the image's USER, else root (None)."""
    try:
        user = run_as(root, launch.user_parameters, environment.image.user if environment.image else "")
    except ValueError as exc:
        raise InvalidRequestError(f"{exc}; name a user the image has in launch_parameters.user_parameters") from exc
    if user is not None and os.geteuid() != 0:
        raise InvalidRequestError(
            f"commands cannot run as uid {user.uid}: a server not run as root maps only root into its "
            "devboxes; run the server as root, or leave user_parameters out"
        )
    return user
