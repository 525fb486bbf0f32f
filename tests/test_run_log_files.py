"""`run --log-file`: the app's log files copied to run's stdout, as PID 1 of a fresh PID namespace.

The test itself plays the app's logger (and logrotate): it writes to the followed
files and polls the runtime's standard output (a file) for the lines.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, base_env, needs_ns, run_ns, status_kib, wait_until

pytestmark = [needs_ns, pytest.mark.timeout(60)]


class Follow:
    """A runtime following ``names`` in ``tmp`` while its app sleeps; stdout goes to a file."""

    def __init__(self, tmp: Path, *names: str, extra: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.stdout = tmp / "stdout"
        self.logs = [tmp / n for n in names]
        args = [arg for log in self.logs for arg in ("--log-file", str(log))]
        self._f = self.stdout.open("wb")
        self.rt = Runtime([*args, *extra, "--state-file", str(tmp / "state.json"), "--", "sleep", "1000"],
                          stdout=self._f)
        wait_until(lambda: b'"running"' in _read(tmp / "state.json"), 15, "the app to start")

    def out(self) -> bytes:
        return _read(self.stdout)

    def expect(self, data: bytes, what: str) -> None:
        wait_until(lambda: self.out() == data, 15, f"{what}: stdout == {data[-60:]!r}")

    def stop(self) -> int:
        self.rt.signal(signal.SIGTERM)
        code = self.rt.wait()
        self._f.close()
        return code

    def __enter__(self) -> Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rt.__exit__()
        self._f.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_a_file_that_appears_later_is_followed_from_its_start(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        append(fw.logs[0], b"one\ntwo\n")
        fw.expect(b"one\ntwo\n", "first lines")
        append(fw.logs[0], b"three\n")
        fw.expect(b"one\ntwo\nthree\n", "an appended line")
        assert fw.stop() == 143
    assert fw.out() == b"one\ntwo\nthree\n"


def test_an_existing_file_is_followed_from_its_end(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_bytes(b"from a previous run\n")
    with Follow(tmp_path, "app.log") as fw:
        append(fw.logs[0], b"new\n")
        fw.expect(b"new\n", "only the new line")
        fw.stop()


def test_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    with Follow(tmp_path, "a.log", "b.log") as fw:
        a, b = fw.logs
        append(a, b"hel")
        append(b, b"marker\n")  # b's event makes the follower read a as well
        fw.expect(b"marker\n", "the marker without the partial line")
        append(a, b"lo\n")
        fw.expect(b"marker\nhello\n", "the completed line, once")
        fw.stop()


def test_rename_and_create_rotation(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        log = fw.logs[0]
        writer = log.open("ab", buffering=0)
        writer.write(b"1 before\n")
        fw.expect(b"1 before\n", "before rotation")
        log.rename(tmp_path / "app.log.1")  # logrotate's default: rename, create, signal the app
        writer.write(b"2 old file, app not reopened yet\n")
        fw.expect(b"1 before\n2 old file, app not reopened yet\n", "a write to the renamed file")
        append(log, b"3 new file\n")
        fw.expect(b"1 before\n2 old file, app not reopened yet\n3 new file\n", "the new file")
        writer.close()
        (tmp_path / "app.log.1").unlink()
        append(log, b"4\n")
        fw.expect(b"1 before\n2 old file, app not reopened yet\n3 new file\n4\n", "after the old is gone")
        log.rename(tmp_path / "app.log.1")  # a second rotation
        append(log, b"5\n")
        fw.expect(b"1 before\n2 old file, app not reopened yet\n3 new file\n4\n5\n", "second rotation")
        fw.stop()


def test_delete_and_recreate(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        log = fw.logs[0]
        append(log, b"a\n")
        fw.expect(b"a\n", "first")
        log.unlink()
        append(log, b"b\n")
        fw.expect(b"a\nb\n", "recreated")
        fw.stop()


def test_copytruncate_rotation(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        log = fw.logs[0]
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # the app's O_APPEND log
        try:
            os.write(fd, b"1\n2\n")
            fw.expect(b"1\n2\n", "before")
            shutil.copyfile(log, tmp_path / "app.log.1")  # logrotate copytruncate
            os.truncate(log, 0)
            os.write(fd, b"3\n")
            fw.expect(b"1\n2\n3\n", "after the truncation")
            os.write(fd, b"4\n")
            fw.expect(b"1\n2\n3\n4\n", "and on")
        finally:
            os.close(fd)
        fw.stop()


def test_very_long_lines_pass_whole_with_bounded_memory(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        before = status_kib(fw.rt.pid, "VmRSS")
        long_line = b"x" * (8 * 1024 * 1024) + b"\n"
        with fw.logs[0].open("ab") as f:
            for _ in range(4):
                f.write(long_line)
                f.flush()
        wait_until(lambda: fw.stdout.stat().st_size >= 4 * len(long_line), 30, "32 MiB of long lines")
        append(fw.logs[0], b"short\n")
        fw.expect(long_line * 4 + b"short\n", "every byte, in order")
        grown = status_kib(fw.rt.pid, "VmHWM") - before
        assert grown < 2 * 1024, f"PID 1 peak grew by {grown} KiB while copying 8 MiB lines"
        fw.stop()


def test_the_last_lines_before_the_app_exits_are_not_lost(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    app = f'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done >> {log}; printf tail >> {log}'
    done = run_ns(["--log-file", str(log), "--", "/bin/sh", "-c", app])
    assert done.returncode == 0, done.stderr
    expected = b"".join(f"line {i}\n".encode() for i in range(2000)) + b"tail\n"
    assert done.stdout == expected


def test_environment_variable_lists_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    env = base_env(ENTRYPOINT_LOG_FILE=f"{a}, {b}")
    done = run_ns(["--", "/bin/sh", "-c", f"echo A >> {a}; echo B >> {b}"], env=env)
    assert done.returncode == 0
    assert sorted(done.stdout.splitlines()) == [b"A", b"B"]


def test_a_log_path_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    bad = tmp_path / "no" / "app.log"
    done = run_ns(["--log-file", str(bad), "--", "touch", str(marker)])
    assert done.returncode == 78
    assert done.stderr.decode().splitlines() == [
        f"[entrypoint] error: --log-file {bad}: directory {bad.parent} does not exist"]
    assert not marker.exists()


def test_a_partial_line_is_completed_across_a_rename(tmp_path: Path) -> None:
    with Follow(tmp_path, "app.log") as fw:
        log = fw.logs[0]
        writer = log.open("ab", buffering=0)
        writer.write(b"whole\npar")
        fw.expect(b"whole\n", "the complete line only")
        log.rename(tmp_path / "app.log.1")
        append(log, b"new file\n")
        fw.expect(b"whole\nnew file\n", "the new file while the old one's line is unfinished")
        writer.write(b"tial\n")  # the app finishes its line in the renamed file
        writer.close()
        fw.expect(b"whole\nnew file\npartial\n", "the completed line, once")
        fw.stop()


def test_unfinished_lines_are_flushed_at_exit(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    app = f"printf 'no newline a' >> {a}; printf 'x\\nno newline b' >> {b}"
    done = run_ns(["--log-file", str(a), "--log-file", str(b), "--", "/bin/sh", "-c", app])
    assert done.returncode == 0
    assert done.stdout == b"x\nno newline a\nno newline b\n"
