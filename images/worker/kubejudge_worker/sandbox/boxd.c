/* boxd: the box server, one per judging slot, living inside one long-lived bubblewrap box.
 *
 * Starting bubblewrap costs ~5 ms (a network namespace, two dozen mounts, pivot_root, two
 * execs); a trivial program runs in under 1 ms. So the worker starts one box per slot and
 * boxd, inside it, makes every submission and every run fresh itself, for a fraction of that:
 *
 *   boxd        (the box's first process; no capabilities)
 *   `- session  one per submission: fork + unshare(user, mount). Root in its own user
 *      |        namespace, so it can mount a fresh size-capped tmpfs at /box and write the
 *      |        source into it; the whole mount namespace, and with it /box, dies with it.
 *      |        After a run that used the network, runs move to a new network namespace
 *      |        (see fresh_network).
 *      `- init  one per run: clone(new mount, pid, ipc, uts, cgroup namespaces). PID 1 of the
 *         |     run: mounts a fresh /proc (the machine in it the run's own), /tmp and /dev/shm,
 *         |     makes /box read-only for test runs,
 *         |     forbids new user namespaces, enforces the wall clock and the CPU time of the
 *         |     whole tree (and, where no memory cgroup does it, the tree's resident memory),
 *         |     kills everything when the program ends (kill(-1) from PID 1), then reports on
 *         |     the report fd.
 *         `- the program: every capability and the bounding set dropped, no_new_privs,
 *                         rlimits, oom_score_adj 1000, a seccomp filter; only fds 0, 1, 2.
 * Nothing a run leaves behind reaches the next: its processes, /tmp, /dev/shm and SysV IPC die
 * with its namespaces, network state with the network namespace it used; keyrings and /box
 * with the session's user and mount namespaces.
 *
 * With `plain` isolation (the operator's explicit `rlimit` mode, for hosts without user
 * namespaces) boxd runs on the host as root: the session only unshares a mount namespace for
 * its /box tmpfs (at a host path, invisible to the host), and a run is a process group, its
 * program dropped to UID. The program can see the host and escape its group with setsid().
 *
 * Protocol, on the SOCK_SEQPACKET socket at fd 3: one request per datagram, fields separated
 * by NUL, descriptors passed with SCM_RIGHTS; every request gets one reply, "ok" or
 * "error\0MESSAGE".
 *   open SIZE_BYTES                      start a session with an empty /box
 *   file NAME           [fd: contents]   create /box/NAME; only before the session's first run
 *   run WALL_MS CPU_MS MEMORY_KB WATCH WRITABLE SCRATCH_BYTES RLIMITS NENV ENV... ARGV...
 *                       [fds: stdin, stdout, stderr, report, cancel, and cpuacct.usage
 *                        where the host has a cpuacct cgroup for the box]
 *                                        the reply comes when the run has ended; the host
 *                                        ends it early by closing the cancel pipe's other end;
 *                                        WATCH all: boxd limits all of the run's memory to
 *                                        MEMORY_KB; sockets: a memory cgroup limits the rest
 *                                        (its charge leaves out socket buffers)
 *   close                                end the session
 * The report line: "status=S cpu_us=C maxrss_kb=M wall_us=W timed_out=T memory_exceeded=X\n"
 * (M: the peak of what boxd counted, with WATCH sockets only the socket buffers),
 * preceded by "exec_errno=E\n" if the program could not be executed. It goes on its own pipe,
 * which the program never holds, so a program cannot forge it.
 *
 * usage: boxd ns BOX_DIR | boxd plain BOX_DIR UID
 * Written in C: it runs between every two test cases and must cost well under a millisecond.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_FD 3
#define MAX_MESSAGE (256 * 1024)
#define MAX_FIELDS 4096
#define MAX_FDS 6
/* The run's CPU time is sampled this often. A process whose parent ignores SIGCHLD (or set
 * SA_NOCLDWAIT) is reaped by the kernel, and its CPU time reaches no one's child counters: we
 * count what each process had used when last sampled, so such a process escapes with at most
 * what it used since (one interval), plus what /proc's whole clock ticks round away. */
#define CPU_SAMPLE_US 5000
#define TICK_US 10000
#define UNWAITED_ESCAPE_US (CPU_SAMPLE_US + TICK_US)
/* Each task a run creates could escape that much, so a run may create only as many tasks as
 * its CPU limit can pay for at that rate (at least this many): then what escapes is at most
 * its limit again, and an honest program (a JVM starts ~25 threads) is far below. */
#define MIN_TASK_BUDGET 64
#define SEEN_SLOTS 8192 /* open addressing, more than any task budget */
/* Without a memory cgroup, how often the tree's resident memory is summed: a program can
 * outgrow its limit by what it touches in this time before it is killed. */
#define MEMORY_POLL_US 5000
/* Inodes of the session's /box and each run's /tmp and /dev/shm: each costs ~1 KB of kernel
 * memory that no byte count shows (an empty file), so they are capped: <= 6 MB together. */
#define BOX_INODES 4096
#define SCRATCH_INODES 1024
/* Pipe buffers are no process's RSS and have no per-run counter. A pipe holds at most 64 KB
 * (F_SETPIPE_SZ is refused), so every descriptor past the first FREE_FDS of a run counts as
 * 64 KB: unread pipes cost their memory, and an honest program (a JVM holds ~40) nothing. */
#define FREE_FDS 64
#define PIPE_KB 64

static const struct {
    const char *name;
    int resource;
} RLIMITS[] = {
    {"cpu", RLIMIT_CPU},       {"nproc", RLIMIT_NPROC}, {"fsize", RLIMIT_FSIZE},
    {"nofile", RLIMIT_NOFILE}, {"stack", RLIMIT_STACK}, {"core", RLIMIT_CORE},
    {"msgqueue", RLIMIT_MSGQUEUE},
};

