"""Linux inotify through ctypes, with readiness delivered as a signal.

Why not watchdog: its observer is a thread that polls its queue with a
timeout (a periodic wake-up in PID 1), and running it in a second resident
Python process would cost another ~8 MiB, past the 16 MiB budget of
``run --watch``.  inotify itself needs three libc calls, and signal-driven
I/O (``O_ASYNC`` + ``F_SETSIG``) turns "events are pending" into a queued
real-time signal that the PID-1 loop already waits for with ``sigwaitinfo``:
no thread, no poll, no timer.

``ctypes`` is imported by :func:`open_inotify` only, so a plain ``run``
never pays for it.  ``CDLL(None)`` uses the libc already mapped into the
process (``ctypes.util.find_library`` would spawn ``ldconfig``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# <sys/inotify.h>
IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

#: Everything that can mean "the content a render reads has changed".
#: IN_MODIFY is included so that a slow writer keeps extending the quiet
#: period instead of letting us render a half-written file.
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
              | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_EXCL_UNLINK)

#: Events that change which inodes the watched paths lead to.
STRUCTURAL = (IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
              | IN_IGNORED | IN_UNMOUNT | IN_Q_OVERFLOW)

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_READ_SIZE = 64 * 1024


class Event:
    """One ``struct inotify_event``.  A plain class: dataclasses would pull
    inspect/re/enum into PID 1 (about 3 MiB of RSS)."""

    __slots__ = ("cookie", "mask", "name", "wd")

    def __init__(self, wd: int, mask: int, cookie: int, name: str) -> None:
        self.wd = wd  # -1 for IN_Q_OVERFLOW
        self.mask = mask
        self.cookie = cookie
        self.name = name  # "" for events about the watched inode itself

    def _key(self) -> tuple[int, int, int, str]:
        return (self.wd, self.mask, self.cookie, self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Event(wd={self.wd}, mask={self.mask:#x}, cookie={self.cookie}, name={self.name!r})"


class Inotify:
    """One non-blocking, close-on-exec inotify descriptor."""

    def __init__(self, fd: int, add: Callable[[int, bytes, int], int], rm: Callable[[int, int], int],
                 get_errno: Callable[[], int]) -> None:
        self.fd = fd
        self._add = add
        self._rm = rm
        self._errno = get_errno

    def add_watch(self, path: str, mask: int = WATCH_MASK) -> int:
        """Watch descriptor for PATH (symlinks followed); the same inode gives the same wd."""
        wd = self._add(self.fd, os.fsencode(path), mask)
        if wd < 0:
            code = self._errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    def rm_watch(self, wd: int) -> None:
        """Stop watching; a watch the kernel already dropped (EINVAL) is not an error."""
        if self._rm(self.fd, wd) < 0:
            code = self._errno()
            if code != errno.EINVAL:
                raise OSError(code, os.strerror(code))

    def read_events(self) -> Iterator[Event]:
        """Every event pending right now; never blocks."""
        while True:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if not data:
                return
            yield from parse_events(data)

    def signal_driven(self, signum: int) -> None:
        """Have the kernel queue SIGNUM to this process whenever events become pending.

        ``F_SETSIG`` with a real-time signal makes each notification a queued
        signal carrying the fd, so nothing is lost to coalescing; if the
        real-time queue ever overflows the kernel falls back to SIGIO.
        """
        fcntl.fcntl(self.fd, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(self.fd, fcntl.F_SETSIG, signum)
        self.set_async(True)

    def set_async(self, on: bool) -> None:
        """Switch notification signals on or off; events keep queueing in the kernel meanwhile.

        Switching on does not signal for events already pending: read them after.
        """
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        flags = flags | os.O_ASYNC if on else flags & ~os.O_ASYNC
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_events(data: bytes) -> Iterator[Event]:
    """Decode a buffer of ``struct inotify_event`` records."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        raw = data[offset:offset + length].split(b"\0", 1)[0]
        offset += length
        yield Event(wd, mask, cookie, os.fsdecode(raw))


def open_inotify() -> Inotify:
    """``inotify_init1(IN_NONBLOCK | IN_CLOEXEC)``; raises OSError (e.g. EMFILE) on failure."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    init1 = libc.inotify_init1
    init1.argtypes = [ctypes.c_int]
    init1.restype = ctypes.c_int
    add = libc.inotify_add_watch
    add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add.restype = ctypes.c_int
    rm = libc.inotify_rm_watch
    rm.argtypes = [ctypes.c_int, ctypes.c_int]
    rm.restype = ctypes.c_int
    fd = init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"inotify_init1: {os.strerror(code)}")
    return Inotify(fd, add, rm, ctypes.get_errno)
