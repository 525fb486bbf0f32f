"""Service output: each service's stdout and stderr, in whole ``NAME | `` lines, to PID 1's own.

Every start of a service gets two fresh pipes (:meth:`ServiceOutput.pipes`);
PID 1 reads their other ends and copies what arrives to its fd 1 and fd 2,
each line prefixed with the service's name, so ``docker logs`` tells nginx
from the app.  The rules, each for a reason:

- **Whole lines only.**  A line is written by one ``write(2)``, never split
  across two, and the lines of one read go out together while they fit in
  ``PIPE_BUF`` (4096 bytes).  PID 1's fd 1 is usually a pipe shared with the
  app (which writes to it directly, unprefixed) and the other services: a
  write of at most ``PIPE_BUF`` bytes to a pipe is atomic, so no line of one
  is ever cut by a line of another.  A service writing half a line and the rest
  later is reassembled here first, per service and per stream.
- **stdout and stderr kept apart**: two pipes per start, two framers.
- **Bounded memory**: a line longer than ``limit`` bytes (default 64 KiB)
  without a newline goes out in ``limit``-sized pieces, each prefixed and
  newline-terminated, so a service writing megabytes without a newline costs
  PID 1 at most ``limit`` bytes per stream.  At EOF a partial line is flushed
  with a newline appended.
- **No wake-ups while quiet**: the read ends are signal-driven (``O_ASYNC`` +
  ``F_SETSIG`` to :data:`OUTPUT_SIGNAL`, ``F_SETOWN`` to PID 1), so the kernel
  queues that signal into the loop's ``sigwaitinfo`` when data arrives or a
  writer closes; nothing polls.  If the real-time queue overflows the kernel
  sends SIGIO instead, on which the loop drains every reader.

Standard library only (PID 1): :mod:`fcntl` is a small C module; ``select``
is imported only when standard output is non-blocking and full.
"""

from __future__ import annotations

import fcntl
import os

from entrypoint import log
from entrypoint.fdio import GONE, copy_out
from entrypoint.signames import OUTPUT_SIGNAL as OUTPUT_SIGNAL
from entrypoint.supervise.parts import signals

#: The longest piece of one line held back (per stream): longer lines go out in pieces this long.
LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
#: Bytes read from one pipe per drain before the loop gets a turn (see ServiceOutput.drain).
DRAIN_BUDGET = 1024 * 1024
#: Writes up to this size to a pipe are atomic (POSIX PIPE_BUF; Linux: 4096).
PIPE_BUF = 4096
SEPARATOR = b" | "