static int isolated;        /* ns: inside bubblewrap; 0: plain (rlimit mode, on the host) */
static const char *box_dir; /* where the session's tmpfs is mounted */
static long plain_uid = -1; /* plain mode: the unprivileged uid programs run as */

struct request {
    char data[MAX_MESSAGE + 1];
    char *fields[MAX_FIELDS];
    int nfields;
    int fds[MAX_FDS];
    int nfds;
};

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void reply(const char *status, const char *format, ...) {
    char message[1024];
    size_t length = strlen(status) + 1;
    memcpy(message, status, length);
    if (format != NULL) {
        va_list args;
        va_start(args, format);
        size_t room = sizeof(message) - length;
        int more = vsnprintf(message + length, room, format, args);
        va_end(args);
        if (more > 0) length += (size_t)more < room ? (size_t)more : room - 1; /* truncated */
    }
    /* The host waits for this reply; if it is gone there is no one left to tell. */
    if (send(CONTROL_FD, message, length, MSG_NOSIGNAL) < 0) _exit(0);
}

static void close_fds(struct request *request) {
    for (int i = 0; i < request->nfds; i++) close(request->fds[i]);
    request->nfds = 0;
}

/* 1 with a request, 0 when the host closed the socket. */
static int receive(struct request *request) {
    struct iovec iov = {request->data, MAX_MESSAGE};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buffer,
                             .msg_controllen = sizeof(control.buffer)};
    ssize_t length;
    do length = recvmsg(CONTROL_FD, &message, MSG_CMSG_CLOEXEC);
    while (length < 0 && errno == EINTR);
    if (length <= 0) return 0;
    request->nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < count && request->nfds < MAX_FDS; i++)
            memcpy(&request->fds[request->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    request->data[length] = '\0';
    request->nfields = 0;
    char *end = request->data + length;
    for (char *field = request->data; field < end && request->nfields < MAX_FIELDS;
         field += strlen(field) + 1)
        request->fields[request->nfields++] = field;
    if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) request->nfields = 0; /* refused below */
    return 1;
}

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, strlen(text));
    close(fd);
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

static int write_new(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, strlen(text));
    close(fd);
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

static int apply_rlimits(char *spec) {
    if (*spec == '\0') return 0;
    for (char *item = strtok(spec, ","); item != NULL; item = strtok(NULL, ",")) {
        char *eq = strchr(item, '=');
        if (eq == NULL) return -1;
        *eq = '\0';
        int found = 0;
        for (size_t i = 0; i < sizeof(RLIMITS) / sizeof(RLIMITS[0]); i++) {
            if (strcmp(item, RLIMITS[i].name) == 0) {
                rlim_t value = (rlim_t)strtoull(eq + 1, NULL, 10);
                struct rlimit limit = {value, value};
                if (setrlimit(RLIMITS[i].resource, &limit) != 0) return -1;
                found = 1;
            }
        }
        if (!found) return -1;
    }
    return 0;
}

/* Every capability gone for good: effective, permitted, inheritable, ambient and bounding, so
 * exec (we are uid 0 of the session's user namespace) cannot hand any back. */
static int drop_capabilities(void) {
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return -1;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    return (int)syscall(SYS_capset, &header, data);
}

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "boxd: no seccomp architecture for this target"
#endif

/* Kernel interfaces no judged program needs, each a large attack surface (Docker's default
 * profile refuses them too): keyrings (also a channel between runs), BPF, perf, userfaultfd
 * (an exploit primitive), io_uring; and memfds, memory no process's RSS nor any tmpfs of the
 * run shows while only a descriptor holds it. ENOSYS, so runtimes that probe fall back. */
static const int DENIED_SYSCALLS[] = {
    __NR_add_key,         __NR_request_key,       __NR_keyctl,
    __NR_bpf,             __NR_perf_event_open,   __NR_userfaultfd,
    __NR_io_uring_setup,  __NR_io_uring_enter,    __NR_io_uring_register,
    __NR_memfd_create,    __NR_memfd_secret,
};
#define DENIED_COUNT (sizeof(DENIED_SYSCALLS) / sizeof(DENIED_SYSCALLS[0]))

static int install_seccomp(void) {
    struct sock_filter filter[11 + DENIED_COUNT];
    size_t n = 0;
    /* Another ABI (i386 on x86_64) numbers its syscalls differently: refused outright. */
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               offsetof(struct seccomp_data, arch));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT,
                                               DENIED_COUNT + 5, 0);
#endif
    for (size_t i = 0; i < DENIED_COUNT; i++) /* a match jumps past the rest to ENOSYS */
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                                   (unsigned)DENIED_SYSCALLS[i],
                                                   (unsigned char)(DENIED_COUNT - 1 - i + 5), 0);
    /* Pipes keep their default 64 KB: F_SETPIPE_SZ would let each descriptor hold 1 MB that
     * nothing counts (a run's pipes are bounded by its descriptors instead: see scan_tree). */
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fcntl, 0, 3);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               offsetof(struct seccomp_data, args[1]));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETPIPE_SZ, 0, 1);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    struct sock_fprog program = {.len = (unsigned short)n, .filter = filter};
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0);
}

struct run {
    long long wall_us;
    long long cpu_us;    /* 0: no limit on the tree's CPU time */
    long long memory_kb;
    int watch_all; /* 0: a memory cgroup limits all but socket buffers */
    int writable;
    const char *scratch_bytes;
    char *rlimits;
    char **env;
    char **argv;
    int fds[5]; /* stdin, stdout, stderr, report, cancel */
    int cpu_usage; /* the box's cpuacct.usage (ns), where the host has that cgroup; else -1 */
};

