"""Test helper: prints "ready", then "SIGNUM MONOTONIC" for every signal it receives.

CLOCK_MONOTONIC is one clock for the whole machine (PID namespaces share it),
so a test can compare when it sent a signal with when the app got it.
``--exit-on N`` exits 0 after N; every other signal (TERM included) is only noted.
"""

import os
import signal
import sys
import time


def main() -> int:
    exit_on = int(sys.argv[sys.argv.index("--exit-on") + 1]) if "--exit-on" in sys.argv else None
    wanted = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    os.write(1, b"ready\n")
    while True:
        signum = int(signal.sigwaitinfo(wanted).si_signo)
        os.write(1, f"{signum} {time.monotonic():.6f}\n".encode())
        if signum == exit_on:
            return 0


if __name__ == "__main__":
    sys.exit(main())
