"""Finish hooks (`--finish-dir`, `--finish-timeout`) as PID 1 of a fresh PID namespace."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, needs_ns, read_lines, run_ns, wait_until

pytestmark = [needs_ns, pytest.mark.timeout(60)]


def hook(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_version_order_exit_code_in_env_failures_kept(tmp_path: Path) -> None:
    fin, out = tmp_path / "finish", tmp_path / "out"
    record = f'echo "$(basename "$0") $ENTRYPOINT_EXIT_CODE" >> {out}'
    for name in ("10-a.sh", "9-b.sh", "2-c.sh", "1.0~rc1.sh"):
        hook(fin, name, record)
    hook(fin, "5-fails.sh", f"{record}; exit 5")
    hook(fin, "6-off.sh", record, mode=0o644)  # not executable: skipped
    hook(fin, "7-env.envsh", record)  # finish hooks are *.sh only
    hook(fin, "8-notes.txt", record)
    done = run_ns(["--finish-dir", str(fin), "--", "/bin/sh", "-c", "exit 3"])
    assert done.returncode == 3
    assert read_lines(out) == ["1.0~rc1.sh 3", "2-c.sh 3", "5-fails.sh 3", "9-b.sh 3", "10-a.sh 3"]
    assert b"finish hook" in done.stderr and b"5-fails.sh failed with exit code 5" in done.stderr


@pytest.mark.parametrize(("command", "code"), [(["/bin/sh", "-c", "kill -TERM $$"], 143),
                                               (["/no/such/app"], 127), (["true"], 0)])
def test_exit_code_variable_is_what_run_exits_with(tmp_path: Path, command: list[str], code: int) -> None:
    fin, out = tmp_path / "finish", tmp_path / "out"
    hook(fin, "10-code.sh", f'echo "$ENTRYPOINT_EXIT_CODE" > {out}')
    done = run_ns(["--finish-dir", str(fin), "--", *command])
    assert done.returncode == code
    assert read_lines(out) == [str(code)]


def test_they_run_after_the_whole_tree_is_gone(tmp_path: Path) -> None:
    fin, out, pidfile = tmp_path / "finish", tmp_path / "out", tmp_path / "pid"
    hook(fin, "10-check.sh", f'if kill -0 "$(cat {pidfile})" 2>/dev/null; then echo alive; else echo gone; fi'
                             f' > {out}')
    app = f"sleep 1000 & echo $! > {pidfile}; exit 0"
    done = run_ns(["--grace-period", "10", "--finish-dir", str(fin), "--", "/bin/sh", "-c", app])
    assert done.returncode == 0
    assert read_lines(out) == ["gone"]


def test_a_hook_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    fin, out, pids = tmp_path / "finish", tmp_path / "out", tmp_path / "pids"
    hook(fin, "10-hangs.sh", f"sleep 1000 & echo $! >> {pids}; echo $$ >> {pids}; sleep 1000")
    hook(fin, "20-after.sh", f"echo after >> {out}")
    done = run_ns(["--finish-dir", str(fin), "--finish-timeout", "0.5", "--", "/bin/sh", "-c", "exit 4"])
    assert done.returncode == 4
    assert b"10-hangs.sh did not finish within 0.5 s: killed" in done.stderr, done.stderr
    assert read_lines(out) == ["after"]
    assert len(read_lines(pids)) == 2


def test_a_stop_signal_during_them_does_not_hold_the_container(tmp_path: Path) -> None:
    """TERM while a hook hangs: the hook is still ended by its own timeout, no grace period is
    added for what a hook left behind, and the exit code stays the app's."""
    fin, started = tmp_path / "finish", tmp_path / "started"
    hook(fin, "10-bg.sh", "sleep 1000 &")  # a background leftover: no 30 s grace for it
    hook(fin, "20-hangs.sh", f"touch {started}; sleep 1000")
    args = ["--grace-period", "30", "--finish-dir", str(fin), "--finish-timeout", "2",
            "--", "/bin/sh", "-c", "exit 6"]
    with Runtime(args) as rt:
        wait_until(started.exists, 15, "the finish hook to start")
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        rt.signal(signal.SIGTERM)
        _, err = rt.communicate(timeout=20)
        assert rt.proc.returncode == 6
        assert time.monotonic() - begin < 2 + 8  # the hook's timeout, not the 30 s grace period
    assert b"20-hangs.sh did not finish within 2 s: killed" in err, err


def test_a_finish_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    fin, marker = tmp_path / "finish", tmp_path / "started"
    fin.write_text("")
    done = run_ns(["--finish-dir", str(fin), "--", "touch", str(marker)])
    assert done.returncode == 78
    lines = done.stderr.decode().splitlines()
    assert lines == [f"[entrypoint] error: --finish-dir {fin}: not a directory"]
    assert not marker.exists()


def test_missing_finish_dir_is_nothing_to_do(tmp_path: Path) -> None:
    done = run_ns(["-v", "--finish-dir", str(tmp_path / "none"), "--", "true"])
    assert done.returncode == 0 and b"finish" not in done.stderr