class LineFramer:
    """Bytes of one stream of one service in, prefixed whole lines out to ``out_fd``.

    Holds at most ``limit`` bytes of an unfinished line (:attr:`pending`).
    """

    __slots__ = ("limit", "out_fd", "partial", "prefix")

    def __init__(self, name: str, out_fd: int, limit: int = LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.prefix = os.fsencode(name) + SEPARATOR
        self.out_fd = out_fd
        self.limit = limit
        self.partial = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back (never more than ``limit``)."""
        return len(self.partial)

    def feed(self, data: bytes) -> None:
        """Frame ``data``: every line it completes goes out now; the rest waits for more (or EOF).

        The run of whole lines in ``data`` is framed in one ``bytes.replace`` when no line in it
        can exceed the limit (the run itself is no longer than the limit): the common case, at C
        speed.  A held-back line, a longer run and the unfinished tail go line by line.
        """
        out: list[bytes] = []
        start, end = 0, len(data)
        last = data.rfind(b"\n")
        while start < end:
            if not self.partial and start <= last and last - start <= self.limit:
                out.append(self.prefix + data[start:last].replace(b"\n", b"\n" + self.prefix) + b"\n")
                start = last + 1
                continue
            newline = data.find(b"\n", start)
            stop = end if newline < 0 else newline
            room = self.limit - len(self.partial)
            if stop - start > room:  # the line outgrows the limit: this piece goes out as a line
                out.append(self._take(data[start:start + room]))
                start += room
            elif newline < 0:
                self.partial += data[start:]
                break
            else:
                out.append(self._take(data[start:newline]))
                start = newline + 1
        if out:
            self._emit(b"".join(out))

    def close(self) -> None:
        """EOF: an unfinished line goes out with a newline appended."""
        if self.partial:
            self._emit(self._take(b""))

    def _take(self, tail: bytes) -> bytes:
        """One framed line: the prefix, what was held back, ``tail``, a newline."""
        if self.partial:
            line = self.prefix + bytes(self.partial) + tail + b"\n"
            self.partial = bytearray()
            return line
        return self.prefix + tail + b"\n"

    def _emit(self, lines: bytes) -> None:
        """Whole framed lines out, in writes of at most PIPE_BUF bytes cut at line ends (atomic on a
        pipe, so another writer's line never lands inside one of these); a longer line goes alone."""
        pos, end = 0, len(lines)
        while end - pos > PIPE_BUF:
            cut = lines.rfind(b"\n", pos, pos + PIPE_BUF) + 1
            if cut <= pos:  # the next line alone is longer than PIPE_BUF
                cut = lines.find(b"\n", pos) + 1
            self._write(lines[pos:cut])
            pos = cut
        if pos < end:
            self._write(lines[pos:] if pos else lines)

    def _write(self, data: bytes) -> None:
        """All of ``data`` in as few writes as the kernel allows; a vanished stdout drops output
        (the services must still be drained, or they would block on a full pipe)."""
        if self.out_fd < 0:
            return
        failed = copy_out(self.out_fd, data)
        if failed is not None:
            if failed.errno in GONE:
                self.out_fd = -1
            else:
                log.debug(f"service output: cannot write: {failed.strerror}")

class _Pipe:
    """The read end of one service stream and its framer."""

    __slots__ = ("fd", "framer")

    def __init__(self, fd: int, framer: LineFramer) -> None:
        self.fd = fd
        self.framer = framer


class ServiceOutput:
    """Every service's output pipes; a Reader of the loop (:attr:`signum`, :meth:`drain`).

    ``out_fd``/``err_fd`` (defaults 1 and 2) and ``limit`` are for tests and benchmarks.
    """

    __slots__ = ("err_fd", "limit", "out_fd", "readers", "signum")

    signum: int

    def __init__(self, out_fd: int = 1, err_fd: int = 2, limit: int = LIMIT) -> None:
        self.signum = OUTPUT_SIGNAL
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.limit = limit
        self.readers: list[_Pipe] = []
        signals.block(self.signum)  # before any O_ASYNC

    def pipes(self, name: str) -> tuple[int, int]:
        """Two pipes for one start of service NAME: returns their WRITE ends (stdout, stderr).

        The runtime dup2s them onto the child's 1 and 2 between fork and exec and
        closes them in PID 1 right after the fork; both ends are close-on-exec, so
        no other child keeps them open past its exec (which would delay the EOF).
        """
        ends = []
        for target in (self.out_fd, self.err_fd):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            signal_driven(read_end, self.signum)
            self.readers.append(_Pipe(read_end, LineFramer(name, target, self.limit)))
            ends.append(write_end)
        return ends[0], ends[1]

    def drain(self) -> None:
        """Take the queued notifications, then read every pipe until it is empty; EOF closes it.

        The signals go first: data arriving after a pipe was read queues a new one.  At most
        :data:`DRAIN_BUDGET` bytes per pipe per call: a service writing faster than standard
        output takes it must not keep the loop from a stop signal or a child's exit, so when
        the budget runs out the signal is queued again, behind those (the kernel hands out
        standard signals before real-time ones).
        """
        signals.discard(self.signum)
        self._read_all(DRAIN_BUDGET)

    def close_all(self) -> None:
        """At the end, after the services are gone: copy what is left, flush partial lines, close.

        Never blocks, even if an escaped grandchild still holds a write end.
        """
        signals.discard(self.signum)
        self._read_all(None)
        for pipe in self.readers:
            pipe.framer.close()
            os.close(pipe.fd)
        self.readers = []

    def _read_all(self, budget: int | None) -> None:
        left: list[_Pipe] = []
        more = False
        for pipe in self.readers:
            state = _read(pipe, budget)
            if state != _EOF:
                left.append(pipe)
                more = more or state == _MORE
        self.readers = left
        if more:
            os.kill(os.getpid(), self.signum)


def signal_driven(fd: int, signum: int) -> None:
    """Non-blocking, and SIGNUM queued to this process whenever data arrives or the writer closes
    (the services' output pipes and their notification pipes alike)."""
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETSIG, signum)
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK | os.O_ASYNC)


_EMPTY, _MORE, _EOF = 0, 1, 2


def _read(pipe: _Pipe, budget: int | None) -> int:
    """What is available now, up to ``budget`` bytes (None: all): _EMPTY, _MORE (budget spent
    first) or _EOF (the pipe is then closed, its partial line flushed)."""
    taken = 0
    while budget is None or taken < budget:
        try:
            data = os.read(pipe.fd, READ_SIZE)
        except BlockingIOError:
            return _EMPTY
        except InterruptedError:
            continue
        except OSError as exc:
            log.debug(f"service output: cannot read: {exc.strerror}")
            data = b""
        if not data:
            pipe.framer.close()
            os.close(pipe.fd)
            return _EOF
        pipe.framer.feed(data)
        taken += len(data)
    return _MORE