static void program(const struct run *run) {
    for (int i = 0; i < 3; i++) {
        if (dup2(run->fds[i], i) < 0) _exit(127);
    }
    /* The program gets stdin, stdout and stderr, nothing else: the report pipe and the
     * control socket close on exec. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    setpgid(0, 0);
    if (chdir(box_dir) != 0) {
        perror("boxd: chdir");
        _exit(127);
    }
    /* Dispositions and masks must not reach the program: a write past RLIMIT_FSIZE has to kill
     * it (SIGXFSZ), as in Judge0. */
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    write_text("/proc/self/oom_score_adj", "1000"); /* the OOM killer takes it first */
    if (!isolated) {
        gid_t gid = (gid_t)plain_uid;
        if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid((uid_t)plain_uid, (uid_t)plain_uid, (uid_t)plain_uid) != 0) {
            perror("boxd: dropping privileges");
            _exit(127);
        }
    } else if (drop_capabilities() != 0) {
        perror("boxd: dropping capabilities");
        _exit(127);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || apply_rlimits(run->rlimits) != 0 ||
        install_seccomp() != 0) {
        perror("boxd: limits");
        _exit(127);
    }
    execve(run->argv[0], run->argv, run->env);
    /* Judge0 reports a failed exec as Exec Format Error. */
    int error = errno;
    dprintf(run->fds[3], "exec_errno=%d\n", error);
    fprintf(stderr, "execve(%s): %s\n", run->argv[0], strerror(error));
    _exit(126);
}

struct tree {
    long long cpu_us; /* of the live processes, their waited-for children included */
    long long rss_kb; /* resident memory, summed (shared pages count in every process) */
    long long fds;    /* open descriptors, summed */
};

/* Every process of the run ever sampled, with its own CPU ticks when last seen: their sum
 * counts processes the kernel reaped unseen by any parent (whose time `tree.cpu_us` and
 * RUSAGE_CHILDREN lose). */
static struct {
    long pid[SEEN_SLOTS];
    unsigned long long ticks[SEEN_SLOTS];
    unsigned long long total_ticks;
} seen;

static void see(long pid, unsigned long long ticks) {
    for (unsigned slot = (unsigned)pid % SEEN_SLOTS;; slot = (slot + 1) % SEEN_SLOTS) {
        if (seen.pid[slot] == pid || seen.pid[slot] == 0) {
            seen.pid[slot] = pid;
            if (ticks > seen.ticks[slot]) {
                seen.total_ticks += ticks - seen.ticks[slot];
                seen.ticks[slot] = ticks;
            }
            return;
        }
    }
}

/* The run's live processes, from /proc: ns, every process but us; plain, the program's
 * process group. What init reaped itself is in its RUSAGE_CHILDREN instead. */
static struct tree scan_tree(pid_t group) {
    static long ticks, page_kb;
    if (ticks == 0) {
        ticks = sysconf(_SC_CLK_TCK);
        page_kb = sysconf(_SC_PAGESIZE) / 1024;
    }
    struct tree tree = {0, 0, 0};
    long long tick_total = 0;
    DIR *proc = opendir("/proc");
    if (proc == NULL) return tree;
    for (struct dirent *entry; (entry = readdir(proc)) != NULL;) {
        long pid = strtol(entry->d_name, NULL, 10);
        if (pid <= 1 || pid == getpid()) continue;
        char path[64], text[1024];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t length = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (length <= 0) continue;
        text[length] = '\0';
        char *after = strrchr(text, ')'); /* the command name may hold anything */
        if (after == NULL) continue;
        long pgrp, rss;
        unsigned long long utime, stime;
        long long cutime, cstime;
        if (sscanf(after + 2,
                   /* fields 3 to 24 of proc(5): pgrp, utime, stime, cutime, cstime, rss */
                   "%*s %*s %ld %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %lld %lld"
                   " %*s %*s %*s %*s %*s %*s %ld",
                   &pgrp, &utime, &stime, &cutime, &cstime, &rss) != 6)
            continue;
        if (!isolated && pgrp != group) continue;
        tick_total += (long long)(utime + stime) + cutime + cstime;
        see(pid, utime + stime);
        struct stat fd_dir; /* its size is the number of open descriptors (Linux >= 6.2) */
        snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
        if (stat(path, &fd_dir) == 0) tree.fds += fd_dir.st_size;
        tree.rss_kb += rss * page_kb;
    }
    closedir(proc);
    tree.cpu_us = tick_total * 1000000 / ticks;
    return tree;
}

/* What init reaped itself, into `usage`; returns its CPU time in microseconds. */
static long long reaped_usage(struct rusage *usage) {
    getrusage(RUSAGE_CHILDREN, usage);
    return (long long)usage->ru_utime.tv_sec * 1000000 + usage->ru_utime.tv_usec +
           (long long)usage->ru_stime.tv_sec * 1000000 + usage->ru_stime.tv_usec;
}

/* Bytes held by the sockets of the run's network namespace (its own: see run_once), from
 * one sock_diag dump: received and queued data, which no process's RSS and, on cgroup v1, no
 * memory cgroup counts. */
