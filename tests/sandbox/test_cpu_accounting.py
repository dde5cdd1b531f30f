"""A run's CPU time counts every process of it, whatever they do with their signals.

A parent that ignores SIGCHLD (or sets SA_NOCLDWAIT) has its children reaped by the kernel,
and their CPU time reaches no one's child counters. With a cpuacct cgroup per box, boxd
reads the box's CPU time from it: exact. Without one (every pod), boxd samples every
process's own CPU time every 5 ms and counts the larger of that and what was waited for:
such a child escapes with at most 15 ms (one interval plus /proc's 10 ms tick), and a run may
create only `limit / 15 ms` tasks (at least 64) before it is charged its whole limit, so at
most its limit again can escape in all. Every test runs in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import RUN_LIMITS, fresh_sandbox, job

from kubejudge.statuses import Status

# Room on the wall clock, so a loaded machine cannot turn the CPU verdict into a wall one.
LIMITS = replace(RUN_LIMITS, wall_time_s=15.0)

# CHILDREN children, two at a time, each spinning for BURN_MS of CPU time, none waited for.
SPREAD = r"""
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static void burn(long ms) {
    clock_t end = clock() + ms * (CLOCKS_PER_SEC / 1000);
    while (clock() < end) {}
}
int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = SIG_IGN;
    if (NOCLDWAIT) { action.sa_handler = SIG_DFL; action.sa_flags = SA_NOCLDWAIT; }
    sigaction(SIGCHLD, &action, NULL);
    for (int i = 0; i < CHILDREN; i += 2) {
        int done[2];  /* read() sees EOF once both children have exited: no wait() needed */
        char byte;
        if (pipe(done) != 0) return 1;
        if (fork() == 0) { burn(BURN_MS); _exit(0); }
        if (fork() == 0) { burn(BURN_MS); _exit(0); }
        close(done[1]);
        while (read(done[0], &byte, 1) > 0) {}
        close(done[0]);
    }
    puts("done");
    return 0;
}
"""


@pytest.fixture(scope="module", params=["cgroup", "watched"])
def box(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    cgroups = request.param == "cgroup"
    with fresh_sandbox("kubejudge-cpu-", use_cgroups=cgroups) as sandbox:
        if cgroups and (sandbox.cgroups is None or sandbox.cgroups.cpu_parent is None):
            pytest.skip("no writable cgroup v1 cpuacct controller here")
        yield sandbox


def spread(*, children: int, burn_ms: int, nocldwait: bool) -> str:
    defines = f"#define CHILDREN {children}\n#define BURN_MS {burn_ms}\n"
    return defines + f"#define NOCLDWAIT {int(nocldwait)}\n" + SPREAD


@pytest.mark.parametrize("nocldwait", [False, True], ids=["sig_ign", "sa_nocldwait"])
def test_children_the_kernel_reaps_still_count(box: Sandbox, nocldwait: bool) -> None:
    # 60 children of 50 ms: 3 s of CPU against a 1.5 s limit (1.0 + 0.5 extra).
    source = spread(children=60, burn_ms=50, nocldwait=nocldwait)
    verdict = judge(box, job(50, source, expected=b"done", limits=LIMITS))
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED, verdict
    assert verdict.time is not None and verdict.time >= Decimal("1.5")


def test_children_shorter_than_a_sample_hit_the_task_budget(box: Sandbox) -> None:
    # 1000 children of 3 ms, each too short to be sampled: 3 s of CPU, but past 100 tasks
    # (1.5 s / 15 ms) the run is charged its whole limit.
    source = spread(children=1000, burn_ms=3, nocldwait=False)
    verdict = judge(box, job(50, source, expected=b"done", limits=LIMITS))
    assert verdict.status is Status.TIME_LIMIT_EXCEEDED, verdict
    assert verdict.time is not None and verdict.time >= Decimal("1.5")


def test_waited_children_within_the_budget_are_counted_exactly(box: Sandbox) -> None:
    source = (
        "#include <stdio.h>\n#include <sys/wait.h>\n#include <unistd.h>\n"
        "int main(void) {\n"
        "    for (int i = 0; i < 50; i++) if (fork() == 0) _exit(0); else wait(NULL);\n"
        '    puts("done");\n'
        "}\n"
    )
    verdict = judge(box, job(50, source, expected=b"done", limits=LIMITS))
    assert verdict.status is Status.ACCEPTED, verdict
    assert verdict.time is not None and verdict.time < Decimal("0.5")


def test_a_cpuacct_cgroup_counts_even_children_too_short_to_sample(box: Sandbox) -> None:
    if box.cgroups is None:
        pytest.skip("watched mode: such children escape, within the bound above")
    # 60 children of 5 ms, below the task budget: 0.3 s, none of it sampled.
    source = spread(children=60, burn_ms=5, nocldwait=False)
    verdict = judge(box, job(50, source, expected=b"done", limits=LIMITS))
    assert verdict.status is Status.ACCEPTED, verdict
    assert verdict.time is not None and verdict.time >= Decimal("0.28")
