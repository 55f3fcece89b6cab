/* Build steps' processes before their requests, in C: what step_process.spare does in Python,
 * without a fork of init's Python (its copy-on-write faults in init and in the child, and the
 * teardown of that copy at exec, cost several milliseconds of CPU a step).
 *
 * A build sandbox's init (init.py) starts this program once, while no step runs (for an instant
 * after its exec a process is dumpable: a step of the same uid could open its /proc entries, the
 * host's root among them). It makes itself undumpable, then forks a spare each time init sends it
 * a byte on its socket: a child of init (CLONE_PARENT, so that init reaps it as its own), born
 * undumpable, whose pid and socket it sends back. A forker this small forks in a fraction of a
 * millisecond, so init asks for the next step's spare while a step runs.
 *
 * A spare makes a mount namespace of its own and applies the stage operations given as arguments
 * (a step's /dev and /run), then waits for its request on its socket. The request: the step's
 * root operations, its root, then the command; with the step's stdin, stdout and stderr
 * (SCM_RIGHTS). It applies the operations, pivots into the root, locks itself in (the nested user
 * namespace, then a mount namespace of its own there) and execs the command; a hold instead sends
 * the root's descriptor to the server and waits until the server lets go.
 *
 * Operations, in arguments as in the request: one string each, fields separated by \x1f:
 *   M src target fstype flags data   mount (flags as a decimal; data may be empty)
 *   B src target                     bind mount
 *   V src target                     move a mount
 *   F path                           an empty file
 *   D path                           a directory
 *   L target path                    a symlink
 * Usage: step-starter SOCKET_FD USERNS_FD [OP ...]; init's byte on SOCKET_FD is answered with the
 * spare's pid (decimal) and its socket (SCM_RIGHTS).
 * The request: NUL-separated strings: "run" or "hold", root, cwd, uid ("" for no change), gid,
 * the number of operations, the operations, argc, argv, envc, env.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_REQUEST (1 << 20)
#define MAX_FIELDS 6

static int err_fd = -1; /* the step's stderr once it has come: failures are said there */
static char stage_failure[1024]; /* a failure before the request, said once the request comes */

static void fail(const char *what, const char *detail) {
    char line[sizeof stage_failure];
    snprintf(line, sizeof line, "the build step could not start: %s%s%s: %s\n", what, detail ? " " : "",
             detail ? detail : "", strerror(errno));
    if (err_fd < 0) {
        memcpy(stage_failure, line, sizeof line);
        return;
    }
    dprintf(err_fd, "%s", line);
    _exit(127);
}

/* Split `op` at \x1f into at most MAX_FIELDS fields (in place); the number of fields. */
static int split(char *op, char **fields) {
    int n = 0;
    fields[n++] = op;
    for (char *p = op; *p && n < MAX_FIELDS; p++) {
        if (*p == '\x1f') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    }
    return n;
}

/* Apply one operation; before the request, a failure is kept (fail) and the rest skipped. */
static void apply(char *op) {
    if (stage_failure[0]) return;
    char *f[MAX_FIELDS];
    int n = split(op, f);
    const char *kind = f[0];
    if (strcmp(kind, "M") == 0 && n == 6) {
        if (mount(f[1], f[2], f[3], strtoul(f[4], NULL, 10), *f[5] ? f[5] : NULL) != 0) fail("mount", f[2]);
    } else if (strcmp(kind, "B") == 0 && n == 3) {
        if (mount(f[1], f[2], NULL, MS_BIND, NULL) != 0) fail("bind mount", f[2]);
    } else if (strcmp(kind, "V") == 0 && n == 3) {
        if (mount(f[1], f[2], NULL, MS_MOVE, NULL) != 0) fail("move mount", f[2]);
    } else if (strcmp(kind, "F") == 0 && n == 2) {
        int fd = open(f[1], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) fail("create", f[1]);
        close(fd);
    } else if (strcmp(kind, "D") == 0 && n == 2) {
        if (mkdir(f[1], 0755) != 0) fail("mkdir", f[1]);
    } else if (strcmp(kind, "L") == 0 && n == 3) {
        if (symlink(f[1], f[2]) != 0) fail("symlink", f[2]);
    } else {
        errno = EINVAL;
        fail("unknown operation", kind);
    }
}

/* mkdir -p, as Docker makes a step's WORKDIR: inside the step's root (after the pivot). */
static void make_dirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) fail("mkdir", path);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail("mkdir", path);
}

/* One message of `length` bytes with a descriptor (SCM_RIGHTS); 0, or -1 with errno. */
static int send_with_fd(int channel, const char *text, size_t length, int fd) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)text, .iov_len = length};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(channel, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* The root's descriptor to the server (over the step's stdin, a socket), held until it closes. */
static void hold(const char *root, int channel) {
    int where = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (where < 0) fail("open", root);
    if (send_with_fd(channel, "R", 1, where) != 0) fail("sending the root", root);
    close(where);
    char buffer[4096];
    while (read(channel, buffer, sizeof buffer) > 0) {
    }
    _exit(0);
}

