"""Test helper: prints "ready", then the number of every signal it receives.

Signals are blocked and taken with sigwaitinfo, so even TSTP/TTIN/TTOU and
SIGSEGV are just numbers here.  ``--exit-on N`` exits 0 after printing N.
``--stamp`` adds the receipt time: "SIGNUM MONOTONIC".  CLOCK_MONOTONIC is one
clock for the whole machine (PID namespaces share it), so a test can compare
when it sent a signal with when the app got it.
"""

import os
import signal
import sys
import time


def main() -> int:
    exit_on = int(sys.argv[sys.argv.index("--exit-on") + 1]) if "--exit-on" in sys.argv else None
    stamp = "--stamp" in sys.argv
    wanted = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    os.write(1, b"ready\n")
    while True:
        signum = int(signal.sigwaitinfo(wanted).si_signo)
        line = f"{signum} {time.monotonic():.6f}\n" if stamp else f"{signum}\n"
        os.write(1, line.encode())
        if signum == exit_on:
            return 0


if __name__ == "__main__":
    sys.exit(main())
