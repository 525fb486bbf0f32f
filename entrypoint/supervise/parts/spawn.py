"""Starting children with a clean slate.

fork + exec by hand rather than :mod:`subprocess` or ``os.posix_spawn``:
subprocess keeps the parent's blocked signal mask (PID 1 blocks everything),
and glibc's posix_spawn leaves signals 32/33 ignored in the child.  After
fork the child sets its process group, takes the terminal, resets every
disposition, unblocks every signal and execs; an exec failure travels back
over a close-on-exec pipe so that the parent can answer 126/127 and name the
command instead of guessing from an exit code.
"""

from __future__ import annotations

import errno
import os

from entrypoint import log, stdio
from entrypoint.errors import EX_CONFIG, EntrypointError
from entrypoint.fdio import read_all, write_all
from entrypoint.supervise.parts import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from entrypoint.supervise.parts.user import Identity

#: An exec report starting with this is a failed switch of identity (``--user``), not of exec.
_SWITCH = b"user:"


class ExecFailed(Exception):
    """COMMAND could not be executed; ``exit_code`` is 127 (not found) or 126."""

    def __init__(self, command: str, err: int) -> None:
        self.command = command
        self.errno = err
        self.exit_code = 127 if err in (errno.ENOENT, errno.ENOTDIR) else 126
        super().__init__(f"cannot execute {command!r}: {os.strerror(err)}")


class SwitchFailed(ExecFailed):
    """``--user``: the child could not take the app's identity; nothing ran (exit 78)."""

    def __init__(self, command: str, err: int, spec: str) -> None:
        super().__init__(command, err)
        self.exit_code = 78
        self.args = (f"cannot start {command!r} as --user {spec}: {os.strerror(err)}",)

    def __str__(self) -> str:
        return str(self.args[0])


def _take_terminal() -> None:
    """Give the terminal's foreground to our new group (while TTOU is still blocked)."""
    try:
        if os.isatty(0):
            os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass  # ENOTTY/ENXIO: no controlling terminal, nothing to hand over


def _child_exec(argv: list[str], env: dict[str, str], report_fd: int, ident: Identity | None,
                setup: ChildSetup | None = None) -> None:
    """In the forked child: never returns.

    With ``ident`` (``--user``) the identity changes here, between fork and
    exec and after everything that needs root (the terminal hand-over):
    supplementary groups, then gid, then uid, the order in which each step
    still has the privilege for the next.  PID 1 keeps its own identity.
    """
    code = 1
    prefix = b""
    try:
        os.setpgid(0, 0)
        if setup is None:
            _take_terminal()
        else:
            report_fd = setup.apply(report_fd)
        signals.reset_dispositions()
        signals.unblock_all()
        if ident is not None:
            prefix = _SWITCH
            os.setgroups(ident.groups)
            os.setgid(ident.gid)
            os.setuid(ident.uid)
            prefix = b""
        os.execvpe(argv[0], argv, env)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
        err = getattr(exc, "errno", None) or errno.EINVAL
        try:
            os.write(report_fd, prefix + str(err).encode())
        except OSError:
            pass
        code = 127 if err in (errno.ENOENT, errno.ENOTDIR) else 126
    finally:
        os._exit(code)


class ChildSetup:
    """What a service's child does between fork and exec instead of taking the terminal:
    its working directory, stdin from /dev/null, and fds mapped (``{target: source}``:
    its stdout/stderr pipes onto 1 and 2, a notification pipe onto N)."""

    __slots__ = ("cwd", "fds")

    def __init__(self, cwd: str | None, fds: dict[int, int]) -> None:
        self.cwd = cwd
        self.fds = fds

    def apply(self, report_fd: int) -> int:
        """In the child; returns where the exec report fd is now (moved above every target)."""
        import fcntl

        base = max([3, *self.fds]) + 1
        report_fd = fcntl.fcntl(report_fd, fcntl.F_DUPFD_CLOEXEC, base)
        # First every source above every target, so that no dup2 overwrites a source still needed.
        moved = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, base)
                 for target, source in self.fds.items()}
        for target, source in moved.items():
            os.dup2(source, target)  # the copy is not close-on-exec: the program keeps it
        null = os.open(os.devnull, os.O_RDONLY)
        if null != 0:
            os.dup2(null, 0)
            os.close(null)
        if self.cwd is not None:
            os.chdir(self.cwd)
        return report_fd


