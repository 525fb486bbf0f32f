"""Service output framing: real pipes, real writer processes, the loop's way of waiting.

The reader here does what PID 1's loop does: the signals blocked, ``sigtimedwait`` on the output
signal (and SIGIO, the overflow fallback) with a deadline, :meth:`ServiceOutput.drain` on each.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.supervise.services import output
from entrypoint.supervise.services.output import LIMIT, OUTPUT_SIGNAL, LineFramer, ServiceOutput
from tests.pid1_helpers import PROGS

pytestmark = pytest.mark.timeout(60)

WRITER = str(PROGS / "line_writer.py")


@pytest.fixture
def mask() -> Iterator[None]:
    """Block the output signal and SIGIO as PID 1 does; afterwards take what is left, restore."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {OUTPUT_SIGNAL, signal.SIGIO})
    yield
    while signal.sigtimedwait({OUTPUT_SIGNAL, signal.SIGIO}, 0) is not None:
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Sink:
    """A file standing for PID 1's fd 1 or fd 2 (a file never blocks a multi-megabyte test)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def lines(self) -> list[bytes]:
        data = self.path.read_bytes()
        assert not data or data.endswith(b"\n")
        return data.splitlines()

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[tuple[Sink, Sink]]:
    out, err = Sink(tmp_path / "stdout"), Sink(tmp_path / "stderr")
    yield out, err
    out.close()
    err.close()


def start(args: list[str], ends: tuple[int, int]) -> subprocess.Popen[bytes]:
    """A writer with the service's pipes as its stdout and stderr; PID 1 closes its copies at once."""
    proc = subprocess.Popen([sys.executable, WRITER, *args], stdin=subprocess.DEVNULL, stdout=ends[0],
                            stderr=ends[1])
    os.close(ends[0])
    os.close(ends[1])
    return proc


def pump(outputs: ServiceOutput, done: Callable[[], bool], timeout: float = 30.0,
         watch: Callable[[], None] | None = None) -> int:
    """The loop's reading: wait for the signal with a deadline, drain; until ``done()``.  Wake-ups."""
    deadline = time.monotonic() + timeout
    wakeups = 0
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("timed out waiting for the service output")
        if signal.sigtimedwait({OUTPUT_SIGNAL, signal.SIGIO}, min(left, 1.0)) is not None:
            outputs.drain()
            wakeups += 1
            if watch is not None:
                watch()
    return wakeups


def reap(procs: list[subprocess.Popen[bytes]]) -> Callable[[], bool]:
    return lambda: all(p.poll() is not None for p in procs)


# -- LineFramer alone ---------------------------------------------------------------------------------


def test_framer_whole_lines_prefixed(sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    framer = LineFramer("web", out.fd)
    framer.feed(b"one\ntw")
    assert out.lines() == [b"web | one"]
    framer.feed(b"o\n\nthree")
    framer.feed(b"")
    assert out.lines() == [b"web | one", b"web | two", b"web | "]
    assert framer.pending == len("three")
    framer.close()
    framer.close()  # nothing held back any more: no second line
    assert out.lines() == [b"web | one", b"web | two", b"web | ", b"web | three"]


def test_framer_flushes_a_long_line_in_limit_pieces(sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    framer = LineFramer("big", out.fd, limit=10)
    framer.feed(b"a" * 25 + b"\nshort\n")
    assert out.lines() == [b"big | " + b"a" * 10, b"big | " + b"a" * 10, b"big | aaaaa", b"big | short"]


def test_a_line_of_exactly_the_limit_is_one_line(sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    framer = LineFramer("s", out.fd, limit=8)
    framer.feed(b"12345678\n")
    framer.feed(b"1234")
    framer.feed(b"5678")
    assert framer.pending == 8
    framer.feed(b"\nx")
    framer.close()
    assert out.lines() == [b"s | 12345678", b"s | 12345678", b"s | x"]


def test_framer_buffer_never_exceeds_the_limit(sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    rng = random.Random(21)
    framer = LineFramer("s", out.fd, limit=LIMIT)
    sent = bytearray()
    while len(sent) < 5 * 1024 * 1024:  # 5 MiB, one newline now and then, in odd-sized reads
        chunk = bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(1, 97)))
        chunk = chunk * rng.randint(1, 3000)
        if rng.random() < 0.1:
            chunk += b"\n"
        framer.feed(chunk)
        sent += chunk
        assert framer.pending <= LIMIT
    framer.close()
    got = out.lines()
    assert all(line.startswith(b"s | ") and len(line) <= LIMIT + 4 for line in got)
    payload = b"".join(line[4:] for line in got)
    assert payload == bytes(sent).replace(b"\n", b"")  # every byte, in order, none added
    assert max(len(line) for line in got) == LIMIT + 4


def test_each_write_is_whole_lines_within_pipe_buf_or_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                 sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    writes: list[bytes] = []
    real_write = os.write

    def recording(fd: int, data: bytes | memoryview) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", recording)
    framer = LineFramer("w", out.fd)
    lines = [b"%d " % i + b"z" * (i * 37 % 1500) for i in range(300)] + [b"L" * 9000]
    framer.feed(b"\n".join(lines) + b"\n")
    assert b"".join(writes) == b"".join(b"w | " + line + b"\n" for line in lines)
    assert len(writes) < len(lines) // 3  # batched: far fewer writes than lines
    for data in writes:
        assert data.endswith(b"\n") and data.startswith(b"w | ")
        assert len(data) <= output.PIPE_BUF or data.count(b"\n") == 1


def reference(stream: bytes, limit: int, prefix: bytes) -> list[bytes]:
    """What the framing means, written the slow obvious way: every line (and the tail at EOF) in
    pieces of at most ``limit`` bytes, each prefixed."""
    *lines, tail = stream.split(b"\n")
    framed = []
    for line in [*lines, tail] if tail else lines:
        framed += [prefix + line[i:i + limit] for i in range(0, len(line), limit)] or [prefix]
    return framed


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(chunks=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"\n")), max_size=30),
       limit=st.integers(1, 120), newlines=st.integers(0, 3))
