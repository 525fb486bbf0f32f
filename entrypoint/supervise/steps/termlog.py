"""``--termination-log PATH``: why the start failed, where the orchestrator looks.

Kubernetes reads ``/dev/termination-log`` (the container's
``terminationMessagePath``) when a container ends and shows it in ``kubectl
describe pod``; at most 4096 bytes count.  While the start is under way,
every error line (PID 1's and the start-up steps', which inherit the same
memory file) is kept in a memfd; if the start fails (78, 69, 126, 127) the
kept lines are written to PATH, cut at a line boundary within 4096 bytes.
Once the app runs, the memfd is closed: what the app writes there itself is
its own business, and a later exit of the app is never ours to explain.

An explicit PATH that cannot be written is refused at once (exit 78,
nothing started): a configured log that silently never appears is worse.
The default is used only when it exists and is writable.
"""

from __future__ import annotations

import os

from entrypoint import log
from entrypoint.errors import ConfigError
from entrypoint.fdio import write_all

DEFAULT_PATH = "/dev/termination-log"
#: the exit codes of a failed start (cli.md); anything else is the app's or a stop's
START_FAILURES = frozenset({69, 78, 126, 127})


def resolve(path: str | None) -> str | None:
    """The path in effect, or None; an explicit one that cannot be written is a ConfigError."""
    if path is None:
        return DEFAULT_PATH if os.access(DEFAULT_PATH, os.W_OK) and not os.path.isdir(DEFAULT_PATH) else None
    if not path:
        return None
    problem = _unwritable(path)
    if problem:
        raise ConfigError(f"--termination-log {path}: {problem}")
    return path


def _unwritable(path: str) -> str | None:
    if os.path.isdir(path):
        return "is a directory"
    if os.path.lexists(path):
        return None if os.access(path, os.W_OK) else "cannot be written (permission denied or read-only)"
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        return f"directory {parent!r} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created in {parent!r} (permission denied or read-only)"
    return None


class TerminationLog:
    """The kept error lines of one start; ``publish`` on failure, ``close`` once the app runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = os.memfd_create("entrypoint-errors", os.MFD_CLOEXEC)
        log.keep_errors(self.fd)

    def close(self) -> None:
        log.keep_errors(None)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def publish(self, code: int) -> None:
        """After a failed start: the kept lines to PATH (at most KEEP_LIMIT bytes, whole lines)."""
        if self.fd is None or code not in START_FAILURES:
            return
        os.lseek(self.fd, 0, os.SEEK_SET)
        data = os.read(self.fd, log.KEEP_LIMIT + 4096)
        self.close()
        if len(data) > log.KEEP_LIMIT:
            cut = data.rfind(b"\n", 0, log.KEEP_LIMIT)
            data = data[: cut + 1] if cut >= 0 else data[: log.KEEP_LIMIT]
        try:
            # O_NONBLOCK: a FIFO nobody reads must not hang PID 1 on its way out (ENXIO instead)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NONBLOCK
            fd = os.open(self.path, flags, 0o644)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warn(f"--termination-log {self.path}: {exc.strerror}")
