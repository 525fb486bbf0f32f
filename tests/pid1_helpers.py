"""Shared helpers for the PID-1 runtime tests: namespaces, pid discovery, polling.

The runtime runs as PID 1 of a fresh PID namespace (``unshare --pid --fork
--mount-proc``) and is signalled from outside, by its host pid, which is the
one child of the ``unshare`` process.  Process facts (children, state, RSS,
context switches) come from psutil, the measuring tool of the project; only
what psutil does not offer on Linux (the VmHWM peak) is read from /proc.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

PROGS = Path(__file__).parent / "progs"
REPO = Path(__file__).parent.parent


def prog(name: str) -> list[str]:
    return [sys.executable, str(PROGS / name)]


# scripts/test runs the PID-1 suite a second time against the bundle (docs/bundle.md):
# ENTRYPOINT_TEST_EXE=/.../opt/entrypoint/bin/entrypoint.
TEST_EXE = os.environ.get("ENTRYPOINT_TEST_EXE", "")


def entrypoint_exe() -> list[str]:
    """The product's command: ``python -m entrypoint``, or the executable ENTRYPOINT_TEST_EXE names."""
    return [TEST_EXE] if TEST_EXE else [sys.executable, "-m", "entrypoint"]


def entrypoint_cmd(*args: str) -> list[str]:
    return [*entrypoint_exe(), "run", *args]


def _namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              timeout=10, capture_output=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


NAMESPACES = _namespaces_work()
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="needs root and unshare --pid")


def base_env(**extra: str) -> dict[str, str]:
    """A small, known environment: nothing of the caller's leaks in (ENTRYPOINT_*, ...)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           # the host's /run/entrypoint is not the tests' to write: a test that wants the state
           # file names it (or passes --state-file)
           "ENTRYPOINT_STATE_FILE": ""}
    env.update(extra)
    return env


def start_markers(tmp_path: Path, template_text: str = "x=${X:-1}\n") -> tuple[list[str], Path, Path]:
    """`run` options for a template and a hook that each leave a mark if start-up gets that far:
    the bad-input tests assert that neither mark exists (nothing rendered, nothing run)."""
    template = tmp_path / "app.conf.template"
    template.write_text(template_text)
    dest = tmp_path / "app.conf"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    (hooks / "10-mark.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "10-mark.sh").chmod(0o755)
    return ["--template", f"{template}:{dest}", "--hooks-dir", str(hooks)], dest, marker


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for an app or a --wait target)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(port: int) -> dict[str, object] | None:
    """The JSON an example app answers on ``http://127.0.0.1:PORT/``, or None while it does not."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
            report: dict[str, object] = json.loads(resp.read())
            return report
    except OSError:
        return None


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def remove_cgroup(group: Path, timeout: float = 10) -> OSError | None:
    """rmdir a cgroup, retried until its last process has left (the kernel refuses while one is
    still exiting); the last error if it is still there after ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            group.rmdir()
            return None
        except OSError as exc:
            if time.monotonic() > deadline:
                return exc
            time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (zombies included), or [] when it is gone."""
    try:
        return sorted(child.pid for child in psutil.Process(pid).children())
    except psutil.NoSuchProcess:
        return []


def descendants(pid: int) -> list[int]:
    """Everything below ``pid`` (zombies included)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def state_of(pid: int) -> str | None:
    """psutil's status word ("sleeping", "zombie", ...), or None when the pid is gone."""
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None
    return status


def alive(pid: int) -> bool:
    return state_of(pid) not in (None, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def ctx_switches(pid: int) -> int:
    """Voluntary plus involuntary context switches so far: a process's wake-ups."""
    switches = psutil.Process(pid).num_ctx_switches()
    return int(switches.voluntary + switches.involuntary)


def fd_total(pid: int) -> int:
    return int(psutil.Process(pid).num_fds())


def status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status: VmHWM, the peak RSS so far, which psutil does not report."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def vm_rss_kib(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss // 1024)


class Runtime:
    """``entrypoint run`` as PID 1 of a new PID namespace, started by ``unshare``."""

    def __init__(self, args: list[str], *, stdout: IO[bytes] | int | None = subprocess.PIPE,
                 stderr: IO[bytes] | int | None = subprocess.PIPE, stdin: IO[bytes] | int | None = None,
                 env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 namespace: bool = True) -> None:
        cmd = entrypoint_cmd(*args)
        if namespace:
            cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
        self.namespace = namespace
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr,
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     env=env or base_env(), cwd=cwd)
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        """Host pid of the runtime (the child of ``unshare``)."""
        if self._pid is None:
            if not self.namespace:
                self._pid = self.proc.pid
            else:
                kids = wait_until(lambda: children_of(self.proc.pid), 10, "the runtime to start")
                self._pid = kids[0]
        return self._pid

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"runtime did not exit within {timeout} s")

    def communicate(self, timeout: float = 20, data: bytes | None = None) -> tuple[bytes, bytes]:
        try:
            out, err = self.proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"runtime did not exit within {timeout} s")
        return out or b"", err or b""

    def kill(self) -> None:
        """Last-resort cleanup: SIGKILL of our PID 1 takes the whole namespace with it."""
        if self.proc.poll() is None:
            targets = [self.proc.pid]
            if self.namespace:
                targets = children_of(self.proc.pid) if self._pid is None else [self._pid]
            for pid in targets:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def run_ns(args: list[str], timeout: float = 20, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """Run the runtime to completion in a namespace; returns code and output."""
    with Runtime(args, **kw) as rt:
        out, err = rt.communicate(timeout)
        return subprocess.CompletedProcess(args, rt.proc.returncode, out, err)
