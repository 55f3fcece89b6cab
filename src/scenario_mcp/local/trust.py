"""The trust given to a sandbox on an image: the host's added CAs, and its proxy settings.

Behind a TLS-intercepting proxy the host trusts CAs it keeps apart (Debian, Ubuntu and Alpine
under /usr/local/share/ca-certificates, RHEL under /etc/pki/ca-trust/source/anchors); an image's
own trust store does not have them, so every HTTPS connection from it fails ("self-signed
certificate in certificate chain"). A sandbox on an image gets them twice over:

- a *trust layer* stacked on top of the image's layers: the image's own CA bundle at each
  trust-store path it has (TRUST_STORES, symlinks followed, read through the layers as overlayfs
  would) with the added CAs appended in a marked block, and the added CAs alone at EXTRA_CA_FILE
  (a path no distribution's CA tool scans, so an `update-ca-certificates` in a step leaves them
  out of what it generates);
- environment variables for the tools that do not read the system store: SSL_CERT_FILE,
  REQUESTS_CA_BUNDLE and PIP_CERT name the image's bundle (EXTRA_CA_FILE where it has none),
  NODE_EXTRA_CA_CERTS names EXTRA_CA_FILE; and the host's HTTP(S)_PROXY/NO_PROXY, when set.

The layer is content-addressed like an image layer and kept among them in the layer store, so it
is made once per (bundle, CAs) and shared; the collector frees it unless it is named among the
layers a live sandbox stacks. It is never the image's: a build step or a snapshot freezes its
sandbox's upper directory only, and `SandboxTrust.strip` (builds call it before freezing a step;
a snapshot must too) takes the marked block out of any trust-store file a command copied up there
(by appending to it, a chmod, `sed -i`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import ssl
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from .layered_view import Entry, LayeredView, is_opaque
from .layers import LayerStore, remove_tree

__all__ = [
    "EXTRA_CA_FILE",
    "HOST_CA_SOURCES",
    "TRUST_STORES",
    "NotRemembered",
    "SandboxTrust",
    "TrustError",
    "TrustSettings",
    "proxy_env",
    "sandbox_trust",
    "strip_added_cas",
    "trust_for",
]

TRUST_STORES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine (Arch: a symlink)
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora, CentOS: a symlink to the next
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",  # OpenSSL's default file on Alpine (a symlink to the first there)
    "/etc/ssl/ca-bundle.pem",  # openSUSE
)
EXTRA_CA_FILE = "/etc/ssl/scenario-mcp-ca.pem"
HOST_CA_SOURCES: tuple[tuple[Path, str], ...] = (
    (Path("/usr/local/share/ca-certificates"), "*.crt"),  # what update-ca-certificates adds
    (Path("/etc/pki/ca-trust/source/anchors"), "*"),  # what update-ca-trust adds
)
BUNDLE_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
BEGIN = b"# scenario-mcp: CAs added for this sandbox, not part of the image (begin)\n"
END = b"# scenario-mcp: CAs added for this sandbox (end)\n"
LAYER_FORMAT = "trust-layer-v1"
# overlayfs's own marks, as the engine mounts it (`userxattr`) and oci_layer.py writes them

_K = TypeVar("_K")
_V = TypeVar("_V")
MEMO_SIZE = 1024  # entries in each of this process's memos, each small
_READ: dict[tuple[str, int, int, int], list[bytes]] = {}  # a CA file as it was -> its certificates
# (the store's root, each layer with its inode and ctime, the CAs' digest)
_Key = tuple[str, tuple[tuple[str, int, int], ...], bytes]
_MADE: dict[_Key, _Made | None] = {}  # see _made
# What each _MADE entry was made from (LayeredView.seen), to tell whether a layer on top changes it.
_SEEN: dict[_Key, dict[str, Entry | None]] = {}

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
_BLOCK = re.compile(re.escape(b"\n" + BEGIN) + rb".*?" + re.escape(END), re.S)


class TrustError(ValueError):
    """A CA file given to add that cannot be read or holds no certificate."""


@dataclass(frozen=True)
class TrustSettings:
    """What a sandbox on an image is given to trust: the host's added CAs (unless turned off)
    and these extra CA files (PEM or DER)."""

    host_ca_certs: bool = True
    extra_ca_certs: tuple[Path, ...] = ()
    host_ca_sources: tuple[tuple[Path, str], ...] = HOST_CA_SOURCES  # (directory, glob), searched deep

    def certificates(self, *, remembered_only: bool = False) -> list[bytes]:
        """The CAs to add, DER-encoded, each once, the host's first. Read anew on each call (a
        host that rotates its proxy's CA gets it into the next sandbox). Raises TrustError for an
        extra file; a host file holding no certificate is passed over, as the host's tools do.
        `remembered_only`: raise NotRemembered rather than read a file not read before."""
        found: dict[bytes, None] = {}
        if self.host_ca_certs:
            for directory, pattern in self.host_ca_sources:
                for path in sorted(directory.rglob(pattern)) if directory.is_dir() else []:
                    with contextlib.suppress(TrustError):
                        found.update(dict.fromkeys(_read_certificates(path, remembered_only)))
        for path in self.extra_ca_certs:
            try:
                found.update(dict.fromkeys(_read_certificates(path, remembered_only)))
            except TrustError as exc:
                raise TrustError(f"extra CA file {path}: {exc}") from None
        return list(found)

    def check(self) -> None:
        """Raise TrustError now (at start-up) for an extra CA file that cannot be used."""
        self.certificates()


class NotRemembered(Exception):
    """What a sandbox's trust needs is not in this process's memos yet: a CA file to read, or a
    trust layer to make or find. Off the event loop, then."""


def _read_certificates(path: Path, remembered_only: bool = False) -> list[bytes]:
    """The certificates in a PEM file (one or more) or a DER file, each checked with OpenSSL;
    remembered while the file is unchanged."""
    try:
        st = os.stat(path)
        key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
        if key in _READ:
            return _READ[key]
        if remembered_only:
            raise NotRemembered(str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(exc.strerror or str(exc)) from None
    blocks = _PEM_CERT.findall(data)
    ders = [base64.b64decode(block) for block in blocks] if blocks else [data] if data[:1] == b"\x30" else []
    if not ders:
        raise TrustError("no certificate in it (PEM or DER)")
    for der in ders:
        try:  # a bad certificate in a bundle makes OpenSSL refuse the whole file
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
        except (ssl.SSLError, ValueError) as exc:
            raise TrustError(f"a certificate OpenSSL cannot load ({exc})") from None
    _remember(_READ, key, ders)
    return ders


def proxy_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The host's proxy variables that are set (both spellings, as the host has them)."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in PROXY_ENV if source.get(name)}


@dataclass(frozen=True)
class SandboxTrust:
    """What a sandbox on an image is given: a layer to stack on top (None: nothing to add) and
    environment variables to start its commands with."""

    layer: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the paths the layer holds files at, in the image

    def stack(self, layers: Sequence[str]) -> tuple[str, ...]:
        """The sandbox's layers, topmost first: the trust layer over `layers`."""
        return (self.layer, *layers) if self.layer else tuple(layers)

    def strip(self, tree: Path) -> list[str]:
        """Take the added CAs out of a stopped sandbox's upper tree (its `root`), or a layer
        frozen from one, before anything stacks it; returns the paths changed. Blocking."""
        return strip_added_cas(tree, self.files)


