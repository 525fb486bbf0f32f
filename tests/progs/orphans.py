"""Test helper: makes N orphans (re-parented to PID 1), then waits until none is left.

Each child forks a grandchild and exits at once; the grandchild, now an
orphan, sleeps a moment and exits, leaving a zombie only PID 1 can reap.
Exits 0 once the namespace holds nobody but PID 1 and us and no zombie,
1 (with a listing) if that does not happen in time.
"""

import os
import sys
import time


def others() -> list[str]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, me):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    found.append(f.read().strip())
            except OSError:
                pass
    return found


def main() -> int:
    count = int(sys.argv[1])
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                time.sleep(0.2)
            os._exit(0)
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = others()
        if not left:
            print(f"clean after {count} orphans", flush=True)
            return 0
        time.sleep(0.05)
    print("left:", *left[:20], sep="\n", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
