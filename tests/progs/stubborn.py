"""Test helper: a badly behaved child.

``stubborn.py READY_FILE [--close-stdio] [--ignore-all] [--exit-on-term CODE]``

--close-stdio   closes fds 0, 1 and 2 before anything else
--ignore-all    ignores every catchable signal (so only SIGKILL ends it)
--exit-on-term  exits with CODE on SIGTERM
Writes its pid and "ready" to READY_FILE, then waits for signals.  Every
other signal it receives is appended to READY_FILE as ``got N``.
"""

import os
import signal
import sys


def main() -> int:
    args = sys.argv[1:]
    ready = args[0]
    if "--close-stdio" in args:
        for fd in (0, 1, 2):
            os.close(fd)
    term_code = None
    if "--exit-on-term" in args:
        term_code = int(args[args.index("--exit-on-term") + 1])
    catchable = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
    fd = os.open(ready, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(signum: int, _frame: object) -> None:
        if signum == signal.SIGTERM and term_code is not None:
            os.write(fd, b"term\n")
            os._exit(term_code)
        os.write(fd, b"got %d\n" % signum)

    for signum in catchable:
        try:
            signal.signal(signum, signal.SIG_IGN if "--ignore-all" in args else note)
        except (OSError, ValueError):
            pass
    if "--ignore-all" in args:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # still a reaper of nothing; not a signal sink
    os.write(fd, b"%d\nready\n" % os.getpid())
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