async def sandbox_trust(
    store: LayerStore,
    layers: Sequence[str],
    settings: TrustSettings,
    *,
    environ: Mapping[str, str] | None = None,
) -> SandboxTrust:
    """The trust for a sandbox whose root is the image `layers` (layer store ids, topmost first).

    Makes the trust layer if the store does not have it yet (a worker thread: it reads the
    image's bundle through its layers). `environ`: where the proxy variables come from (the
    server's own environment by default)."""
    try:  # as a devbox create mostly finds it: remembered, a few stats, no thread hop
        certificates = settings.certificates(remembered_only=True)
        return trust_for(store, layers, certificates, environ=environ, remembered_only=True)
    except NotRemembered:
        return await anyio.to_thread.run_sync(
            lambda: trust_for(store, layers, settings.certificates(), environ=environ)
        )


def trust_for(
    store: LayerStore,
    layers: Sequence[str],
    certificates: Sequence[bytes],
    *,
    environ: Mapping[str, str] | None = None,
    remembered_only: bool = False,
) -> SandboxTrust:
    """`sandbox_trust` with the CAs already read (TrustSettings.certificates). Blocking, unless
    `remembered_only` (then it raises NotRemembered for a trust layer it would have to make)."""
    env = proxy_env(environ)
    if not certificates:
        return SandboxTrust(env=env)
    made = _made(store, layers, certificates, remembered_only=remembered_only)
    if made is None:
        return SandboxTrust(env=env)
    bundle = made.bundle or (EXTRA_CA_FILE if made.extra else None)
    if bundle is not None:
        env |= dict.fromkeys(BUNDLE_ENV, bundle)
    if made.extra:
        env["NODE_EXTRA_CA_CERTS"] = EXTRA_CA_FILE
    return SandboxTrust(made.layer, env, made.files)


