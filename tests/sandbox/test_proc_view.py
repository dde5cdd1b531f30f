"""The box sees only what is its own in /proc: a machine the size of its memory limit, no
host CPU or load counters (a timing channel between slots), its cgroup as "/", and no host
path of the worker's in its mount table."""

from __future__ import annotations

from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import RUN_LIMITS, job

from kubejudge.statuses import Status

PROBE = """
import os
meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
print(meminfo["MemTotal"].strip())
print(open("/proc/loadavg").read().strip())
cpu_lines = [line.split()[1:] for line in open("/proc/stat") if line.startswith("cpu")]
print(sum(int(n) for numbers in cpu_lines for n in numbers))
print(open("/proc/uptime").read().strip())
print(all(line.rstrip().endswith(":/") for line in open("/proc/self/cgroup")))
print(open("/proc/self/mountinfo").read())
"""


def test_proc_shows_the_run_not_the_host(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, job(71, PROBE))
    assert verdict.status is Status.ACCEPTED, verdict
    lines = (verdict.stdout or b"").decode().splitlines()
    assert lines[0] == f"{RUN_LIMITS.memory_kb} kB"
    assert lines[1] == "0.00 0.00 0.00 1/1 1"
    assert lines[2] == "0"  # no CPU counters of the host's
    assert lines[3] == "0.00 0.00"
    assert lines[4] == "True", verdict.stdout  # e.g. not memory:/kubejudge-worker-PID/box-0
    mountinfo = "\n".join(lines[5:])
    assert str(sandbox.config.root) not in mountinfo  # boxd's host path
    assert "kubejudge-worker" not in mountinfo


def test_node_sizes_itself_by_the_runs_limit(sandbox: Sandbox) -> None:
    source = "console.log(require('os').totalmem())"
    verdict = judge(sandbox, job(63, source, expected=str(RUN_LIMITS.memory_kb * 1024).encode()))
    assert verdict.status is Status.ACCEPTED, verdict
