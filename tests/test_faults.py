"""Fault injection on `entrypoint run` and the atomic writer (issue 8, "Faults").

Each test runs the runtime as PID 1 of a fresh PID namespace and breaks
something under it: SIGKILL in the middle of a large render, a full disk, a
child that closes its output or ignores every signal, a fork bomb against a
pids limit, a crash loop.  See docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mounts
from tests.pid1_helpers import (
    Runtime,
    base_env,
    children_of,
    needs_ns,
    prog,
    read_lines,
    remove_cgroup,
    run_ns,
    vm_rss_kib,
    wait_until,
)

pytestmark = [needs_ns, pytest.mark.timeout(120)]


N_TEMPLATES = 200
FILLER = b"x" * 127 + b"\n"  # 256 KiB of it per template, around two substitutions


def temps(root: Path) -> list[Path]:
    return sorted(root.rglob(".entrypoint-*"))


def rendered(generation: str, i: int) -> bytes:
    return f"gen={generation} file={i}\n".encode() + FILLER * 2048 + f"end={generation}\n".encode()


def allowed(attempt: int) -> set[bytes]:
    """Generations a destination may hold after kill number ``attempt``."""
    return {f"gen=g{g}".encode() for g in range(attempt + 1)}


def make_templates(tdir: Path, count: int) -> None:
    tdir.mkdir()
    body = FILLER * 2048
    for i in range(count):
        (tdir / f"f{i}.conf.tmpl").write_bytes(b"gen=${GEN} file=%d\n" % i + body + b"end=${GEN}\n")


def render_env(tdir: Path, out: Path, generation: str) -> dict[str, str]:
    return base_env(ENTRYPOINT_TEMPLATES_DIR=str(tdir), ENTRYPOINT_OUTPUT_DIR=str(out),
                    ENTRYPOINT_HOOKS_DIR=str(tdir / "no-hooks"), GEN=generation)


# -- SIGKILL in the middle of a large render ----------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(150)
def test_sigkill_mid_render_leaves_old_or_new_content(tmp_path: Path) -> None:
    """200 templates of 256 KiB; the runtime and its render child are SIGKILLed at a random
    moment, again and again: each destination is always one whole generation."""
    tdir, out, marker = tmp_path / "templates", tmp_path / "out", tmp_path / "started"
    make_templates(tdir, N_TEMPLATES)
    out.mkdir()
    begin = time.monotonic()
    first = run_ns(["--", "true"], env=render_env(tdir, out, "g0"), timeout=60)
    assert first.returncode == 0, first.stderr
    full_run = time.monotonic() - begin
    rng = random.Random(8)
    kills_in_render = leftovers_seen = attempt = 0
    generations_seen: set[str] = set()
    # A kill only counts if the render child was still alive just before it; keep going
    # (bounded) until 8 did, whatever the machine's speed.
    while kills_in_render < 8:
        attempt += 1
        assert attempt <= 40, f"only {kills_in_render} of {attempt - 1} kills landed while rendering"
        env = render_env(tdir, out, f"g{attempt}")
        with Runtime(["--", "touch", str(marker)], env=env) as rt:
            render = wait_until(lambda: children_of(rt.pid), 10, "the render child")[0]
            time.sleep(rng.uniform(0.0, full_run))
            kills_in_render += bool(children_of(rt.pid)) and not marker.exists()
            for pid in (render, rt.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            rt.wait(10)
        leftovers_seen += bool(temps(out))
        for i in range(N_TEMPLATES):
            data = (out / f"f{i}.conf").read_bytes()
            assert data.split(b" ", 1)[0] in allowed(attempt), f"f{i}.conf: unexpected generation"
            assert data == rendered(data.split(b" ", 1)[0][4:].decode(), i), \
                f"f{i}.conf is partial after kill {attempt}: {len(data)} bytes"
            generations_seen.add(data.split(b" ", 1)[0].decode())
        marker.unlink(missing_ok=True)
    final = run_ns(["--", "touch", str(marker)], env=render_env(tdir, out, "final"), timeout=60)
    assert final.returncode == 0, final.stderr
    assert marker.exists()
    assert temps(out) == []
    assert all((out / f"f{i}.conf").read_bytes() == rendered("final", i) for i in range(N_TEMPLATES))
    print(f"kills during render {kills_in_render}/{attempt}, with temp leftovers {leftovers_seen}, "
          f"generations seen {sorted(generations_seen)}")


# -- a full disk ---------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounts.small_tmpfs(tmp_path, "1m") as mnt:
        yield mnt


def test_full_disk_during_render_exits_78_and_keeps_old_files(tmp_path: Path, small_tmpfs: Path) -> None:
    tdir, marker = tmp_path / "templates", tmp_path / "started"
    make_templates(tdir, 8)  # 8 x 256 KiB > 1 MiB
    for i in range(8):
        (small_tmpfs / f"f{i}.conf").write_bytes(b"old %d\n" % i)
    done = run_ns(["--", "touch", str(marker)], env=render_env(tdir, small_tmpfs, "new"), timeout=60)
    assert done.returncode == 78, done.stderr
    assert b"No space left on device" in done.stderr
    assert done.stderr.count(b"[entrypoint] error:") >= 1
    assert b"Traceback" not in done.stderr
    assert not marker.exists()
    old = [(small_tmpfs / f"f{i}.conf").read_bytes() for i in range(8)]
    assert old == [b"old %d\n" % i for i in range(8)]
    assert temps(small_tmpfs) == []


# -- badly behaved children --------------------------------------------------------------------

def test_child_closing_stdio_with_runtime_stderr_a_closed_pipe(tmp_path: Path) -> None:
    """The child closes fds 0-2, the runtime's stderr is a pipe nobody reads (EPIPE on every
    log line, -v makes many): the runtime still forwards, stops, and passes the code on."""
    ready = tmp_path / "ready"
    args = ["-v", "--grace-period", "3", "--", *prog("stubborn.py"), str(ready), "--close-stdio",
            "--exit-on-term", "7"]
    with Runtime(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as rt:
        assert rt.proc.stderr is not None and rt.proc.stdout is not None
        rt.proc.stderr.close()
        rt.proc.stdout.close()
        wait_until(lambda: "ready" in read_lines(ready), 15, "the child to start")
        rt.signal(signal.SIGUSR1)  # forwarded, and logged to the closed pipe
        wait_until(lambda: f"got {int(signal.SIGUSR1)}" in read_lines(ready), 10, "USR1 forwarded")
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 7
        assert time.monotonic() - begin < 3 + 2
    lines = read_lines(ready)
    assert f"got {int(signal.SIGPIPE)}" not in lines, "the runtime's own EPIPE reached the child"
    assert lines[-1] == "term"


def test_child_ignoring_every_signal_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    with Runtime(["--grace-period", "1", "--", *prog("stubborn.py"), str(ready), "--ignore-all"]) as rt:
        wait_until(lambda: "ready" in read_lines(ready), 15, "the child to start")
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGINT):
            rt.signal(signum)
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        code = rt.wait()
        elapsed = time.monotonic() - begin
    assert code == 128 + signal.SIGKILL
    assert 0.9 <= elapsed < 1 + 2


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    root = Path("/sys/fs/cgroup/pids")
    if not (root / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids controller")
    group = root / f"entrypoint-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "pids.max").write_text("64")
    except OSError as exc:
        pytest.skip(f"cannot make a pids cgroup: {exc}")
    try:
        yield group
    finally:
        if (error := remove_cgroup(group)) is not None:
            raise error


def test_fork_bomb_at_the_pids_limit_is_stopped_within_grace(tmp_path: Path, pids_cgroup: Path) -> None:
    """Every process of the bomb ignores every signal and forks on; the cgroup's pids.max=64
    is the bound.  The runtime (outside that cgroup) still answers and kills the whole tree."""
    ready = tmp_path / "ready"
    with Runtime(["--grace-period", "1", "--", *prog("forkbomb.py"), str(pids_cgroup), str(ready)]) as rt:
        wait_until(lambda: "ready" in read_lines(ready), 30, "the pids limit to be reached")
        assert int((pids_cgroup / "pids.current").read_text()) >= 60
        rss = vm_rss_kib(rt.pid)
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        code = rt.wait()
        elapsed = time.monotonic() - begin
    assert code == 128 + signal.SIGKILL
    assert elapsed < 1 + 2
    assert int((pids_cgroup / "pids.current").read_text()) == 0
    assert rss < 16 * 1024


# -- a crash loop -------------------------------------------------------------------------------

RESTART_LINE = re.compile(r"restart (\d+) in ([0-9.e-]+) s")


def test_crash_loop_backoff_is_bounded_and_gives_up(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    done = run_ns(["-v", "--restart", "always", "--restart-delay", "0.01", "--restart-delay-max", "0.08",
                   "--restart-max", "8", "--", "/bin/sh", "-c", f'echo run >> "{counter}"; exit 3'],
                  timeout=30)
    assert done.returncode == 3
    delays = [float(m.group(2)) for m in RESTART_LINE.finditer(done.stderr.decode())]
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.08, 0.08], done.stderr
    assert b"giving up after 8 restart(s)" in done.stderr
    assert len(read_lines(counter)) == 9


def fd_count(pid: int) -> tuple[int, int]:
    """(other fds, pipes).  A spawn holds its exec-report pipe (two ends at most) until the
    child execs, so pipes are bounded rather than compared; stdio here is files, not pipes."""
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass  # closed while we looked
    pipes = sum(target.startswith("pipe:") for target in fds)
    return len(fds) - pipes, pipes


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_crash_loop_1000_restarts_without_resource_growth(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    log = tmp_path / "stderr"
    args = ["--restart", "always", "--restart-delay", "0.001", "--restart-delay-max", "0.002",
            "--restart-max", "0", "--", "/bin/sh", "-c", f'echo run >> "{counter}"; exit 3']
    with log.open("wb") as err, Runtime(args, stdout=err, stderr=err) as rt:
        wait_until(lambda: len(read_lines(counter)) >= 10, 30, "10 runs")
        early = (vm_rss_kib(rt.pid), fd_count(rt.pid))
        wait_until(lambda: len(read_lines(counter)) >= 1000, 120, "1000 runs", interval=0.05)
        late = (vm_rss_kib(rt.pid), fd_count(rt.pid))
        rt.signal(signal.SIGTERM)
        assert rt.wait() in (3, 143)
    restarts = [int(m.group(1)) for m in RESTART_LINE.finditer(log.read_text())]
    assert restarts[:3] == [1, 2, 3] and len(restarts) >= 999
    assert late[1][0] == early[1][0] and late[1][1] <= 2, f"fds {early[1]} -> {late[1]}"
    assert late[0] - early[0] < 1024, f"VmRSS {early[0]} -> {late[0]} KiB"
    print(f"VmRSS {early[0]} -> {late[0]} KiB, fds {early[1]} -> {late[1]}, runs {len(read_lines(counter))}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
