"""Signal numbers and names: the vocabulary every room may read.

The options table (``--rewrite-signal``, ``--reload-signal``), the service directories'
``down-signal`` and the PID-1 loop all name signals; this is the one table of
names.  Built on the C module ``_signal`` rather than :mod:`signal`: the public
module wraps every number in an ``IntEnum``, which drags :mod:`enum`,
:mod:`functools` and :mod:`collections` in and costs about 5 ms of start-up in a
process whose start-up is a product feature.  Everything here is plain ``int``.
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

#: The real-time signals PID 1 takes for its own signal-driven readers, one table so that no two
#: features take the same one.  Each is reserved: the loop's readers consume it and it is never
#: forwarded to the app.  SIGRTMIN itself is avoided: some runtimes (and glibc-based threading
#: libraries) claim the first few.
WATCH_SIGNAL: int = SIGRTMIN + 3   # --watch: inotify on the templates
LOG_SIGNAL: int = SIGRTMIN + 4     # --log-file: inotify on the app's log files
OUTPUT_SIGNAL: int = SIGRTMIN + 5  # --services-dir: the services' stdout and stderr pipes
READY_SIGNAL: int = SIGRTMIN + 6   # --services-dir: the services' notification-fd pipes


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
