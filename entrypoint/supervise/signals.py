"""Signal numbers, names and masks for the PID-1 loop.

Built on the C module ``_signal`` rather than :mod:`signal`: the public module
wraps every number in an ``IntEnum``, which drags :mod:`enum`, :mod:`functools`
and :mod:`collections` in and costs about 5 ms of start-up in a process whose
start-up is a product feature.  Everything here is plain ``int``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    import _signal

SIGHUP: int = _signal.SIGHUP
SIGINT: int = _signal.SIGINT
SIGQUIT: int = _signal.SIGQUIT
SIGKILL: int = _signal.SIGKILL
SIGTERM: int = _signal.SIGTERM
SIGCHLD: int = _signal.SIGCHLD
SIGIO: int = _signal.SIGIO
SIGPIPE: int = _signal.SIGPIPE
SIGSTOP: int = _signal.SIGSTOP
SIGTTIN: int = _signal.SIGTTIN
SIGTTOU: int = _signal.SIGTTOU
SIGRTMIN: int = _signal.SIGRTMIN
SIGRTMAX: int = _signal.SIGRTMAX

#: What an orchestrator sends to end the container (docker stop, Ctrl-C,
#: Ctrl-\): receiving one of these means "no restarts, shut down".
STOP_SIGNALS: frozenset[int] = frozenset({SIGTERM, SIGINT, SIGQUIT})

sigwaitinfo = _signal.sigwaitinfo
sigtimedwait = _signal.sigtimedwait


def _names() -> dict[str, int]:
    table: dict[str, int] = {}
    for name in dir(_signal):
        if name.startswith("SIG") and not name.startswith("SIG_"):
            table.setdefault(name[3:], int(getattr(_signal, name)))
    return table


_BY_NAME = _names()
# Reverse-sorted so that the alphabetically first alias wins: ABRT over IOT,
# CHLD over CLD, IO over POLL.
_BY_NUMBER = {num: name for name, num in sorted(_BY_NAME.items(), reverse=True)}


def all_signals() -> set[int]:
    """Every signal the C library lets us block (excludes glibc's 32/33)."""
    return {int(s) for s in _signal.valid_signals()}


def name(signum: int) -> str:
    """``SIGTERM``-style name for logs; realtime ones as ``SIGRTMIN+N``."""
    if SIGRTMIN < signum < SIGRTMAX:
        return f"SIGRTMIN+{signum - SIGRTMIN}"
    if signum in _BY_NUMBER:
        return "SIG" + _BY_NUMBER[signum]
    return f"signal {signum}"


def parse(text: str, *, allow_zero: bool = False) -> int:
    """Accept ``15``, ``TERM``, ``SIGTERM``, ``sigterm``, ``RTMIN+2``; ValueError otherwise."""
    word = text.strip().upper()
    if word.isdigit():
        num = int(word)
        if num == 0 and allow_zero:
            return 0
        if num in all_signals():
            return num
        raise ValueError(f"no such signal: {text!r}")
    word = word.removeprefix("SIG")
    for base, anchor in (("RTMIN+", SIGRTMIN), ("RTMAX-", SIGRTMAX)):
        if word.startswith(base) and word[len(base):].isdigit():
            num = anchor + int(word[len(base):]) if base == "RTMIN+" else anchor - int(word[len(base):])
            if SIGRTMIN <= num <= SIGRTMAX:
                return num
    if word in _BY_NAME:
        return _BY_NAME[word]
    raise ValueError(f"no such signal: {text!r}")


def block_all() -> None:
    """Block every catchable signal so that none is lost or acted on asynchronously.

    Blocked signals are queued even for a namespace's PID 1, which the kernel
    would otherwise shield from default-action signals: that is what lets a
    TERM sent from outside reach us at all.
    """
    _signal.pthread_sigmask(_signal.SIG_BLOCK, all_signals())


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