static long long socket_bytes(int diag, int family, int protocol) {
    struct {
        struct nlmsghdr header;
        union {
            struct unix_diag_req unix_request;
            struct inet_diag_req_v2 inet_request;
        };
    } request;
    memset(&request, 0, sizeof(request));
    request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    if (family == AF_UNIX) {
        request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct unix_diag_req));
        request.unix_request.sdiag_family = AF_UNIX;
        request.unix_request.udiag_states = ~0U;
        request.unix_request.udiag_show = UDIAG_SHOW_MEMINFO;
    } else {
        request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_req_v2));
        request.inet_request.sdiag_family = (unsigned char)family;
        request.inet_request.sdiag_protocol = (unsigned char)protocol;
        request.inet_request.idiag_states = ~0U;
        request.inet_request.idiag_ext = 1 << (INET_DIAG_SKMEMINFO - 1);
    }
    if (send(diag, &request, request.header.nlmsg_len, 0) < 0) return 0;
    int attribute = family == AF_UNIX ? UNIX_DIAG_MEMINFO : INET_DIAG_SKMEMINFO;
    size_t header =
        family == AF_UNIX ? sizeof(struct unix_diag_msg) : sizeof(struct inet_diag_msg);
    long long total = 0;
    static char buffer[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t length = recv(diag, buffer, sizeof(buffer), 0);
        if (length <= 0) return total;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (size_t)length);
             h = NLMSG_NEXT(h, length)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) return total;
            struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(header));
            long left = (long)h->nlmsg_len - (long)NLMSG_LENGTH(NLMSG_ALIGN(header));
            while (left >= (long)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
                if (a->nla_type == attribute &&
                    a->nla_len >= NLA_HDRLEN + SK_MEMINFO_VARS * sizeof(__u32)) {
                    const __u32 *info = (const __u32 *)((char *)a + NLA_HDRLEN);
                    __u32 sent = info[SK_MEMINFO_WMEM_ALLOC] > info[SK_MEMINFO_WMEM_QUEUED]
                                     ? info[SK_MEMINFO_WMEM_ALLOC]
                                     : info[SK_MEMINFO_WMEM_QUEUED];
                    total += (long long)info[SK_MEMINFO_RMEM_ALLOC] + sent +
                             info[SK_MEMINFO_BACKLOG];
                }
                left -= NLA_ALIGN(a->nla_len);
                a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
            }
        }
    }
}

/* The count `format` finds on a line of `file` (-1: unknown, so the caller looks). */
static int sockets_in_use(const char *file, const char *format) {
    FILE *stream = fopen(file, "re");
    if (stream == NULL) return -1;
    char line[256];
    int count = -1;
    while (count < 0 && fgets(line, sizeof(line), stream) != NULL)
        if (sscanf(line, format, &count) != 1) count = -1;
    fclose(stream);
    return count;
}

static long long tmpfs_used_bytes(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return 0;
    return (long long)(fs.f_blocks - fs.f_bfree) * fs.f_bsize;
}

/* SysV shared memory of the run's IPC namespace, attached or not. */
static long long sysv_shm_bytes(void) {
    FILE *file = fopen("/proc/sysvipc/shm", "re");
    if (file == NULL) return 0;
    char line[512];
    long long total = 0, rss, swap;
    while (fgets(line, sizeof(line), file) != NULL) {
        /* key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap */
        if (sscanf(line, "%*d %*d %*o %*u %*d %*d %*u %*u %*u %*u %*u %*u %*u %*u %lld %lld",
                   &rss, &swap) == 2)
            total += rss + swap;
    }
    fclose(file);
    return total;
}

/* Memory the run holds in the kernel, which no process's resident memory shows. `all`: also
 * what a memory cgroup would charge (tmpfs files, SysV shared memory); else only sockets.
 * Pipes are bounded instead (see limits.py), memfds refused (see install_seccomp). */
static long long kernel_kb(const struct run *run, int diag, long long box_baseline) {
    long long bytes = 0;
    if (diag >= 0) {
        bytes += socket_bytes(diag, AF_UNIX, 0);
        /* An inet dump walks the host's whole hash table (ms): only when the run has such
         * sockets, as the namespace's own counts in sockstat say. */
        struct {
            const char *file, *format;
            int family, protocol;
        } const inet[] = {
            {"/proc/net/sockstat", "TCP: inuse %d", AF_INET, IPPROTO_TCP},
            {"/proc/net/sockstat", "UDP: inuse %d", AF_INET, IPPROTO_UDP},
            {"/proc/net/sockstat6", "TCP6: inuse %d", AF_INET6, IPPROTO_TCP},
            {"/proc/net/sockstat6", "UDP6: inuse %d", AF_INET6, IPPROTO_UDP},
        };
        for (size_t i = 0; i < sizeof(inet) / sizeof(inet[0]); i++)
            if (sockets_in_use(inet[i].file, inet[i].format) != 0)
                bytes += socket_bytes(diag, inet[i].family, inet[i].protocol);
    }
    if (run->watch_all && isolated) { /* plain: these would be the host's */
        bytes += tmpfs_used_bytes("/tmp") + tmpfs_used_bytes("/dev/shm") + sysv_shm_bytes();
        if (run->writable) bytes += tmpfs_used_bytes(box_dir) - box_baseline;
    }
    return bytes / 1024;
}

/* The box's CPU time so far from its cpuacct cgroup, less init's own (its sampling): exact,
 * whatever the run's processes do with their signals. -1 without one. */
static long long cgroup_cpu_us(int usage) {
    char text[32];
    ssize_t length = usage < 0 ? -1 : pread(usage, text, sizeof(text) - 1, 0);
    if (length <= 0) return -1;
    text[length] = '\0';
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    long long own = (long long)self.ru_utime.tv_sec * 1000000 + self.ru_utime.tv_usec +
                    (long long)self.ru_stime.tv_sec * 1000000 + self.ru_stime.tv_usec;
    return strtoll(text, NULL, 10) / 1000 - own;
}

static int cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) == 0) return 1;
    return CPU_COUNT(&set);
}