def strip_added_cas(tree: Path, paths: Iterable[str]) -> list[str]:
    """Remove the marked block of added CAs from the files at `paths` (in the image) under
    `tree`; a file left empty (EXTRA_CA_FILE copied up) goes. Returns the paths changed.

    `tree` is written by the sandbox's commands: no symlink in it is followed (one could point
    at a host file, or at a shared trust layer)."""
    changed = []
    for path in paths:
        *parents, name = [p for p in path.split("/") if p]
        try:
            parent = _open_dir(tree, parents)
        except OSError:
            continue
        try:
            if _strip_file(parent, name):
                changed.append(path)
        except OSError:
            pass
        finally:
            os.close(parent)
    return changed


def _open_dir(tree: Path, parts: Sequence[str]) -> int:
    """A descriptor of the directory `parts` below `tree`, through no symlink."""
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in parts:
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


def _strip_file(parent: int, name: str) -> bool:
    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    with os.fdopen(fd, "r+b") as file:  # in place: the copied-up file keeps its mode and owner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        data = file.read()
        kept = _BLOCK.sub(b"", data)
        if kept == data:
            return False
        if kept:
            file.seek(0)
            file.write(kept)
            file.truncate()
    if not kept:
        os.unlink(name, dir_fd=parent)
    return True


# -- the layer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    path: str
    mode: int
    uid: int
    gid: int
    data: bytes | None = None  # None: a directory


@dataclass(frozen=True)
class _Made:
    layer: str
    files: tuple[str, ...]  # where the layer holds files, in the image
    bundle: str | None  # the image's bundle, by the first name in TRUST_STORES it has
    extra: bool  # EXTRA_CA_FILE is there


def _made(
    store: LayerStore, layers: Sequence[str], certificates: Sequence[bytes], *, remembered_only: bool = False
) -> _Made | None:
    """`_trust_layer`, remembered in this process: a sandbox more on the same image costs a stat
    per layer. A layer made again under the same id (a build step after a collection) is a new
    directory, so it is keyed by its inode and ctime too. A build's next step (the same image
    with a layer or a few more: a RUN's, a COPY's) reuses the trust of the nearest image below it
    that has one when every layer above leaves every path it was made from alone. Blocking."""
    try:
        stats = [os.stat(store.path(layer)) for layer in layers]
    except OSError:
        stats = []
    key = (
        str(store.root),
        tuple((layer, st.st_ino, st.st_ctime_ns) for layer, st in zip(layers, stats, strict=False)),
        hashlib.sha256(b"".join(certificates)).digest(),
    )
    if len(stats) == len(layers) and key in _MADE:
        made = _MADE[key]
        if made is None or store.has_image_layer(made.layer):
            return made
    made_below = _made_below(store, layers, key) if len(stats) == len(layers) else None
    if made_below is not None:
        return made_below[0]
    if remembered_only:  # (the step above makes nothing: a stat per path it looked at)
        raise NotRemembered("the trust layer for these layers")
    image = LayeredView([store.path(layer) for layer in layers])
    made = _trust_layer(store, image, certificates)
    _remember(_MADE, key, made)
    _remember(_SEEN, key, dict(image.seen))
    return made


def _made_below(store: LayerStore, layers: Sequence[str], key: _Key) -> tuple[_Made | None] | None:
    """The trust of the nearest image below `layers` that has one (a build's step before), in a
    1-tuple, when every layer above it leaves alone what it was made from; else None."""
    for depth in range(1, len(layers) + 1):
        below = (key[0], key[1][depth:], key[2])
        if below not in _MADE or below not in _SEEN:
            continue
        made = _MADE[below]
        if made is not None and not store.has_image_layer(made.layer):
            return None
        if not all(_leaves_alone(store.path(layer), _SEEN[below]) for layer in layers[:depth]):
            return None
        _remember(_MADE, key, made)
        _remember(_SEEN, key, _SEEN[below])
        return (made,)
    return None