/* execvpe with the command's own PATH (not this process's environment's). */
static void exec_command(char **argv, char **env) {
    const char *name = argv[0];
    if (strchr(name, '/')) {
        execve(name, argv, env);
        fail("exec", name);
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char **e = env; *e; e++) {
        if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
    }
    int denied = 0;
    char candidate[4096];
    for (const char *dir = path;; dir = strchr(dir, ':') + 1) {
        size_t length = strcspn(dir, ":");
        if (snprintf(candidate, sizeof candidate, "%.*s%s%s", (int)length, length ? dir : ".", "/", name) <
            (int)sizeof candidate) {
            execve(candidate, argv, env);
            if (errno == EACCES) denied = 1;
        }
        if (!dir[length]) break;
    }
    if (denied) errno = EACCES;
    fail("exec", name);
}

/* A spare: its stage, its request, its root, its command. Never returns. */
static void spare(int channel, int user_ns, int stage_count, char **stage) {
    /* A session and process group of its own, whose id is its pid: the server signals a step's group. */
    if (setsid() < 0) fail("setsid", NULL);
    /* Failures before the request are said on the step's stderr once it comes (fail). */
    if (unshare(CLONE_NEWNS) != 0) fail("unshare", "(step mount namespace)");
    for (int i = 0; i < stage_count; i++) apply(stage[i]); /* none once a failure is kept */

    static char request[MAX_REQUEST + 1];
    int fds[3] = {-1, -1, -1};
    char control[CMSG_SPACE(sizeof fds)];
    struct iovec iov = {.iov_base = request, .iov_len = MAX_REQUEST};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t size = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
    if (size <= 0) _exit(0); /* the build ended first */
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof fds)) _exit(127);
    memcpy(fds, CMSG_DATA(cmsg), sizeof fds);
    err_fd = fds[2];
    if (stage_failure[0]) {
        dprintf(err_fd, "%s", stage_failure);
        _exit(127);
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        errno = EMSGSIZE;
        fail("a request too long", NULL);
    }
    /* `channel` closes at the exec (SOCK_CLOEXEC): init then makes the next step's spare. */
    request[size] = '\0';

    /* The request's strings (see the top). */
    static char *words[MAX_REQUEST + 2]; /* each at least its NUL; one more for a NULL after the last */
    size_t count = 0;
    for (char *p = request; p < request + size; p += strlen(p) + 1) words[count++] = p;
    size_t at = 0;
#define NEXT() (at < count ? words[at++] : (errno = EINVAL, fail("a malformed request", NULL), NULL))
    const char *kind = NEXT(), *root = NEXT();
    char *cwd = NEXT();
    const char *uid = NEXT(), *gid = NEXT();
    size_t ops = strtoul(NEXT(), NULL, 10);
    for (size_t i = 0; i < ops; i++) apply(NEXT());
    if (strcmp(kind, "hold") == 0) hold(root, fds[0]);

    if (chdir(root) != 0) fail("chdir", root);
    /* pivot_root(".", ".") stacks the old root over the new one; detaching it leaves only ours. */
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root", root);
    if (umount2(".", MNT_DETACH) != 0) fail("detaching the host's root", NULL);
    if (chdir("/") != 0) fail("chdir", "/");
    /* Locked in: mounts made in a namespace of a more privileged user namespace cannot be undone
     * from a nested one (lockin.py). */
    if (setns(user_ns, CLONE_NEWUSER) != 0) fail("setns", "(nested user namespace)");
    close(user_ns);
    if (unshare(CLONE_NEWNS) != 0) fail("unshare", "(nested mount namespace)");

    size_t args = strtoul(NEXT(), NULL, 10);
    if (args == 0 || args > count - at) fail("a malformed request", NULL);
    char **command = &words[at];
    at += args;
    size_t envs = strtoul(NEXT(), NULL, 10);
    if (envs > count - at) fail("a malformed request", NULL);
    char **env = &words[at];
    /* Both lists end in NULL: argv's in the slot of the env count, read already. */
    words[at + envs] = NULL;
    command[args] = NULL;

    if (*cwd) make_dirs(cwd);
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0) fail("dup2", NULL);
    }
    err_fd = 2;
    closefrom(3);
    if (*uid) {
        gid_t group = (gid_t)strtoul(gid, NULL, 10);
        if (setgroups(1, &group) != 0 || setgid(group) != 0 || setuid((uid_t)strtoul(uid, NULL, 10)) != 0)
            fail("switching to the step's user", uid);
    }
    if (chdir(*cwd ? cwd : "/") != 0 && chdir("/") != 0) fail("chdir", cwd);
    exec_command(command, env);
    _exit(127);
}

/* Send init a spare's pid and its end of the spare's socket. */
static int send_spare(int channel, pid_t pid, int socket_fd) {
    char text[32];
    int length = snprintf(text, sizeof text, "%d", (int)pid);
    return send_with_fd(channel, text, (size_t)length, socket_fd);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) _exit(127); /* no step may read its /proc entries */
    int channel = atoi(argv[1]), user_ns = atoi(argv[2]);
    char command;
    while (recv(channel, &command, 1, 0) == 1) {
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) _exit(127);
        /* A fork whose child is init's (CLONE_PARENT): init reaps it and hears of its exit. */
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
        if (pid == 0) {
            close(channel);
            close(pair[0]);
            spare(pair[1], user_ns, argc - 3, argv + 3);
        }
        close(pair[1]);
        if (pid < 0 || send_spare(channel, pid, pair[0]) != 0) _exit(127); /* init finds this socket closed */
        close(pair[0]);
    }
    return 0; /* init is gone, or done with builds */
}