static long long ticks_us(unsigned long long ticks) {
    return (long long)ticks * 1000000 / sysconf(_SC_CLK_TCK);
}

/* ns: the last pid allocated in the run's pid namespace, which counts its tasks (threads
 * too: pids are not reused before pid_max). -1 if unknown. */
static long last_pid(void) {
    char text[32];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (length <= 0) return -1;
    text[length] = '\0';
    return strtol(text, NULL, 10);
}

/* The run's own IPC namespace: SysV shared memory within the run's memory limit (and counted:
 * see sysv_shm_bytes), a few small message queues and semaphore sets (<= 512 KB together). */
static int limit_ipc(long long memory_kb) {
    char text[64];
    snprintf(text, sizeof(text), "%lld", memory_kb * 1024);
    if (write_text("/proc/sys/kernel/shmmax", text) != 0) return -1;
    snprintf(text, sizeof(text), "%lld", memory_kb / (sysconf(_SC_PAGESIZE) / 1024));
    if (write_text("/proc/sys/kernel/shmall", text) != 0) return -1;
    return write_text("/proc/sys/kernel/shmmni", "64") != 0 ||
                   write_text("/proc/sys/kernel/msgmni", "16") != 0 ||
                   write_text("/proc/sys/kernel/msgmnb", "16384") != 0 ||
                   write_text("/proc/sys/kernel/sem", "250 4000 32 16") != 0
               ? -1
               : 0;
}

/* The run's own network namespace holds only a loopback, brought up as bubblewrap's was. */
static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request = {.ifr_name = "lo", .ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING};
    int result = ioctl(fd, SIOCSIFFLAGS, &request);
    close(fd);
    return result;
}

/* /proc files that describe the machine, not the process: each run sees its own instead.
 * The host's would tell its size (runtimes size their heaps by MemTotal: the run's limit
 * is the machine for it) and, through CPU and load counters, what other slots are doing. */
/* The session's own /proc files, in a tiny read-only tmpfs on the session's /tmp (which
 * every run covers with its own /tmp): stat, loadavg, uptime, and a meminfo-KB per memory
 * limit its runs had. Binds keep them visible over each run's /proc. */
#define OWN_PROC_DIR "/tmp"
static const unsigned long OWN_PROC_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC;

static int own_proc_writable(int writable) {
    unsigned long flags = MS_REMOUNT | OWN_PROC_FLAGS | (writable ? 0 : MS_RDONLY);
    return mount(NULL, OWN_PROC_DIR, NULL, flags, NULL);
}

static int write_session_proc(void) {
    char text[4096];
    int ncpus = cpus(), length;
    if (mount("tmpfs", OWN_PROC_DIR, "tmpfs", OWN_PROC_FLAGS, "size=64k,nr_inodes=32,mode=0755") !=
        0)
        return -1;
    length = snprintf(text, sizeof(text), "cpu  0 0 0 0 0 0 0 0 0 0\n");
    for (int cpu = 0; cpu < ncpus && length < (int)sizeof(text) - 128; cpu++)
        length += snprintf(text + length, sizeof(text) - (size_t)length,
                           "cpu%d 0 0 0 0 0 0 0 0 0 0\n", cpu);
    snprintf(text + length, sizeof(text) - (size_t)length,
             "intr 0\nctxt 0\nbtime %lld\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n",
             (long long)time(NULL));
    if (write_new(OWN_PROC_DIR "/stat", text) != 0 ||
        write_new(OWN_PROC_DIR "/loadavg", "0.00 0.00 0.00 1/1 1\n") != 0 ||
        write_new(OWN_PROC_DIR "/uptime", "0.00 0.00\n") != 0)
        return -1;
    return own_proc_writable(0);
}

/* The session's meminfo for a run of `kb`, written if no run had that limit yet. */
static int ensure_meminfo(long long kb) {
    char path[64], text[512];
    snprintf(path, sizeof(path), OWN_PROC_DIR "/meminfo-%lld", kb);
    if (access(path, F_OK) == 0) return 0;
    snprintf(text, sizeof(text),
             "MemTotal: %lld kB\nMemFree: %lld kB\nMemAvailable: %lld kB\n"
             "Buffers: 0 kB\nCached: 0 kB\nSwapCached: 0 kB\nShmem: 0 kB\n"
             "SwapTotal: 0 kB\nSwapFree: 0 kB\n",
             kb, kb, kb);
    if (own_proc_writable(1) != 0) return -1;
    int written = write_new(path, text);
    return own_proc_writable(0) != 0 ? -1 : written;
}

static int own_proc(const struct run *run) {
    char meminfo[64];
    snprintf(meminfo, sizeof(meminfo), OWN_PROC_DIR "/meminfo-%lld", run->memory_kb);
    const char *binds[][2] = {{meminfo, "/proc/meminfo"},
                              {OWN_PROC_DIR "/stat", "/proc/stat"},
                              {OWN_PROC_DIR "/loadavg", "/proc/loadavg"},
                              {OWN_PROC_DIR "/uptime", "/proc/uptime"}};
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++)
        if (mount(binds[i][0], binds[i][1], NULL, MS_BIND, NULL) != 0) return -1;
    return 0;
}