def _leaves_alone(layer: Path, seen: Mapping[str, Entry | None]) -> bool:
    """Whether a layer put on top of an image changes nothing the image's trust layer was made
    from: every path its making looked at (`seen`, each component of each lookup) is absent
    from the layer, or there a directory as it was below (same mode and owner, not opaque), whose
    entries are then looked at in turn. Blocking: a stat per path."""
    for path, below in seen.items():
        host = f"{layer}/{path.lstrip('/')}"
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if below is None or not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(below[0].st_mode):
            return False
        if (st.st_mode, st.st_uid, st.st_gid) != (below[0].st_mode, below[0].st_uid, below[0].st_gid):
            return False
        if is_opaque(host):
            return False
    return True


def _remember(memo: dict[_K, _V], key: _K, value: _V) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


def _trust_layer(store: LayerStore, image: LayeredView, certificates: Sequence[bytes]) -> _Made | None:
    """The trust layer for the image, made unless the store has it already; None where there is
    nowhere to put a CA. Blocking."""
    pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in certificates).encode()
    block = b"\n" + BEGIN + pem + END
    files: dict[str, _Entry] = {}
    bundle = None
    for name in TRUST_STORES:
        found = image.lookup(name)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            continue
        bundle = bundle or name
        if found.path not in files:
            data = _BLOCK.sub(b"", Path(found.host).read_bytes())  # an image built elsewhere with ours in it
            files[found.path] = _Entry(found.path, found.st.st_mode & 0o7777, found.st.st_uid, found.st.st_gid, data)
    directory = image.directory_for(os.path.dirname(EXTRA_CA_FILE))
    if directory is not None:
        extra = f"{directory.rstrip('/')}/{os.path.basename(EXTRA_CA_FILE)}"
        files.setdefault(extra, _Entry(extra, 0o644, 0, 0, b""))
    if not files:
        return None
    entries = [_Entry(e.path, e.mode, e.uid, e.gid, (e.data or b"") + block) for e in files.values()]
    entries += _directories(image, files)
    entries.sort(key=lambda e: e.path)
    digest = hashlib.sha256(LAYER_FORMAT.encode())
    for e in entries:
        content = b"dir" if e.data is None else hashlib.sha256(e.data).digest()
        digest.update(f"\0{e.path}\0{e.mode:o}\0{e.uid}\0{e.gid}\0".encode() + content)
    layer_id = f"sha256:{digest.hexdigest()}"
    if not store.has_image_layer(layer_id):
        _write_layer(store, layer_id, entries)
    return _Made(layer_id, tuple(files), bundle, directory is not None)


def _directories(image: LayeredView, files: Mapping[str, _Entry]) -> list[_Entry]:
    """The directories above the files, with the image's modes and owners: the topmost layer's
    directory is what overlayfs shows."""
    wanted = {parent for path in files for parent in _parents(path)}
    entries = []
    for path in sorted(wanted):
        found = image.lookup(path)
        if found is not None and stat.S_ISDIR(found.st.st_mode):
            entries.append(_Entry(path, found.st.st_mode & 0o7777, found.st.st_uid, found.st.st_gid))
        else:
            entries.append(_Entry(path, 0o755, 0, 0))
    return entries


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _write_layer(store: LayerStore, layer_id: str, entries: Sequence[_Entry]) -> None:
    with store.pull_lock():  # a collection running now does not take it half-made
        scratch = store.image_layer_scratch(layer_id)
        try:
            for entry in entries:  # sorted: a directory before what is in it
                host = scratch / entry.path.lstrip("/")
                if entry.data is None:
                    host.mkdir()
                else:
                    host.write_bytes(entry.data)
                with contextlib.suppress(PermissionError):  # unprivileged: ours is the sandbox's root
                    os.lchown(host, entry.uid, entry.gid)
            for entry in reversed(entries):  # modes last: a directory may not be writable
                os.chmod(scratch / entry.path.lstrip("/"), entry.mode)
            store.commit_image_layer(scratch, layer_id)
        except BaseException:
            remove_tree(scratch)
            raise
