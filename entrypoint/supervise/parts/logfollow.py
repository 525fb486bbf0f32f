"""``--log-file PATH``: copy what the app writes to log files onto ``run``'s standard output.

For legacy apps that only log to files, which ``docker logs`` and the Mesos
sandbox viewers cannot see (what dockerize ``-stdout`` and s6-log are used
for).  It lives inside PID 1 the way ``--watch`` does: inotify through
ctypes, readiness delivered as the real-time signal :data:`LOG_SIGNAL` into
the same ``sigwaitinfo`` loop, so a quiet file costs no wake-up at all.

What is copied, per path, in order and exactly once:

- complete lines only: a partial last line waits for its newline (and is
  flushed, with a newline added, when the follower finishes at exit);
- a line longer than :data:`MAX_PARTIAL` is passed on in pieces as it comes,
  so memory stays bounded whatever the app writes;
- a file that exists when following starts is followed from its end (only
  new lines); one that appears later, or replaces a rotated one, from its start;
- rename-and-create rotation: the renamed file is still read (the app may
  write to it until it reopens its log) until it is deleted or rotated again;
- copytruncate rotation: a size below what was read means "truncated", and
  reading starts again at 0.
"""

from __future__ import annotations

import os
import stat

from entrypoint import log
from entrypoint.errors import ConfigError
from entrypoint.fdio import GONE, copy_out
from entrypoint.signames import LOG_SIGNAL as LOG_SIGNAL
from entrypoint.supervise.parts import inotify, signals

CHUNK = 64 * 1024
#: A partial line held back longer than this goes out as it is (bounded memory).
MAX_PARTIAL = 64 * 1024

DIR_MASK = inotify.IN_CREATE | inotify.IN_MOVED_TO | inotify.IN_MOVED_FROM | inotify.IN_DELETE
FILE_MASK = inotify.IN_MODIFY | inotify.IN_ATTRIB | inotify.IN_MOVE_SELF | inotify.IN_DELETE_SELF


def check_paths(paths: list[str]) -> None:
    """A log path whose directory does not exist is a configuration error (exit 78)."""
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigError(f"--log-file {path}: directory {directory} does not exist")


class _Source:
    """One open inode of a followed path: where we are in it, and an unfinished line."""

    __slots__ = ("dev", "fd", "ino", "offset", "partial", "wd")

    def __init__(self, fd: int, st: os.stat_result, offset: int, wd: int | None) -> None:
        self.fd = fd
        self.dev, self.ino = st.st_dev, st.st_ino
        self.offset = offset
        self.partial = b""
        self.wd = wd


class _Followed:
    __slots__ = ("current", "path", "retired")

    def __init__(self, path: str) -> None:
        self.path = path
        self.current: _Source | None = None
        self.retired: _Source | None = None  # the rotated-away file, still read while it lives


class LogFollower:
    """Follows ``paths``; the loop calls :meth:`drain` on :attr:`signum`, :meth:`finish` at exit."""

    signum: int

    def __init__(self, paths: list[str], out_fd: int = 1) -> None:
        self.signum = LOG_SIGNAL
        self.out_fd = out_fd
        self.files = [_Followed(p) for p in dict.fromkeys(os.path.abspath(p) for p in paths)]
        self._dirs: dict[int, set[str]] = {}  # directory watch -> names we follow there
        signals.block(self.signum)  # before O_ASYNC
        self._ino = inotify.open_inotify()
        self._ino.signal_driven(self.signum)
        for followed in self.files:
            directory, name = os.path.split(followed.path)
            self._dirs.setdefault(self._ino.add_watch(directory, DIR_MASK), set()).add(name)
            self._open(followed, at_end=True)

    # -- the loop's interface -------------------------------------------------------------

    def drain(self) -> None:
        """Consume the notifications, then copy whatever is new."""
        signals.discard(self.signum)
        relevant = False
        for event in self._ino.read_events():
            names = self._dirs.get(event.wd)
            if names is None or event.name in names or event.mask & inotify.IN_Q_OVERFLOW:
                relevant = True  # a file watch, one of our names, or lost events
        if relevant:
            self.poll()

    def poll(self) -> None:
        """Copy every new complete line of every followed path (also called at the app's exit)."""
        for followed in self.files:
            self._poll(followed)

    def finish(self) -> None:
        """Last copy at exit: new lines, then unfinished ones (with a newline), then close."""
        self.poll()
        for followed in self.files:
            for source in (followed.retired, followed.current):
                if source is not None:
                    self._close(source)
            followed.retired = followed.current = None
        self._ino.close()
        signals.discard(self.signum)

    # -- one path -------------------------------------------------------------------------

    def _poll(self, followed: _Followed) -> None:
        if followed.retired is not None:
            self._read(followed.retired)
            if _unlinked(followed.retired):
                self._close(followed.retired)
                followed.retired = None
        current = followed.current
        if current is not None:
            self._read(current)
            try:
                st = os.stat(followed.path)
                same = (st.st_dev, st.st_ino) == (current.dev, current.ino)
            except OSError:
                same = False
            if not same:  # renamed away or deleted: rotation
                if followed.retired is not None:
                    self._close(followed.retired)
                followed.retired, followed.current = current, None
                if _unlinked(current):
                    self._close(current)
                    followed.retired = None
        if followed.current is None:
            self._open(followed, at_end=False)

    def _open(self, followed: _Followed, *, at_end: bool) -> None:
        try:
            fd = os.open(followed.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # not there (yet): the directory watch sees it appear
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return
        try:
            wd: int | None = self._ino.add_watch(f"/proc/self/fd/{fd}", FILE_MASK)
        except OSError as exc:
            log.warn(f"--log-file: cannot watch {followed.path}: {exc.strerror}")
            wd = None
        source = _Source(fd, st, st.st_size if at_end else 0, wd)
        followed.current = source
        if not at_end:
            self._read(source)

    def _read(self, source: _Source) -> None:
        try:
            if os.fstat(source.fd).st_size < source.offset:  # copytruncate
                source.offset = 0
                self._flush_partial(source)
            while True:
                data = os.pread(source.fd, CHUNK, source.offset)
                if not data:
                    return
                source.offset += len(data)
                self._emit(source, data)
        except OSError as exc:
            log.debug(f"--log-file: read error: {exc.strerror}")

    def _emit(self, source: _Source, data: bytes) -> None:
        buf = source.partial + data if source.partial else data
        end = buf.rfind(b"\n") + 1
        if end:
            self._write(buf[:end])
            buf = buf[end:]
        if len(buf) >= MAX_PARTIAL:
            self._write(buf)  # a very long line: in pieces, byte for byte
            buf = b""
        source.partial = buf

    def _flush_partial(self, source: _Source) -> None:
        if source.partial:
            self._write(source.partial + b"\n")
            source.partial = b""

    def _close(self, source: _Source) -> None:
        self._read(source)
        self._flush_partial(source)
        if source.wd is not None:
            try:
                self._ino.rm_watch(source.wd)
            except OSError:
                pass
        os.close(source.fd)

    def _write(self, data: bytes) -> None:
        if self.out_fd < 0:
            return
        failed = copy_out(self.out_fd, data)
        if failed is None:
            return
        if failed.errno in GONE:
            log.debug("--log-file: standard output is gone; not copying any more")
            self.out_fd = -1
        else:
            log.debug(f"--log-file: cannot write: {failed.strerror}")


def _unlinked(source: _Source) -> bool:
    try:
        return os.fstat(source.fd).st_nlink == 0
    except OSError:
        return True