static int prepare_namespaces(const struct run *run) {
    char options[96];
    snprintf(options, sizeof(options), "size=%s,nr_inodes=%d,mode=1777", run->scratch_bytes,
             SCRATCH_INODES);
    unsigned long nosuid = MS_NOSUID | MS_NODEV, read_only = MS_BIND | MS_REMOUNT | MS_RDONLY;
    if (mount("proc", "/proc", "proc", nosuid | MS_NOEXEC, NULL) != 0) return -1;
    if (limit_ipc(run->memory_kb) != 0) return -1;
    /* The run's user namespace is the session's: no program of it may create another. */
    if (write_text("/proc/sys/user/max_user_namespaces", "0") != 0) return -1;
    if (mount("/proc/sys", "/proc/sys", NULL, MS_BIND | MS_REC, NULL) != 0 ||
        mount(NULL, "/proc/sys", NULL, read_only | nosuid | MS_NOEXEC, NULL) != 0)
        return -1;
    if (own_proc(run) != 0) return -1;
    if (mount("tmpfs", "/tmp", "tmpfs", nosuid, options) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", nosuid, options) != 0)
        return -1;
    if (!run->writable && mount(NULL, box_dir, NULL, read_only | nosuid, NULL) != 0)
        return -1;
    return 0;
}

static void on_child(int sig) { (void)sig; }

/* The run's first process: PID 1 of its namespaces (ns), or the program's parent (plain). */
static void init(const struct run *run) {
    close(CONTROL_FD);
    prctl(PR_SET_DUMPABLE, 0); /* the program cannot ptrace us and forge the report */
    if (isolated && prepare_namespaces(run) != 0) {
        fprintf(stderr, "boxd: preparing the run's namespaces: %s\n", strerror(errno));
        _exit(1);
    }
    /* SIGCHLD stays blocked except inside ppoll, which it then interrupts: no lost wake-up. */
    sigset_t chld, open;
    sigemptyset(&chld);
    sigemptyset(&open);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    struct sigaction action = {.sa_handler = on_child};
    sigaction(SIGCHLD, &action, NULL);

    long long box_baseline = run->writable ? tmpfs_used_bytes(box_dir) : 0;
    long long cgroup_start = cgroup_cpu_us(run->cpu_usage);
    long long started = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        perror("boxd: fork");
        _exit(1);
    }
    if (pid == 0) program(run);
    setpgid(pid, pid); /* also here: the group must exist before we may kill it */
    int report = run->fds[3];
    for (int i = 0; i < 3; i++) close(run->fds[i]);
    struct pollfd cancel = {.fd = run->fds[4], .events = POLLIN};
    int diag = isolated ? socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG) : -1;

    int status = 0, exited = 0, timed_out = 0, memory_exceeded = 0, over_budget = 0;
    long long next_cpu_check = started, next_memory_check = started + MEMORY_POLL_US, peak_kb = 0;
    struct tree tree = {0, 0, 0};
    int ncpus = cpus();
    long task_budget = (long)(run->cpu_us / UNWAITED_ESCAPE_US);
    if (task_budget < MIN_TASK_BUDGET) task_budget = MIN_TASK_BUDGET; /* `seen` is empty:
                                                                        only inits fill it */
    while (!exited) {
        int st;
        pid_t reaped;
        while ((reaped = waitpid(-1, &st, WNOHANG)) > 0) {
            if (reaped == pid) {
                status = st;
                exited = 1;
            }
        }
        if (exited) break;
        long long now = now_us(), wake = started + run->wall_us;
        if (now >= wake) {
            timed_out = 1;
            break;
        }
        int check_cpu = run->cpu_us > 0 && now >= next_cpu_check;
        int check_memory = now >= next_memory_check;
        /* With a cpuacct cgroup (exact CPU) and a memory cgroup (all but sockets), /proc need
         * not be walked at all. */
        int exact_cpu = cgroup_start >= 0;
        if ((check_cpu && !exact_cpu) || (check_memory && run->watch_all)) {
            tree = scan_tree(pid);
        }
        if (check_cpu || check_memory) {
            if (check_memory) {
                long long kernel = kernel_kb(run, diag, box_baseline);
                long long pipes = tree.fds > FREE_FDS ? (tree.fds - FREE_FDS) * PIPE_KB : 0;
                long long held = kernel + (run->watch_all ? tree.rss_kb + pipes : 0);
                peak_kb = held > peak_kb ? held : peak_kb;
                if (held > run->memory_kb) {
                    memory_exceeded = 1;
                    break;
                }
                next_memory_check = now + MEMORY_POLL_US;
            }
            if (check_cpu) {
                struct rusage usage;
                long long used = reaped_usage(&usage) + tree.cpu_us;
                long long sampled = ticks_us(seen.total_ticks);
                if (exact_cpu) used = cgroup_cpu_us(run->cpu_usage) - cgroup_start;
                if ((used > sampled ? used : sampled) >= run->cpu_us) break; /* TLE */
                /* pid 1 is us, the program is 2: every pid past it is a task it created. A
                 * cpuacct cgroup counts every task exactly: no budget needed. */
                if (isolated && !exact_cpu && last_pid() - 2 > task_budget) {
                    over_budget = 1;
                    break;
                }
                /* Exact: no need to look before the tree (at most `ncpus` seconds a second)
                 * could have used up what is left. Sampled: every interval. */
                long long wait = exact_cpu ? (run->cpu_us - used) / ncpus : CPU_SAMPLE_US;
                next_cpu_check = now + (wait > CPU_SAMPLE_US ? wait : CPU_SAMPLE_US);
            }
        }
        if (run->cpu_us > 0 && next_cpu_check < wake) wake = next_cpu_check;
        if (next_memory_check < wake) wake = next_memory_check;
        long long left = wake - now;
        struct timespec wait = {left / 1000000, (left % 1000000) * 1000};
        if (ppoll(&cancel, 1, &wait, &open) > 0) break; /* the host ended the run */
    }
    long long wall = now_us() - started;

    /* Nothing outlives the program: from PID 1, -1 is every process in the namespace. */
    if (isolated) {
        kill(-1, SIGKILL);
    } else {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int st;
    pid_t reaped;
    while ((reaped = waitpid(-1, &st, 0)) > 0 || (reaped < 0 && errno == EINTR)) {
        if (reaped == pid && !exited) {
            status = st;
            exited = 1;
        }
    }
    struct rusage usage;
    long long cpu_us = reaped_usage(&usage), sampled = ticks_us(seen.total_ticks);
    /* RUSAGE_CHILDREN is exact unless the kernel reaped some process unseen; the samples
     * never count more than was used: the larger is the closer. A run past its task budget
     * is charged its whole limit, as what escaped can no longer be bounded otherwise. */
    if (sampled > cpu_us) cpu_us = sampled;
    if (cgroup_start >= 0) {
        /* Read a moment apart, the two clocks can put a trivial run a few us below zero. */
        cpu_us = cgroup_cpu_us(run->cpu_usage) - cgroup_start;
        if (cpu_us < 0) cpu_us = 0;
    }
    if (over_budget && run->cpu_us > cpu_us) cpu_us = run->cpu_us;
    if (run->watch_all && usage.ru_maxrss > peak_kb) peak_kb = usage.ru_maxrss;
    dprintf(report,
            "status=%d cpu_us=%lld maxrss_kb=%lld wall_us=%lld timed_out=%d memory_exceeded=%d\n",
            status, cpu_us, peak_kb, wall, timed_out, memory_exceeded);
    _exit(0);
}