def test_framing_matches_the_obvious_definition(tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes],
                                                limit: int, newlines: int) -> None:
    sink = Sink(tmp_path_factory.mktemp("frame") / "out")
    framer = LineFramer("n", sink.fd, limit=limit)
    chunks = [chunk + b"\n" * newlines for chunk in chunks]  # whole-line runs too, for the fast path
    for chunk in chunks:
        framer.feed(chunk)
        assert framer.pending <= limit
    framer.close()
    assert sink.lines() == reference(b"".join(chunks), limit, b"n | ")
    sink.close()


def test_a_name_that_is_not_ascii(sinks: tuple[Sink, Sink]) -> None:
    out, _ = sinks
    framer = LineFramer("café", out.fd)
    framer.feed(b"ok\n")
    assert out.lines() == ["café | ok".encode()]


# -- ServiceOutput with real pipes and processes ------------------------------------------------------


def test_concurrent_services_writing_half_lines_never_mix(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    count = 60
    procs = [start(["fragments", f"svc{i}", str(count)], outputs.pipes(f"svc{i}")) for i in range(4)]
    held: list[int] = []
    pump(outputs, lambda: reap(procs)() and not outputs.readers,
         watch=lambda: held.extend(pipe.framer.pending for pipe in outputs.readers))
    assert max(held) > 0  # half lines were read and held back, not just whole ones
    assert all(p.returncode == 0 for p in procs)
    for sink, stream in ((out, "out"), (err, "err")):
        got = sink.lines()
        assert len(got) == 4 * count
        for i in range(4):
            mine = [line for line in got if line.startswith(f"svc{i} | ".encode())]
            expected = [f"svc{i} | ".encode() + _line(f"svc{i}", stream, n, 40 + n % 50)
                        for n in range(count)]
            assert mine == expected  # whole, in order, and on its own stream only


def _line(tag: str, stream: str, number: int, size: int) -> bytes:
    head = f"{tag} {stream} {number} {size} "
    return (head + "y" * max(0, size - len(head))).encode()


def test_several_processes_of_one_service_share_its_pipe(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    w_out, w_err = outputs.pipes("web")
    procs = [subprocess.Popen([sys.executable, WRITER, "whole", f"p{k}", "200"], stdin=subprocess.DEVNULL,
                              stdout=w_out, stderr=w_err) for k in range(4)]
    os.close(w_out)
    os.close(w_err)
    pump(outputs, lambda: reap(procs)() and not outputs.readers)
    got = out.lines()
    assert len(got) == 800 and err.lines() == []
    for line in got:
        assert line.startswith(b"web | p")
        _, stream, _, size, _ = line[6:].split(b" ", 4)
        assert len(line) - 6 == int(size) and stream == b"out"  # a line cut or mixed would not match
    for k in range(4):
        numbers = [int(line.split(b" ")[4]) for line in got if line.startswith(f"web | p{k} ".encode())]
        assert numbers == list(range(200))


def test_a_multi_megabyte_line_goes_out_in_limit_pieces(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    size = 3 * 1024 * 1024 + 123
    procs = [start(["big", str(size)], outputs.pipes("flood"))]
    held: list[int] = []
    pump(outputs, lambda: reap(procs)() and not outputs.readers,
         watch=lambda: held.extend(pipe.framer.pending for pipe in outputs.readers))
    assert held and max(held) <= LIMIT  # bounded memory: never more than LIMIT held back
    got = out.lines()
    assert [len(line) for line in got] == [LIMIT + 8] * (size // LIMIT) + [size % LIMIT + 8]
    assert all(line == b"flood | " + b"x" * (len(line) - 8) for line in got)
    assert err.lines() == []


def test_a_partial_line_at_eof_gets_its_newline(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    procs = [start(["partial", "last words"], outputs.pipes("db"))]
    pump(outputs, lambda: reap(procs)() and not outputs.readers)
    assert out.lines() == [b"db | last words"]


def test_quiet_pipes_raise_no_signal(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    w_out, w_err = outputs.pipes("idle")
    assert signal.sigtimedwait({OUTPUT_SIGNAL, signal.SIGIO}, 0) is None  # made, not written: nothing
    os.write(w_out, b"hello\n")
    assert signal.sigtimedwait({OUTPUT_SIGNAL}, 5) is not None  # a write: one signal, no polling
    outputs.drain()
    assert out.lines() == [b"idle | hello"]
    assert signal.sigtimedwait({OUTPUT_SIGNAL, signal.SIGIO}, 0) is None
    os.close(w_out)
    os.close(w_err)
    assert signal.sigtimedwait({OUTPUT_SIGNAL}, 5) is not None  # EOF wakes the reader too
    outputs.drain()
    assert outputs.readers == []


def test_close_all_flushes_and_never_blocks_on_a_writer_left(mask: None, sinks: tuple[Sink, Sink]) -> None:
    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    w_out, w_err = outputs.pipes("orphan")  # an escaped grandchild would still hold these
    os.write(w_out, b"done\nhalf")
    os.write(w_err, b"oops")
    outputs.close_all()
    assert out.lines() == [b"orphan | done", b"orphan | half"]
    assert err.lines() == [b"orphan | oops"]
    assert outputs.readers == []
    with pytest.raises(BrokenPipeError):
        os.write(w_out, b"x")  # the read ends are closed
    os.close(w_out)
    os.close(w_err)


def test_a_drain_leaves_the_rest_for_the_next_turn(mask: None, sinks: tuple[Sink, Sink],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = sinks
    monkeypatch.setattr(output, "DRAIN_BUDGET", 4096)
    monkeypatch.setattr(output, "READ_SIZE", 1024)
    outputs = ServiceOutput(out.fd, err.fd)
    w_out, w_err = outputs.pipes("fast")
    os.write(w_out, b"".join(b"%05d\n" % i for i in range(5000)))  # 30000 bytes waiting
    assert signal.sigtimedwait({OUTPUT_SIGNAL}, 5) is not None
    outputs.drain()
    assert 0 < len(out.lines()) < 5000  # the budget: a stop signal would be taken now
    turns = 1
    while signal.sigtimedwait({OUTPUT_SIGNAL}, 0) is not None:  # queued again by drain itself
        outputs.drain()
        turns += 1
        assert turns < 100
    assert out.lines() == [b"fast | %05d" % i for i in range(5000)]
    os.close(w_out)
    os.close(w_err)
    outputs.close_all()


def test_the_pipes_are_close_on_exec_and_signal_driven(mask: None, sinks: tuple[Sink, Sink]) -> None:
    import fcntl

    out, err = sinks
    outputs = ServiceOutput(out.fd, err.fd)
    ends = outputs.pipes("s")
    for fd in [*ends, *(pipe.fd for pipe in outputs.readers)]:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    for pipe in outputs.readers:
        flags = fcntl.fcntl(pipe.fd, fcntl.F_GETFL)
        assert flags & os.O_NONBLOCK and flags & os.O_ASYNC
        assert fcntl.fcntl(pipe.fd, fcntl.F_GETSIG) == OUTPUT_SIGNAL
        assert fcntl.fcntl(pipe.fd, fcntl.F_GETOWN) == os.getpid()
    assert OUTPUT_SIGNAL not in (signal.SIGRTMIN + 3, signal.SIGRTMIN + 4)  # --watch's, --log-file's
    for fd in ends:
        os.close(fd)
    outputs.close_all()
