/* boxinit: the trusted first process of every sandbox run.
 *
 * Inside bubblewrap it runs as PID 1 of the box's PID namespace (bwrap --as-pid-1), so every
 * process the program creates is its descendant or is re-parented to it. It
 *   1. applies the run's rlimits in the child it forks (not to itself), then execs the command;
 *   2. waits, reaping orphans, until the command exits or the wall-clock limit passes;
 *   3. kills everything left in the box (kill(-1) from PID 1 reaches the whole namespace, or the
 *      process group outside a box), reaps it all, so RUSAGE_CHILDREN covers the whole tree;
 *   4. writes one line to the report fd: the command's raw wait status, CPU time, peak RSS,
 *      wall time, whether the wall limit fired (and, before that, `exec_errno=N` if exec failed).
 * It makes itself non-dumpable first, so the program (same uid) cannot ptrace it or reach its
 * file descriptors through /proc and forge the report.
 *
 * Written in C rather than Python because it runs once per test case and must cost well under
 * a millisecond; Python would add ~15 ms of interpreter start-up to every run.
 *
 * usage: boxinit REPORT_FD WALL_MS UID DIR RLIMITS -- COMMAND [ARGS...]
 *   UID      -1 to keep the current uid (bubblewrap already set it), else setuid/setgid to it
 *   DIR      working directory of the command, or - to keep the current one
 *   RLIMITS  comma-separated NAME=VALUE, NAME one of cpu,as,data,nproc,fsize,nofile,stack,core
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const struct {
    const char *name;
    int resource;
} NAMES[] = {
    {"cpu", RLIMIT_CPU},     {"as", RLIMIT_AS},         {"data", RLIMIT_DATA},
    {"nproc", RLIMIT_NPROC}, {"fsize", RLIMIT_FSIZE},   {"nofile", RLIMIT_NOFILE},
    {"stack", RLIMIT_STACK}, {"core", RLIMIT_CORE},
};

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int apply_rlimits(char *spec) {
    for (char *item = strtok(spec, ","); item != NULL; item = strtok(NULL, ",")) {
        char *eq = strchr(item, '=');
        if (eq == NULL) return -1;
        *eq = '\0';
        int found = 0;
        for (size_t i = 0; i < sizeof(NAMES) / sizeof(NAMES[0]); i++) {
            if (strcmp(item, NAMES[i].name) == 0) {
                rlim_t value = (rlim_t)strtoull(eq + 1, NULL, 10);
                struct rlimit limit = {value, value};
                if (setrlimit(NAMES[i].resource, &limit) != 0) return -1;
                found = 1;
            }
        }
        if (!found) return -1;
    }
    return 0;
}

static void child(int report_fd, long uid, const char *dir, char *rlimits, char **command) {
    setpgid(0, 0);
    /* The program gets stdin, stdout and stderr, nothing else: every other descriptor we
     * inherited (the report pipe, bwrap's own) closes on exec. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (strcmp(dir, "-") != 0 && chdir(dir) != 0) {
        perror("boxinit: chdir");
        _exit(127);
    }
    if (uid >= 0) {
        gid_t gid = (gid_t)uid;
        if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            perror("boxinit: dropping privileges");
            _exit(127);
        }
    }
    /* Dispositions the worker inherited (Python ignores SIGPIPE and SIGXFSZ) must not reach
     * the program: a write past RLIMIT_FSIZE has to kill it, as in Judge0. */
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (apply_rlimits(rlimits) != 0) {
        perror("boxinit: setrlimit");
        _exit(127);
    }
    execv(command[0], command);
    /* Judge0 reports a failed exec as Exec Format Error. Told on the report fd, which the
     * program never holds, so a program cannot fake it. */
    int error = errno;
    dprintf(report_fd, "exec_errno=%d\n", error);
    fprintf(stderr, "execve(%s): %s\n", command[0], strerror(error));
    _exit(126);
}

int main(int argc, char **argv) {
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        fprintf(stderr, "usage: boxinit REPORT_FD WALL_MS UID DIR RLIMITS -- COMMAND...\n");
        return 2;
    }
    int report_fd = atoi(argv[1]);
    long long wall_us = atoll(argv[2]) * 1000;
    long uid = atol(argv[3]);
    int pid1 = getpid() == 1;
    prctl(PR_SET_DUMPABLE, 0);

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    long long started = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        perror("boxinit: fork");
        return 2;
    }
    if (pid == 0) child(report_fd, uid, argv[4], argv[5], argv + 7);

    int status = 0, exited = 0, timed_out = 0;
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
        long long left = started + wall_us - now_us();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct timespec wait = {left / 1000000, (left % 1000000) * 1000};
        sigtimedwait(&chld, NULL, &wait);
    }
    long long wall = now_us() - started;

    /* Nothing outlives the command: from PID 1, -1 means every process in the namespace. */
    if (pid1) {
        kill(-1, SIGKILL);
    } else {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int st;
    pid_t reaped;
    while ((reaped = waitpid(-1, &st, 0)) > 0 || (reaped < 0 && errno == EINTR)) {
        if (reaped == pid && !exited) status = st;
    }

    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    long long cpu_us = (long long)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
                       (long long)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
    dprintf(report_fd, "status=%d cpu_us=%lld maxrss_kb=%ld wall_us=%lld timed_out=%d\n", status,
            cpu_us, usage.ru_maxrss, wall, timed_out);
    return 0;
}
