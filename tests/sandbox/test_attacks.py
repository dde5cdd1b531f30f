"""The attack suite: hostile programs in the real sandbox. Each asserts the verdict and that
the worker (this process) and the host are unharmed: nothing of the program outlives its
run, host files are untouched, and the sandbox still judges the next submission correctly.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from kubejudge_worker.judge import Case, Job, Verdict, judge
from kubejudge_worker.sandbox import Sandbox, SandboxError
from sandbox_support import COMPILE_LIMITS, RUN_LIMITS, processes_with

from kubejudge.languages import LANGUAGES
from kubejudge.statuses import Status

C, PYTHON = LANGUAGES[50], LANGUAGES[71]
LIMITS = replace(RUN_LIMITS, wall_time_s=2.0)


def attack(
    sandbox: Sandbox, language_id: int, source: str, *, stdin: bytes = b"", expected: bytes | None
) -> Verdict:
    """Judge `source`, then check that no process of it survived and the sandbox still works."""
    marker = uuid.uuid4().hex  # every process of the program carries it in its argv
    job = Job(
        language=LANGUAGES[language_id],
        source=source.encode(),
        compiler_options=None,
        command_line_arguments=marker,
        limits=LIMITS,
        compile_limits=COMPILE_LIMITS,
        redirect_stderr_to_stdout=False,
        tests=[Case(stdin=stdin, expected_output=expected)],
        per_test_results=False,
    )
    verdict = judge(sandbox, job)
    assert processes_with(marker) == []
    healthy = replace(job, source=b"print(input())", language=PYTHON, tests=[Case(b"hi", b"hi")])
    assert judge(sandbox, healthy).status is Status.ACCEPTED
    return verdict


def test_infinite_loop_is_stopped_by_the_time_limit(sandbox: Sandbox) -> None:
    verdict = attack(sandbox, 71, "while True:\n    pass\n", expected=None)
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED
    # Ended at the limit plus the extra time (1.0 + 0.5), give or take a check interval.
    assert verdict.time is not None and Decimal("1.5") <= verdict.time < Decimal("1.6")


def test_the_cpu_limit_counts_the_whole_process_tree(sandbox: Sandbox) -> None:
    # Four spinning processes: each alone stays under the per-process RLIMIT_CPU (2 s), and
    # the wall limit (2 s) would let them use 4 s of CPU on two cores; the tree gets 1.5 s.
    source = "#include <unistd.h>\nint main(void) { fork(); fork(); for (;;) {} }\n"
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED
    assert verdict.message == "Time limit exceeded"
    assert verdict.time is not None and Decimal("1.5") <= verdict.time < Decimal("1.7")


def test_sleeping_past_the_wall_limit(sandbox: Sandbox) -> None:
    verdict = attack(sandbox, 71, "import time\ntime.sleep(600)\n", expected=None)
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED
    assert verdict.message == "Wall time limit exceeded"
    assert verdict.wall_time is not None and 2 <= verdict.wall_time < 3


def test_fork_bomb_hits_the_process_limit(sandbox: Sandbox) -> None:
    source = "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n"
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED


def test_thread_bomb_hits_the_process_limit(sandbox: Sandbox) -> None:
    source = (
        "import threading, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "        n += 1\n"
        "except RuntimeError:\n"
        "    print(n)\n"
    )
    verdict = attack(sandbox, 71, source, expected=None)
    assert verdict.status is Status.ACCEPTED
    assert 0 < int(verdict.stdout or b"-1") < LIMITS.max_processes


def test_memory_bomb_is_killed_and_reported(sandbox: Sandbox) -> None:
    source = "chunks = []\nwhile True:\n    chunks.append(b'x' * 10**6)\n"
    verdict = attack(sandbox, 71, source, expected=None)
    assert verdict.status in (Status.RUNTIME_ERROR_OTHER, Status.RUNTIME_ERROR_NZEC)
    assert verdict.memory_limit_exceeded
    assert verdict.memory is not None and verdict.memory >= LIMITS.memory_kb * 0.9


def test_disk_fill_hits_the_file_size_limit(sandbox: Sandbox) -> None:
    source = (
        "#include <stdio.h>\n"
        'int main(void) { FILE *f = fopen("/tmp/fill", "w"); for (;;) fputc(120, f); }\n'
    )
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.status is Status.RUNTIME_ERROR_SIGXFSZ


def test_disk_fill_across_many_files_hits_the_tmpfs_cap(sandbox: Sandbox) -> None:
    source = (
        "for i in range(10**6):\n"
        "    try:\n"
        "        with open(f'/tmp/f{i}', 'wb') as f: f.write(b'x' * 1000 * 1024)\n"
        "    except OSError as e:\n"
        "        print(e.strerror); raise SystemExit(0)\n"
    )
    # /tmp (like /dev/shm) is a tmpfs capped below the memory limit, which it is charged to.
    verdict = attack(sandbox, 71, source, expected=None)
    assert verdict.status is Status.ACCEPTED
    assert verdict.stdout == b"No space left on device\n"


def test_a_gigabyte_of_stdout_is_cut_off(sandbox: Sandbox) -> None:
    source = (
        "#include <string.h>\n#include <unistd.h>\n"
        "int main(void) { static char b[1 << 20]; memset(b, 'x', sizeof b);\n"
        "  for (int i = 0; i < 1024; i++) write(1, b, sizeof b); return 0; }\n"
    )
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.status is Status.RUNTIME_ERROR_SIGXFSZ
    assert verdict.stdout is not None
    assert len(verdict.stdout) <= LIMITS.output_limit_bytes + 64
    assert verdict.stdout.endswith(b"[output truncated]\n")


def test_no_network_not_even_the_hosts_loopback(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        source = (
            "import socket\n"
            "port = int(input())\n"
            "for host in ('127.0.0.1', '1.1.1.1', '10.96.0.1'):\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=0.5); print('reached', host)\n"
            "    except OSError:\n"
            "        print('blocked')\n"
        )
        verdict = attack(sandbox, 71, source, stdin=f"{port}\n".encode(), expected=None)
    assert verdict.stdout == b"blocked\nblocked\nblocked\n"


def test_the_workers_environment_and_files_are_out_of_reach(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("KUBEJUDGE_TEST_SECRET", canary)
    source = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "for path in ('/etc/shadow', '/etc/passwd', '/root', '/work', '/var/lib',\n"
        "             '/proc/1/environ', '/usr/local/bin', '/var/cache/kubejudge'):\n"
        "    try:\n"
        "        print(path, 'listed' if os.path.isdir(path) and os.listdir(path) else\n"
        "              'read' if open(path, 'rb').read() else 'empty')\n"
        "    except OSError as error:\n"
        "        print(path, type(error).__name__)\n"
    )
    verdict = attack(sandbox, 71, source, expected=None)
    out = (verdict.stdout or b"").decode()
    assert canary not in out
    assert out.splitlines()[0] == str(
        sorted(
            [
                "HOME",
                "LANG",
                "LC_ALL",
                "PATH",
                "PYTHONDONTWRITEBYTECODE",
                "PYTHONHASHSEED",
                "TMPDIR",
            ]
        )
    )
    assert out.splitlines()[1:] == [
        "/etc/shadow FileNotFoundError",
        "/etc/passwd FileNotFoundError",
        "/root FileNotFoundError",
        "/work FileNotFoundError",
        "/var/lib FileNotFoundError",
        "/proc/1/environ PermissionError",
        "/usr/local/bin FileNotFoundError",
        "/var/cache/kubejudge FileNotFoundError",
    ]


def test_signalling_the_parent_and_everyone_does_nothing(sandbox: Sandbox) -> None:
    source = (
        "import os, signal\n"
        "host_pid = int(input())\n"
        "for pid in (os.getppid(), 1, -1, host_pid):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL if pid != -1 else signal.SIGTERM)\n"
        "    except OSError as error:\n"
        "        print(pid, type(error).__name__)\n"
        "print('alive')\n"
    )
    verdict = attack(sandbox, 71, source, stdin=f"{os.getpid()}\n".encode(), expected=None)
    # kill(1) from inside the box is ignored (the run's init is PID 1 and handles no such
    # signal);
    # the worker's pid does not exist in the box's PID namespace.
    assert verdict.status is Status.ACCEPTED
    assert (verdict.stdout or b"").endswith(f"{os.getpid()} ProcessLookupError\nalive\n".encode())


def test_planted_symlinks_are_never_followed_by_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("untouched")
    with sandbox.box(family="python") as box:
        box.write_file("script.py", b"print(1)")
        plant = (
            "import os\n"
            f"os.symlink({str(canary)!r}, 'planted')\n"
            f"os.remove('script.py'); os.symlink({str(canary)!r}, 'script.py')\n"
            "os.symlink('/', 'root')\n"
        )
        result = box.run(["/usr/bin/python3", "-c", plant], stdin=b"", limits=LIMITS, writable=True)
        assert result.succeeded, result.stderr
        with pytest.raises(SandboxError):
            box.write_file("planted", b"overwritten")
        # The program itself cannot reach the host file through its link either.
        read = box.run(["/usr/bin/python3", "script.py"], stdin=b"", limits=LIMITS)
        assert read.exit_code != 0 and b"No such file" in read.stderr
    assert canary.read_text() == "untouched"


def test_the_work_dir_is_read_only_while_tests_run(sandbox: Sandbox) -> None:
    source = "try:\n    open('/box/evil', 'w')\nexcept OSError as e:\n    print(type(e).__name__)\n"
    verdict = attack(sandbox, 71, source, expected=b"OSError")
    assert verdict.stdout == b"OSError\n"


def test_the_program_holds_no_descriptor_but_stdin_stdout_and_stderr(sandbox: Sandbox) -> None:
    # Not the report pipe (it could forge its own verdict), not bwrap's.
    source = "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))\n"
    verdict = attack(sandbox, 71, source, expected=None)
    assert verdict.stdout == b"[0, 1, 2, 3]\n"  # 3: listdir's own handle on the directory


def test_no_new_user_namespaces(sandbox: Sandbox) -> None:
    source = (
        "#define _GNU_SOURCE\n#include <sched.h>\n#include <stdio.h>\n"
        'int main(void) { puts(unshare(CLONE_NEWUSER) == 0 ? "created" : "refused"); }\n'
    )
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.stdout == b"refused\n"


# Leaves a file in /tmp and /dev/shm and a SysV shared memory segment, or (probe) looks for
# them: one box server serves submission after submission.
STATE = """#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>
int main(void) {
    char mode[16] = "";
    if (scanf("%15s", mode) != 1) return 2;
    if (strcmp(mode, "plant") == 0) {
        fclose(fopen("/tmp/left", "w"));
        fclose(fopen("/dev/shm/left", "w"));
        if (shmget(4242, 4096, IPC_CREAT | 0666) < 0) return 1;
        puts("planted");
        return 0;
    }
    printf("%d %d %d\\n", access("/tmp/left", F_OK) == 0, access("/dev/shm/left", F_OK) == 0,
           shmget(4242, 0, 0) >= 0);
    return 0;
}
"""


def test_nothing_carries_over_from_one_submission_to_the_next(sandbox: Sandbox) -> None:
    started = sandbox.servers_started
    planted = attack(sandbox, 50, STATE, stdin=b"plant", expected=b"planted")
    assert planted.status is Status.ACCEPTED, planted.stderr
    probe = attack(sandbox, 50, STATE, stdin=b"probe", expected=None)
    assert probe.stdout == b"0 0 0\n"
    assert sandbox.servers_started == started  # the same box server judged them all


def test_kernel_interfaces_no_program_needs_are_refused(sandbox: Sandbox) -> None:
    # Keyrings (a channel between runs), BPF, perf, userfaultfd, io_uring: ENOSYS. getpid is
    # the control: the filter lets everything else through.
    source = (
        "#include <errno.h>\n#include <stdio.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n"
        "int main(void) {\n"
        "    long calls[] = {SYS_add_key, SYS_request_key, SYS_keyctl, SYS_bpf,\n"
        "                    SYS_perf_event_open, SYS_userfaultfd, SYS_io_uring_setup,\n"
        "                    SYS_io_uring_enter, SYS_io_uring_register, SYS_getpid};\n"
        "    for (int i = 0; i < 10; i++) {\n"
        "        errno = 0;\n"
        "        long result = syscall(calls[i], 0, 0, 0, 0, 0);\n"
        '        printf("%s ", result == -1 && errno == ENOSYS ? "refused" : "passed");\n'
        "    }\n"
        "}\n"
    )
    verdict = attack(sandbox, 50, source, expected=None)
    assert verdict.stdout == b"refused " * 9 + b"passed "
