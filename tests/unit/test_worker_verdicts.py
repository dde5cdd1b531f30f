"""The worker's pure parts: Judge0's status derivation, output comparison, limits, bwrap argv."""

from __future__ import annotations

import signal

import pytest
from kubejudge_worker.sandbox import Limits, RunResult
from kubejudge_worker.sandbox.bwrap import ServerSpec, server_argv
from kubejudge_worker.sandbox.process import RunRequest
from kubejudge_worker.verdicts import outputs_match, run_status

from kubejudge.statuses import Status

LIMITS = Limits(
    cpu_time_s=1.0,
    cpu_extra_time_s=0.5,
    wall_time_s=3.0,
    memory_kb=128_000,
    stack_kb=64_000,
    max_processes=60,
    max_file_size_kb=1024,
    output_limit_bytes=1 << 20,
)


def result(**overrides: object) -> RunResult:
    values: dict = dict(
        exit_code=0, exit_signal=None, stdout=b"42\n", stderr=b"", time_s=0.01,
        wall_time_s=0.02, memory_kb=1000,
    )  # fmt: skip
    values.update(overrides)
    return RunResult(**values)


def killed(signum: int, **overrides: object) -> RunResult:
    return result(exit_code=None, exit_signal=signum, **overrides)


@pytest.mark.parametrize(
    ("expected", "actual", "match"),
    [
        (b"42", b"42\n", True),
        (b"1 2\n3", b"1 2   \n3\t\n\n\n", True),
        (b"a\n\nb", b"a\nb", False),
        (b"  42", b"42", False),  # leading whitespace counts
        (b"42\r\n", b"42", True),  # \r is trailing whitespace
        (b"", b"\n \n", True),
        (b"41", b"42", False),
    ],
)
def test_outputs_match_like_judge0(expected: bytes, actual: bytes, match: bool) -> None:
    assert outputs_match(expected, actual) is match


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (result(), Status.ACCEPTED),
        (result(stdout=b"41\n"), Status.WRONG_ANSWER),
        (killed(signal.SIGXCPU, time_s=1.2), Status.TIME_LIMIT_EXCEEDED),
        (killed(signal.SIGKILL, wall_timed_out=True), Status.TIME_LIMIT_EXCEEDED),
        (killed(signal.SIGKILL, output_limit_exceeded=True), Status.RUNTIME_ERROR_SIGXFSZ),
        (result(exit_signal=signal.SIGSEGV, exit_code=None), Status.RUNTIME_ERROR_SIGSEGV),
        (result(exit_signal=signal.SIGXFSZ, exit_code=None), Status.RUNTIME_ERROR_SIGXFSZ),
        (result(exit_signal=signal.SIGFPE, exit_code=None), Status.RUNTIME_ERROR_SIGFPE),
        (result(exit_signal=signal.SIGABRT, exit_code=None), Status.RUNTIME_ERROR_SIGABRT),
        (result(exit_signal=signal.SIGKILL, exit_code=None), Status.RUNTIME_ERROR_OTHER),
        (result(exit_code=1), Status.RUNTIME_ERROR_NZEC),
        (result(exec_error="Exec format error", exit_code=126), Status.EXEC_FORMAT_ERROR),
        (result(box_error="bwrap: boom"), Status.INTERNAL_ERROR),
    ],
)  # fmt: skip
def test_run_status_follows_judge0s_order(run: RunResult, status: Status) -> None:
    assert run_status(run, limits=LIMITS, expected=b"42") is status


def test_no_expected_output_means_any_clean_run_is_accepted() -> None:
    assert run_status(result(stdout=b"anything"), limits=LIMITS, expected=None) is Status.ACCEPTED


def test_rlimits_leave_memory_to_the_cgroup_or_boxd() -> None:
    rlimits = LIMITS.rlimits()
    assert "data" not in rlimits and "as" not in rlimits
    assert rlimits["cpu"] == 2  # 1.0 + 0.5 extra, rounded up to whole seconds
    assert rlimits["nproc"] == 62  # the session and the run's init count too
    assert rlimits["core"] == 0
    assert rlimits["fsize"] == 1024 * 1024


def test_box_server_argv_isolates_everything_and_drops_to_an_unprivileged_uid() -> None:
    spec = ServerSpec(bwrap="/usr/bin/bwrap", setpriv="/usr/bin/setpriv", boxd="/srv/boxd")
    argv = server_argv(spec, 65534)
    assert argv[:6] == [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--pdeathsig=KILL",  # bwrap itself dies with the worker thread that started it
        "--",
    ]
    for flag in (
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session", "--clearenv", "--as-pid-1",
    ):  # fmt: skip
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in argv
    assert "--bind" not in argv  # nothing of the host is writable in the box
    assert argv[argv.index("--remount-ro") + 1] == "/dev"
    # boxd is copied in from an fd: its host path (/srv/boxd) appears nowhere in the box.
    assert "/srv/boxd" not in argv
    assert argv[argv.index("--ro-bind-data") - 2 : argv.index("--ro-bind-data") + 3] == [
        "--perms", "0555", "--ro-bind-data", "6", "/.boxd"
    ]  # fmt: skip
    assert argv[-3:] == ["/.boxd", "ns", "/box"]
    # Every language's toolchain is in every box: one server serves them all.
    assert argv[argv.index("/usr/local/go") - 1 : argv.index("/usr/local/go") + 2] == [
        "--ro-bind-try",
        "/usr/local/go",
        "/usr/local/go",
    ]
    assert "/opt/java" in argv


def test_a_run_request_keeps_every_word_of_the_user_a_field_of_its_own() -> None:
    request = RunRequest(
        command=["./main", "; rm -rf /", "a b"], env={"PATH": "/usr/bin"}, stdin=b"",
        limits=LIMITS, watch_memory=True, writable=False, merge_stderr=False,
        scratch_bytes=1 << 20,
    )  # fmt: skip
    fields = request.fields()
    assert fields[:7] == [b"run", b"3000", b"1500", b"128000", b"all", b"0", b"1048576"]
    assert b"nproc=62" in fields[7].split(b",")
    assert fields[8:] == [b"1", b"PATH=/usr/bin", b"./main", b"; rm -rf /", b"a b"]
