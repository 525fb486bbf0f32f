"""`entrypoint run` when it is not PID 1: a child subreaper that still reaps and stops the tree.

Here the kernel does not kill leftovers when the runtime exits (it would, for a
namespace's PID 1), so these tests see whether the runtime itself did.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import (
    Runtime,
    alive,
    base_env,
    children_of,
    entrypoint_exe,
    prog,
    read_lines,
    state_of,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def pids_from(path: Path) -> list[int]:
    return [int(line.split()[0]) for line in read_lines(path) if line != "ready"]


def test_orphans_are_reparented_to_the_runtime_and_reaped(tmp_path: Path) -> None:
    report = tmp_path / "orphan"
    with Runtime(["--", *prog("tree.py"), "orphan", str(report)], namespace=False) as rt:
        wait_until(lambda: read_lines(report), 10, "the orphan's report")
        orphan, new_parent = (int(x) for x in read_lines(report)[0].split())
        assert new_parent == rt.pid
        assert rt.wait() == 0
    assert state_of(orphan) is None  # reaped by the runtime, not left as a zombie


def test_grace_period_kills_the_whole_tree_even_outside_the_session(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    args = ["--grace-period", "1", "--", *prog("tree.py"), "stubborn", str(pidfile)]
    with Runtime(args, namespace=False) as rt:
        wait_until(lambda: "ready" in read_lines(pidfile), 10, "the tree to start")
        tree = pids_from(pidfile)
        assert len(tree) == 3
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 128 + signal.SIGKILL
        assert time.monotonic() - begin < 1 + 2
    assert not [pid for pid in tree if alive(pid)]


def test_leftovers_get_term_when_the_main_child_exits(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    with Runtime(["--grace-period", "30", "--", *prog("tree.py"), "leftover", str(pidfile)],
                 namespace=False) as rt:
        assert rt.wait(timeout=10) == 0  # well before the 30 s grace: the sleep took the TERM
    (sleeper,) = pids_from(pidfile)
    assert not alive(sleeper)


def test_stop_while_the_tree_is_busy_ends_as_soon_as_it_is_gone(tmp_path: Path) -> None:
    with Runtime(["--grace-period", "30", "--", "sh", "-c", "sleep 1000 & sleep 1000 & wait"],
                 namespace=False) as rt:
        wait_until(lambda: len(children_of(children_of(rt.pid)[0]) if children_of(rt.pid) else []) == 2,
                   10, "the shell's two sleeps")
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=10) == 143
        assert time.monotonic() - begin < 10


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pty")
def test_child_takes_the_terminal_foreground() -> None:
    """On a tty the child's own process group becomes the foreground one (job control, Ctrl-C)."""
    show = "echo pgid=$(ps -o pgid= -p $$ | tr -d \" \") tpgid=$(ps -o tpgid= -p $$ | tr -d \" \") pid=$$"
    inner = " ".join([*entrypoint_exe(), "run", "--", "sh", "-c", f"'{show}'"])
    done = subprocess.run(["script", "-qec", inner, "/dev/null"], capture_output=True, timeout=20,
                          env=base_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    fields = dict(item.split("=") for item in done.stdout.decode().split() if "=" in item)
    assert fields["pgid"] == fields["tpgid"] == fields["pid"]
