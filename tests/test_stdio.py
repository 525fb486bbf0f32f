"""The standard streams of every command, as real processes: a full disk, a reader that went away,
fds closed before the start.

What is expected is what GNU envsubst and coreutils do: a write error on
standard output is one line and exit 1; a closed pipe ends the command
quietly with 141 (128 + SIGPIPE); a closed fd 0/1/2 of ``run`` becomes
/dev/null for the app, and PID 1 still exits with the app's code.  Output
must also arrive whole, since the executable skips interpreter finalisation
after flushing (:func:`entrypoint.cli.console`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.pid1_helpers import base_env

ENTRYPOINT = [sys.executable, "-m", "entrypoint"]
MANY = {f"VAR_{i:05d}": f"value {i} " + "x" * 40 for i in range(4000)}  # ~250 KB of env output


#: one invocation per command that prints a result on standard output; {big} and {ok} are templates
CASES: dict[str, list[str]] = {
    "env": ["env", "--format", "shell"],
    "env json": ["env", "--format", "json"],
    "render to stdout": ["render", "{big}"],
    "render --variables": ["render", "--variables", "{ok}"],
    "check": ["check", "{ok}"],
    "check --format json": ["check", "--format", "json", "{ok}"],
    "--version": ["--version"],
    "--help": ["--help"],
    "render --help": ["render", "--help"],
    "run --help": ["run", "--help"],
}


def command(tmp_path: Path, case: str) -> list[str]:
    big, ok = tmp_path / "big.tmpl", tmp_path / "ok.tmpl"
    big.write_text("".join(f"line {i} ${{VAR_00001}}\n" for i in range(20000)))  # ~1 MB rendered
    ok.write_text("port ${VAR_00002}\n")
    return [word.format(big=big, ok=ok) for word in CASES[case]]


Stream = int | IO[bytes] | None


def run_with(argv: list[str], *, stdout: Stream = None, stderr: Stream = None,
             preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ENTRYPOINT, *argv], env=base_env(**MANY), stdin=subprocess.DEVNULL,
                          stdout=stdout, stderr=stderr, preexec_fn=preexec, timeout=60)


@pytest.mark.parametrize("case", CASES)
def test_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, case: str) -> None:
    with open("/dev/full", "wb") as full:
        done = run_with(command(tmp_path, case), stdout=full, stderr=subprocess.PIPE)
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1, lines
    assert lines == ["[entrypoint] error: write error on standard output: No space left on device"]


@pytest.mark.parametrize("case", CASES)
def test_a_reader_gone_ends_quietly_with_141(tmp_path: Path, case: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write gets EPIPE
    try:
        done = run_with(command(tmp_path, case), stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")


@pytest.mark.parametrize("case", ["env", "--version"])
def test_stdout_closed_at_start_is_a_write_error(tmp_path: Path, case: str) -> None:
    """As GNU: `envsubst --version >&-` says "write error: Bad file descriptor", exit 1."""
    done = run_with(command(tmp_path, case), preexec=lambda: os.close(1), stderr=subprocess.PIPE)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "[entrypoint] error: write error on standard output: Bad file descriptor"]


def test_output_through_a_pipe_arrives_whole() -> None:
    """No finalisation after the flush must not lose a byte of a large result."""
    done = run_with(["env", "--format", "json"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert {k: v for k, v in got.items() if k.startswith("VAR_")} == MANY


def test_check_with_stderr_closed_keeps_its_exit_code(tmp_path: Path) -> None:
    """The problem report goes to a closed fd 2; the verdict (78) must not turn into a traceback's 1."""
    bad = tmp_path / "bad.tmpl"
    bad.write_text("port ${NOT_SET_ANYWHERE}\n")
    done = run_with(["check", str(bad)], preexec=lambda: os.close(2), stdout=subprocess.PIPE)
    assert done.returncode == 78


def _fd_targets(report: Path) -> str:
    """A shell app that records where its fds 0, 1, 2 point, then exits 7."""
    return f'exec 3>{report}; for fd in 0 1 2; do echo "$fd $(readlink /proc/$$/fd/$fd)" >&3; done; exit 7'


@pytest.mark.parametrize("closed", [(1,), (2,), (1, 2), (0, 1, 2)])
def test_run_with_closed_standard_fds_gives_the_app_dev_null_and_its_exit_code(
        tmp_path: Path, closed: tuple[int, ...]) -> None:
    report = tmp_path / "fds.txt"
    tmpl, dest = tmp_path / "a.tmpl", tmp_path / "a.conf"
    tmpl.write_text("value ${VAR_00003}\n")

    def close_them() -> None:
        for fd in closed:
            os.close(fd)

    done = subprocess.run(
        [*ENTRYPOINT, "run", "--template", f"{tmpl}:{dest}", "--", "sh", "-c", _fd_targets(report)],
        env=base_env(VAR_00003="three"), preexec_fn=close_them, timeout=60,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert done.returncode == 7
    assert dest.read_text() == "value three\n"  # the render fork ran with the same fds
    targets = dict(line.split(" ", 1) for line in report.read_text().splitlines())
    for fd in closed:
        assert targets[str(fd)] == "/dev/null", targets


@pytest.mark.parametrize("stdout_kind", ["reader gone", "full disk"])
def test_check_watch_ends_when_its_output_is_gone(tmp_path: Path, stdout_kind: str) -> None:
    """A watch whose results can reach nobody ends (141 / one line and 1) instead of watching on."""
    pytest.importorskip("watchdog")
    ok = tmp_path / "ok.tmpl"
    ok.write_text("port ${VAR_00002}\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    target = write_end if stdout_kind == "reader gone" else os.open("/dev/full", os.O_WRONLY)
    try:
        done = run_with(["check", "--watch", str(ok)], stdout=target, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
        if target != write_end:
            os.close(target)
    errors = [line for line in done.stderr.decode().splitlines() if "error" in line]
    if stdout_kind == "reader gone":
        assert (done.returncode, errors) == (141, [])
    else:
        assert done.returncode == 1
        assert errors == ["[entrypoint] error: write error on standard output: No space left on device"]