def spawn(argv: list[str], env: dict[str, str], ident: Identity | None = None,
          setup: ChildSetup | None = None) -> int:
    """Fork and exec ``argv`` in its own process group (as ``ident``); return the pid.

    ``setup`` (services): see :class:`ChildSetup`; without it the child takes the terminal.
    Raises :class:`ExecFailed` (after reaping the child) when exec fails, and
    :class:`SwitchFailed` when the switch to ``ident`` does.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child_exec(argv, env, write_fd, ident, setup)
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)  # also here, so the group exists before we signal it
    except OSError:
        pass  # the child already exec'd (EACCES) or failed: its own setpgid counts
    try:
        report = read_all(read_fd)
    finally:
        os.close(read_fd)
    if report:
        os.waitpid(pid, 0)
        if report.startswith(_SWITCH) and ident is not None:
            raise SwitchFailed(argv[0], int(report[len(_SWITCH):].decode() or errno.EPERM), ident.spec)
        raise ExecFailed(argv[0], int(report.decode() or errno.ENOEXEC))
    return pid


def fork_step(env_out: bool) -> tuple[int, int | None]:
    """Fork a copy of this process to run one start-up step (hooks, waits).

    Returns ``(pid, memfd)`` in the parent and ``(0, memfd)`` in the child;
    the child must end with :func:`os._exit`.  The step runs in a child so
    that its imports (subprocess, socket, ssl) never stay resident in PID 1,
    and so that a stop signal can interrupt it.  A result travels back in an
    anonymous memory file (``memfd``), which unlike a pipe cannot fill up and
    block the child while we wait for signals.
    """
    memfd = os.memfd_create("entrypoint-step", os.MFD_CLOEXEC) if env_out else None
    pid = os.fork()
    if pid == 0:
        signals.unblock_all()
    return pid, memfd



def finish_child(action: str, work: Callable[[], int | None]) -> None:
    """Child side of :func:`fork_step`: run ``work``, exit with its verdict (its int, else 0).  Never returns.

    An error is reported as its lines; anything else (a bug) is one line and exit 78: a forked step
    must never return into a second copy of PID 1's loop.
    """
    code = 0
    try:
        code = work() or 0
    except EntrypointError as exc:
        for line in str(exc).splitlines():  # several problems: one prefixed line each
            log.error(line)
        code = exc.exit_code
    except BaseException as exc:  # a bug in a step must not become a second PID 1
        log.error(f"{action} failed: {exc!r}")
        code = EX_CONFIG
    finally:
        stdio.flush_quietly()
        os._exit(code)


def write_env(fd: int, env: dict[str, str]) -> None:
    write_all(fd, b"\0".join(os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()))


def write_words(fd: int, words: list[str]) -> None:
    """A list of strings (an argv) for :func:`read_words`: each NUL-terminated."""
    write_all(fd, b"".join(os.fsencode(word) + b"\0" for word in words))


def read_words(fd: int) -> list[str]:
    os.lseek(fd, 0, os.SEEK_SET)
    return [os.fsdecode(word) for word in read_all(fd).split(b"\0")[:-1]]


def read_env(fd: int) -> dict[str, str]:
    os.lseek(fd, 0, os.SEEK_SET)
    return parse_environ(read_all(fd))


def parse_environ(data: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in data.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def original_environ() -> dict[str, str]:
    """The environment exactly as we were exec'd with.

    ``os.environ`` is not that: CPython's C-locale coercion (PEP 538) adds
    ``LC_CTYPE`` at start-up.  The kernel keeps the original block, untouched
    by setenv, in ``/proc/self/environ``.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            return parse_environ(f.read())
    except OSError:
        return dict(os.environ)
