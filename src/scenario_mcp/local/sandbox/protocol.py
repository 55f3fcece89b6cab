"""The launcher protocol between the server and a sandbox's init (init.py, launcher.py)."""

# init listens here for the server's commands: it starts them itself (a vfork), so a command starts
# inside every namespace and cgroup of the devbox (no nsenter, no cgroup move).
LAUNCHER_SOCKET = "launcher.sock"
MAX_MESSAGE = 1 << 20  # a request's largest size, its argv, env and (a build step's) root plan