static int parse_run(struct request *request, struct run *run) {
    /* run WALL_MS CPU_MS MEMORY_KB WATCH WRITABLE SCRATCH RLIMITS NENV ENV... ARGV... */
    if (request->nfields < 10 || request->nfds < 5) return -1;
    char **f = request->fields;
    long nenv = strtol(f[8], NULL, 10);
    if (nenv < 0 || 9 + nenv >= request->nfields) return -1;
    run->wall_us = strtoll(f[1], NULL, 10) * 1000;
    run->cpu_us = strtoll(f[2], NULL, 10) * 1000;
    run->memory_kb = strtoll(f[3], NULL, 10);
    run->watch_all = strcmp(f[4], "all") == 0;
    run->writable = strcmp(f[5], "1") == 0;
    run->scratch_bytes = f[6];
    if (strspn(f[6], "0123456789") != strlen(f[6]) || run->wall_us <= 0 || run->memory_kb <= 0)
        return -1;
    run->rlimits = f[7];
    /* env and argv become NULL-terminated arrays in place: the fields array has room. */
    static char *env[MAX_FIELDS + 1], *argv[MAX_FIELDS + 1];
    int i = 0;
    for (; i < nenv; i++) env[i] = f[9 + i];
    env[i] = NULL;
    int nargs = 0;
    for (int j = 9 + (int)nenv; j < request->nfields; j++) argv[nargs++] = f[j];
    argv[nargs] = NULL;
    run->env = env;
    run->argv = argv;
    memcpy(run->fds, request->fds, sizeof(run->fds));
    run->cpu_usage = request->nfds > 5 ? request->fds[5] : -1;
    return 0;
}

static void run_once(struct request *request) {
    struct run run;
    if (parse_run(request, &run) != 0) {
        reply("error", "malformed run request");
        return;
    }
    unsigned long flags = SIGCHLD;
    /* A cgroup namespace too: the run's cgroup is its root, "/", whatever the host calls it.
     * The network namespace is the session's (see fresh_network). */
    if (isolated)
        flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    if (isolated && ensure_meminfo(run.memory_kb) != 0) {
        reply("error", "the run's meminfo: %s", strerror(errno));
        return;
    }
    /* fork() with namespaces: the child is PID 1 of its own PID namespace. */
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid < 0) {
        reply("error", "clone: %s", strerror(errno));
        return;
    }
    if (pid == 0) init(&run);
    close_fds(request);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        reply("ok", NULL);
    } else {
        reply("error", "the run's init failed (wait status %d)", status);
    }
}

static int write_file(int box, const char *name, int source) {
    if (name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = openat(box, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (!isolated && fchown(fd, (uid_t)plain_uid, (gid_t)plain_uid) != 0) {
        close(fd);
        return -1;
    }
    char buffer[65536];
    ssize_t length;
    lseek(source, 0, SEEK_SET);
    while ((length = read(source, buffer, sizeof(buffer))) > 0) {
        for (ssize_t done = 0; done < length;) {
            ssize_t written = write(fd, buffer + done, (size_t)(length - done));
            if (written < 0) {
                close(fd);
                return -1;
            }
            done += written;
        }
    }
    close(fd);
    return length < 0 ? -1 : 0;
}

/* unshare(CLONE_NEWUSER | `more`) and become its root, our uid and gid mapped to 0. */
static int become_root(int more) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | more) != 0) return -1;
    /* Our /proc/self files belong to the host's root while we are not dumpable. */
    prctl(PR_SET_DUMPABLE, 1);
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1", uid);
    if (write_text("/proc/self/uid_map", map) != 0 ||
        write_text("/proc/self/setgroups", "deny") != 0)
        return -1;
    snprintf(map, sizeof(map), "0 %u 1", gid);
    int result = write_text("/proc/self/gid_map", map);
    prctl(PR_SET_DUMPABLE, 0);
    return result;
}

static int enter_session(const char *size_bytes) {
    if (isolated ? become_root(CLONE_NEWNS) != 0 : unshare(CLONE_NEWNS) != 0) return -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
    char options[96];
    if (isolated) {
        snprintf(options, sizeof(options), "size=%s,nr_inodes=%d,mode=0755", size_bytes,
                 BOX_INODES);
    } else {
        snprintf(options, sizeof(options), "size=%s,nr_inodes=%d,mode=0755,uid=%ld,gid=%ld",
                 size_bytes, BOX_INODES, plain_uid, plain_uid);
    }
    return mount("tmpfs", box_dir, "tmpfs", MS_NOSUID | MS_NODEV, options);
}

