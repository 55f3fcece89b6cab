"""A devbox's own network namespace, and (with network) slirp4netns and the egress rules.

Every sandbox's init unshares a network namespace of its own before anything runs in it. Given
network, the spawner attaches slirp4netns to it (user-mode TCP/IP: each connection the devbox
opens becomes a socket of the slirp4netns process, on the host), and init has installed nftables
rules first that refuse what a devbox must never reach. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import socket
import struct
import subprocess

from . import libc

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags at the start of a 24-byte union
HOST_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A networked devbox's own network: a TAP device in its network namespace, served by slirp4netns
# (user-mode TCP/IP on the host side: each connection the devbox opens becomes a socket of the
# slirp4netns process). slirp4netns's fixed addresses:
SLIRP_NETWORK = "10.0.2.0/24"
SLIRP_DNS = "10.0.2.3"  # its DNS forwarder, to the host's resolver
SLIRP_TAP = "tap0"
# Destinations a devbox never reaches, whatever its policy: the host's loopback and link-local
# ranges (cloud metadata services live at 169.254.169.254), and the rest of slirp's network (its
# gateway 10.0.2.2 would be the host's loopback, were slirp4netns not told to refuse).
ALWAYS_BLOCKED_V4 = ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8", SLIRP_NETWORK)
ALWAYS_BLOCKED_V6 = ("::1/128", "fe80::/10", "::ffff:0:0/96")
NETWORK_TOOLS = {"slirp4netns": "slirp4netns", "nft": "nftables"}  # program -> Debian package


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


def host_addresses() -> tuple[list[str], list[str]]:
    """The host's own IPv4 and IPv6 addresses (read in the host's network namespace): a devbox's
    connection to one of them would reach the host's services through slirp4netns's sockets."""
    v4: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/fib_trie") as trie:
        last = ""
        for line in trie:
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif text == "/32 host LOCAL" and last and not last.startswith("127.") and last not in v4:
                v4.append(last)
    v6: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            digits = line.split()[0]
            address = ":".join(digits[i : i + 4] for i in range(0, 32, 4))
            if address not in v6:
                v6.append(address)
    return v4, v6


def egress_ruleset(blocked_v4: list[str], blocked_v6: list[str]) -> str:
    """The nftables rules of a networked devbox's namespace: what it may not reach.

    Installed by init before the devbox's commands exist, from the user namespace that owns the
    network namespace; the commands run in a nested one, without CAP_NET_ADMIN over it, so they
    cannot change them. Outbound traffic not matched here goes to slirp4netns (an allowlist policy
    adds a second table: `allowlist_ruleset`)."""
    v4 = ", ".join([*ALWAYS_BLOCKED_V4, *blocked_v4])
    v6 = ", ".join([*ALWAYS_BLOCKED_V6, *blocked_v6])
    return f"""table inet scenario_mcp {{
    chain egress {{
        type filter hook output priority 0; policy accept;
        oif "lo" accept
        ip daddr {SLIRP_DNS} meta l4proto {{ tcp, udp }} th dport 53 accept
        ip daddr {{ {v4} }} meta l4proto tcp reject with tcp reset
        ip daddr {{ {v4} }} reject with icmp type admin-prohibited
        ip6 daddr {{ {v6} }} meta l4proto tcp reject with tcp reset
        ip6 daddr {{ {v6} }} reject with icmpv6 type admin-prohibited
    }}
}}
"""


def allowlist_ruleset(allowed: list[str]) -> str:
    """A second table of a networked devbox's rules for an allowlist policy: besides loopback and
    DNS to slirp's forwarder, only these addresses (its hosts' names resolved when the devbox
    starts). A packet passes only if every table's chain lets it: the always-blocked ranges of
    `egress_ruleset` stay blocked whatever the list holds."""
    v4 = [a for a in allowed if ":" not in a]
    v6 = [a for a in allowed if ":" in a]
    accept = []
    if v4:
        accept.append(f"ip daddr {{ {', '.join(v4)} }} accept")
    if v6:
        accept.append(f"ip6 daddr {{ {', '.join(v6)} }} accept")
    rules = "\n        ".join(accept)
    return f"""table inet scenario_mcp_allow {{
    chain egress {{
        type filter hook output priority 10; policy accept;
        oif "lo" accept
        ip daddr {SLIRP_DNS} meta l4proto {{ tcp, udp }} th dport 53 accept
        {rules}
        meta l4proto tcp reject with tcp reset
        reject with icmpx type admin-prohibited
    }}
}}
"""


def apply_ruleset(ruleset: str) -> None:
    """Install nftables rules in this process's network namespace (init's, before commands exist)."""
    nft = subprocess.run([network_tool("nft"), "-f", "-"], input=ruleset.encode(), capture_output=True, check=False)
    if nft.returncode != 0:
        raise libc.SpawnError(f"installing the devbox's egress rules: {nft.stderr.decode(errors='replace').strip()}")


def network_tool(name: str) -> str:
    path = shutil.which(name, path=HOST_TOOLS_PATH)
    if path is None:
        missing = " ".join(NETWORK_TOOLS.values())
        raise libc.SpawnError(
            f"a devbox with network needs {name}, which is not installed; install {missing} "
            f"(Debian: apt-get install {missing}), or create the devbox without network"
        )
    return path


def own_network(network: bool, ruleset: str) -> None:
    """In init, before any request: its own network namespace, `lo` up, root's usual rights in it
    (binding ports below 1024, pinging) though commands hold no capability over it, and (with
    network) the egress rules."""
    libc.unshare(libc.CLONE_NEWNET, "unshare(CLONE_NEWNET)")
    with contextlib.suppress(OSError):  # a sandbox without loopback is still usable
        loopback_up()
    for name, value in (("ip_unprivileged_port_start", "0"), ("ping_group_range", "0 0")):
        with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv4/{name}", "w") as f:
            f.write(value)
    if network:
        apply_ruleset(ruleset)


def start_slirp(pid: int, exit_fd: int, timeout: float) -> subprocess.Popen[bytes]:
    """Attach slirp4netns to a prepared init's network namespace; returns once `tap0` is up.

    It refuses the gateway's mapping to the host's loopback, confines itself (seccomp; as root,
    its sandbox too), forwards no port, and exits when init does (`exit_fd` closes)."""
    ready_r, ready_w = os.pipe()
    try:
        process = subprocess.Popen(
            [
                network_tool("slirp4netns"),
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                # As root, its own sandbox drops every capability but binding low ports. (Not
                # otherwise: 1.2.0's fails to take the devbox's gid there, and it holds nothing
                # the server's user does not.)
                *(["--enable-sandbox"] if os.geteuid() == 0 else []),
                "--enable-seccomp",
                f"--exit-fd={exit_fd}",
                f"--ready-fd={ready_w}",
                f"--userns-path=/proc/{pid}/ns/user",
                "--netns-type=path",
                f"/proc/{pid}/ns/net",
                SLIRP_TAP,
            ],
            pass_fds=(exit_fd, ready_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        os.close(ready_w)
    try:
        ready, _, _ = select.select([ready_r], [], [], timeout)
        if not ready or os.read(ready_r, 1) != b"1":
            process.kill()
            _, err = process.communicate()
            reason = err.decode(errors="replace").strip()[-500:]
            if "/dev/net/tun" in reason:
                reason += " (a server not run as root needs it open to all, as udev makes it: chmod 0666 /dev/net/tun)"
            raise libc.SpawnError(f"slirp4netns did not bring the devbox's network up: {reason}")
    finally:
        os.close(ready_r)
    assert process.stderr is not None
    process.stderr.close()
    return process
