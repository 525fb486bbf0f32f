"""Test helper: prints "ready", then the number of every signal it receives.

Signals are blocked and taken with sigwaitinfo, so even TSTP/TTIN/TTOU and
SIGSEGV are just numbers here.  ``--exit-on N`` exits 0 after printing N.
"""

import os
import signal
import sys


def main() -> int:
    exit_on = int(sys.argv[sys.argv.index("--exit-on") + 1]) if "--exit-on" in sys.argv else None
    wanted = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    os.write(1, b"ready\n")
    while True:
        signum = int(signal.sigwaitinfo(wanted).si_signo)
        os.write(1, f"{signum}\n".encode())
        if signum == exit_on:
            return 0


if __name__ == "__main__":
    sys.exit(main())