/* Runs share a network namespace, boxd's own, only while none of them used it. A run that
 * did leaves state that outlives it (TIME_WAIT sockets, the namespace's SNMP and device
 * counters: each a channel to the next run), so its session moves the next run to a new
 * namespace, and boxd replaces its own before the next session; most runs never touch the
 * network, and a new namespace costs a millisecond or more of CPU (its teardown too). Its
 * state is read from these files, which show everything a process without capabilities can
 * change in it. */
#define SESSION_USED_NETWORK 3
static const char *const NETWORK_STATE[] = {
    /* Every TCP connection and UDP datagram shows in these counters. Not the socket tables:
     * reading /proc/net/tcp walks the host's whole connection hash (~10 ms). */
    "/proc/net/snmp", "/proc/net/snmp6", "/proc/net/netstat", "/proc/net/dev",
};
static char network_clean[65536];
static size_t network_clean_length;

static size_t network_state(char *buffer, size_t size) {
    size_t length = 0;
    for (size_t i = 0; i < sizeof(NETWORK_STATE) / sizeof(NETWORK_STATE[0]); i++) {
        int fd = open(NETWORK_STATE[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t got;
        while (length < size && (got = read(fd, buffer + length, size - length)) > 0)
            length += (size_t)got;
        close(fd);
    }
    return length;
}

static int fresh_network(void) {
    if (unshare(CLONE_NEWNET) != 0 || loopback_up() != 0) return -1;
    network_clean_length = network_state(network_clean, sizeof(network_clean));
    return 0;
}

static int network_used(void) {
    static char now[sizeof(network_clean)];
    size_t length = network_state(now, sizeof(now));
    return length != network_clean_length || memcmp(now, network_clean, length) != 0;
}

/* One submission: serve its requests until "close" (exit 0) or a broken socket. */
static void session(struct request *request, const char *size_bytes) {
    if (strspn(size_bytes, "0123456789") != strlen(size_bytes) || enter_session(size_bytes) != 0) {
        reply("error", "starting a session: %s", strerror(errno));
        _exit(1);
    }
    int box = open(box_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (box < 0 || (isolated && write_session_proc() != 0)) {
        reply("error", "opening the box: %s", strerror(errno));
        _exit(1);
    }
    reply("ok", NULL);
    int has_run = 0, network_replaced = 0;
    while (receive(request)) {
        const char *op = request->nfields > 0 ? request->fields[0] : "";
        if (strcmp(op, "close") == 0) _exit(network_replaced ? SESSION_USED_NETWORK : 0);
        if (strcmp(op, "run") == 0) {
            has_run = 1;
            run_once(request);
            /* After the reply: the host reads the run's output meanwhile. */
            if (isolated && network_used()) {
                network_replaced = 1;
                if (fresh_network() != 0) {
                    close_fds(request);
                    _exit(1); /* the next request finds the session gone */
                }
            }
        } else if (strcmp(op, "file") == 0 && request->nfields == 2 && request->nfds == 1) {
            /* After a run, /box holds whatever the program put there. */
            if (has_run) {
                reply("error", "files can only be written before the first run");
            } else if (write_file(box, request->fields[1], request->fds[0]) != 0) {
                reply("error", "writing %s: %s", request->fields[1], strerror(errno));
            } else {
                reply("ok", NULL);
            }
        } else {
            reply("error", "unexpected request in a session");
        }
        close_fds(request);
    }
    _exit(1);
}

int main(int argc, char **argv) {
    int plain = argc == 4 && strcmp(argv[1], "plain") == 0;
    if (!plain && !(argc == 3 && strcmp(argv[1], "ns") == 0)) {
        fprintf(stderr, "usage: boxd ns BOX_DIR | boxd plain BOX_DIR UID\n");
        return 2;
    }
    isolated = !plain;
    box_dir = argv[2];
    if (plain) plain_uid = strtol(argv[3], NULL, 10);
    if (plain && plain_uid <= 0) {
        fprintf(stderr, "boxd: refusing to run programs as uid %s\n", argv[3]);
        return 2;
    }
    if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) != 0) return 2;
    prctl(PR_SET_DUMPABLE, 0);
    /* Root of a user namespace of our own (bubblewrap's left us no capabilities), so that we
     * may replace the network namespace sessions start in. */
    if (isolated && (become_root(0) != 0 || fresh_network() != 0)) {
        perror("boxd: a network namespace of its own");
        return 2;
    }
    static struct request request;
    while (receive(&request)) {
        const char *op = request.nfields > 0 ? request.fields[0] : "";
        if (strcmp(op, "open") != 0 || request.nfields != 2) {
            reply("error", "no open session for %s", op);
            close_fds(&request);
            continue;
        }
        close_fds(&request);
        pid_t pid = fork();
        if (pid < 0) {
            reply("error", "fork: %s", strerror(errno));
            continue;
        }
        if (pid == 0) session(&request, request.fields[1]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
        /* Reap whatever the session orphaned (we may be PID 1 of the box). */
        while (waitpid(-1, NULL, WNOHANG) > 0) continue;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code == 0 || code == SESSION_USED_NETWORK) {
            reply("ok", NULL); /* to "close" */
        } else if (code != 1) {
            reply("error", "the session ended (wait status %d)", status);
        }
        /* After the reply: the next session starts in a clean network namespace. */
        if (isolated && code != 0 && fresh_network() != 0) {
            perror("boxd: a new network namespace");
            return 2;
        }
    }
    return 0;
}
