"""Test helper: forks until a pids limit stops it, every process ignoring every signal.

``forkbomb.py CGROUP_DIR READY_FILE``: moves itself into the cgroup (v1 pids
controller, whose ``pids.max`` the caller has set: that is the bound), then
every process keeps trying to fork.  Writes "ready" to READY_FILE once a fork
has failed with EAGAIN, i.e. the limit is reached.  Only SIGKILL ends it.
"""

import os
import signal
import sys
import time


def ignore_all() -> None:
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            signal.signal(signum, signal.SIG_IGN)
        except (OSError, ValueError):
            pass


def main() -> int:
    cgroup, ready = sys.argv[1], sys.argv[2]
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    ignore_all()
    leader = os.getpid()
    told = False
    while True:
        try:
            pid = os.fork()
        except BlockingIOError:
            if os.getpid() == leader and not told:
                told = True
                with open(ready, "w") as f:
                    f.write("ready\n")
            time.sleep(0.01)
            continue
        if pid == 0:
            continue  # the child forks on, too
        time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main())
