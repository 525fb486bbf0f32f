"""Signal masks and synchronous waits for the PID-1 loop.

Names and numbers come from :mod:`entrypoint.signames` (re-exported here, so the
loop's modules read one namespace); this module adds what only PID 1 does with
them: block every signal, wait for one, reset dispositions before an exec.
"""

from __future__ import annotations

from entrypoint.signames import (
    SIGCHLD,
    SIGHUP,
    SIGINT,
    SIGIO,
    SIGKILL,
    SIGPIPE,
    SIGQUIT,
    SIGRTMAX,
    SIGRTMIN,
    SIGSTOP,
    SIGTERM,
    SIGTTIN,
    SIGTTOU,
    all_signals,
    name,
    parse,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    import _signal


__all__ = [
    "SIGCHLD", "SIGHUP", "SIGINT", "SIGIO", "SIGKILL", "SIGPIPE", "SIGQUIT", "SIGRTMAX", "SIGRTMIN",
    "SIGSTOP", "SIGTERM", "SIGTTIN", "SIGTTOU", "STOP_SIGNALS", "all_signals", "block_all", "name",
    "parse", "reset_dispositions", "sigtimedwait", "sigwaitinfo", "unblock_all",
]

#: What an orchestrator sends to end the container (docker stop, Ctrl-C,
#: Ctrl-\): receiving one of these means "no restarts, shut down".
STOP_SIGNALS: frozenset[int] = frozenset({SIGTERM, SIGINT, SIGQUIT})

sigwaitinfo = _signal.sigwaitinfo
sigtimedwait = _signal.sigtimedwait


def block_all() -> None:
    """Block every catchable signal so that none is lost or acted on asynchronously.

    Blocked signals are queued even for a namespace's PID 1, which the kernel
    would otherwise shield from default-action signals: that is what lets a
    TERM sent from outside reach us at all.
    """
    _signal.pthread_sigmask(_signal.SIG_BLOCK, all_signals())


def block(signum: int) -> None:
    """Block one signal (a reader's real-time signal, before it turns on O_ASYNC): queued, not acted on."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {signum})


def discard(signum: int) -> None:
    """Take every queued instance of ``signum``: a reader's notifications, before it reads."""
    while _signal.sigtimedwait({signum}, 0) is not None:
        pass


def unblock_all() -> None:
    _signal.pthread_sigmask(_signal.SIG_SETMASK, set())


def reset_dispositions() -> None:
    """Default every handler: ignored signals survive exec, handlers do not.

    CPython ignores SIGPIPE and SIGXFSZ at start-up; a child must not inherit that.
    """
    for signum in all_signals():
        if signum in (SIGKILL, SIGSTOP):
            continue
        try:
            _signal.signal(signum, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
