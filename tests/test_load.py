"""Load on the PID-1 runtime (issue 8, "Load"): a signal storm during an orphan burst.

The runtime is PID 1 of a fresh PID namespace.  Its child counts the signals
it gets while it makes 10,000 orphans that only PID 1 can reap; 2,000
signals are sent to PID 1 meanwhile.  See docs/reliability.md.
"""

from __future__ import annotations

import ast
import signal
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import (
    Runtime,
    alive,
    descendants,
    fd_total,
    needs_ns,
    prog,
    read_lines,
    state_of,
    vm_rss_kib,
    wait_until,
)

pytestmark = [needs_ns, pytest.mark.timeout(120)]

ORPHANS = 10_000
STORM = 2_000
KINDS = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGWINCH, signal.SIGRTMIN + 1]


def zombies_below(pid: int) -> list[int]:
    return [p for p in descendants(pid) if state_of(p) == "zombie"]


def progress(ready: Path, prefix: str) -> bool:
    return any(line.startswith(prefix) for line in read_lines(ready))


def last_counts(ready: Path) -> dict[int, int]:
    lines = [line for line in read_lines(ready) if line.startswith("counts ")]
    return ast.literal_eval(lines[-1][7:]) if lines else {}


def rt_complete(rt: Runtime, ready: Path) -> dict[int, int] | None:
    """Ask the child for its counts; them, once every real-time signal has come through."""
    asked = len([line for line in read_lines(ready) if line.startswith("counts ")])
    rt.signal(signal.SIGALRM)
    wait_until(lambda: len([ln for ln in read_lines(ready) if ln.startswith("counts ")]) > asked, 10,
               "the child's counts")
    counts = last_counts(ready)
    return counts if counts.get(int(signal.SIGRTMIN + 1)) == STORM // len(KINDS) else None


@pytest.mark.slow
def test_signal_storm_during_10000_orphans(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    with Runtime(["--", *prog("orphan_storm.py"), str(ORPHANS), str(ready)]) as rt:
        wait_until(lambda: "ready" in read_lines(ready), 15, "the child to start")
        rss_before = vm_rss_kib(rt.pid)
        fds_before = fd_total(rt.pid)
        # Spread the storm over the burst: a batch of 100 signals, then a look at the child.
        sent_during_burst = 0
        for i in range(STORM):
            rt.signal(KINDS[i % len(KINDS)])
            if i % 100 == 99:
                sent_during_burst += 100 * (not progress(ready, "made"))
                time.sleep(0.02)
        assert alive(rt.pid)
        wait_until(lambda: progress(ready, "made"), 90, "the orphans to be made", interval=0.05)
        wait_until(lambda: progress(ready, "clean") or progress(ready, "left"), 60, "the namespace to empty",
                   interval=0.05)
        assert "clean" in read_lines(ready), read_lines(ready)[-1]
        wait_until(lambda: not zombies_below(rt.pid), 10, "no zombie left")
        assert alive(rt.pid)
        # Real-time signals queue: every one of the 400 arrives (standard ones may coalesce).
        # The kernel hands out lower numbers first, so ALRM asks for the counts until then.
        counts = wait_until(lambda: rt_complete(rt, ready), 30, "400 real-time signals forwarded",
                            interval=0.05)
        rss_after = vm_rss_kib(rt.pid)
        fds_after = fd_total(rt.pid)
        rt.signal(signal.SIGTERM)
        assert rt.wait(30) == 0
    assert all(counts.get(int(s), 0) >= 1 for s in KINDS), counts
    assert sent_during_burst >= 500, "the storm was over before the orphan burst got going"
    assert fds_after == fds_before
    assert rss_after - rss_before < 2048, f"VmRSS {rss_before} -> {rss_after} KiB"
    print(f"VmRSS {rss_before} -> {rss_after} KiB; {sent_during_burst} signals sent during the burst; "
          f"counts {counts}")
