"""Service readiness: s6's ``notification-fd`` pipes, read by PID 1 without polling.

A service with ``notification-fd N`` gets the write end of a pipe as its fd N;
it is ready when it writes a newline there (s6: everything up to the first
newline is read; the pipe closed before one = not ready, and the
``timeout-up`` deadline decides).  The read ends are signal-driven like the
inotify readers (``O_ASYNC`` + ``F_SETSIG`` to a real-time signal, owner PID 1):
the kernel queues :data:`READY_SIGNAL` into the loop's ``sigwaitinfo`` when
data or EOF arrives, so a quiet service costs no wake-up.

A ``ready`` URL is a forked ``--wait`` (sockets and TLS never load into PID 1):
see :func:`fork_ready_wait`.
"""

from __future__ import annotations

import os

from entrypoint import log
from entrypoint.signames import READY_SIGNAL as READY_SIGNAL
from entrypoint.supervise.parts import spawn
from entrypoint.supervise.services.output import signal_driven


class Notifications:
    """Every open notification pipe; the loop's Reader for :data:`READY_SIGNAL`."""

    __slots__ = ("fds", "ready", "signum")

    def __init__(self) -> None:
        self.signum = READY_SIGNAL
        self.fds: dict[int, str] = {}  # read end -> service name
        self.ready: list[str] = []  # services that wrote their newline since the last take()

    def pipe(self, name: str) -> tuple[int, int]:
        """A pipe for one start of service NAME: ``(read end, write end)``; the loop dup2s the
        write end onto the service's fd N and closes it in PID 1 right after the fork."""
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        signal_driven(read_fd, self.signum)
        self.fds[read_fd] = name
        return read_fd, write_fd

    def drain(self) -> None:
        """Read every pipe until it would block: a newline = ready, EOF = closed without it."""
        for fd in list(self.fds):
            self._read(fd)

    def _read(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if b"\n" in data:
                self.ready.append(self.fds[fd])
                self.close(fd)
                return
            if not data:
                log.debug(f"service {self.fds[fd]}: notification fd closed before a newline")
                self.close(fd)
                return

    def close(self, fd: int | None) -> None:
        if fd is not None and fd in self.fds:
            del self.fds[fd]
            os.close(fd)

    def take(self) -> list[str]:
        ready, self.ready = self.ready, []
        return ready


def fork_ready_wait(name: str, url: str, timeout: float) -> int:
    """Probe ``url`` until it answers or ``timeout`` passes, in a fork of PID 1: exit 0 = ready."""
    pid, _ = spawn.fork_step(env_out=False)
    if pid == 0:  # pragma: no cover - a fork of PID 1; ends in os._exit
        def work() -> None:
            from entrypoint.supervise.steps.waits import wait_for

            wait_for([url], timeout)

        spawn.finish_child(f"service {name}: waiting for {url}", work)
    return pid
