"""Test helper: builds process trees for the stop and reap tests.

Modes (PIDFILE gets one pid per line, last line "ready"):
  stubborn PIDFILE   every process ignores SIGTERM: us, a child that called
                     setsid() (left our group and session), its child.
  leftover PIDFILE   a background child that sleeps (default TERM), we exit 0.
  orphan PIDFILE     a grandchild orphaned by its parent writes its new ppid,
                     then exits after a moment; we wait for the file then exit.
  group              we ignore USR1, our child does not; we exit with its fate.
"""

import os
import signal
import sys
import time


def write(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


def sleep_forever() -> None:
    while True:
        time.sleep(3600)


def stubborn(path: str) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write(path, str(os.getpid()))
    if os.fork() == 0:
        os.setsid()
        write(path, str(os.getpid()))
        if os.fork() == 0:
            os.setpgid(0, 0)
            write(path, str(os.getpid()))
            write(path, "ready")
            sleep_forever()
        sleep_forever()
    sleep_forever()
    return 0


def leftover(path: str) -> int:
    pid = os.fork()
    if pid == 0:
        os.execvp("sleep", ["sleep", "1000"])
    write(path, str(pid))
    write(path, "ready")
    return 0


def orphan(path: str) -> int:
    pid = os.fork()
    if pid == 0:
        middle = os.getpid()  # in this branch `pid` is 0: the grandchild waits for *this* to exit
        if os.fork() == 0:
            deadline = time.monotonic() + 10
            while os.getppid() == middle and time.monotonic() < deadline:
                time.sleep(0.01)
            write(path, f"{os.getpid()} {os.getppid()}")
            time.sleep(0.3)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return 0
        time.sleep(0.01)
    return 1


def group() -> int:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    # "ready" only once the child has exec'd with USR1 back at its default: the write end of this
    # pipe is close-on-exec, so EOF on the read end is the exec (before it, a USR1 would be lost).
    exec_seen, exec_done = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(exec_seen)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.execvp("sleep", ["sleep", "1000"])
    os.close(exec_done)
    os.read(exec_seen, 1)
    os.close(exec_seen)
    print("ready", flush=True)
    _, status = os.waitpid(pid, 0)
    print(f"child {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


def main() -> int:
    mode = sys.argv[1]
    if mode == "group":
        return group()
    return {"stubborn": stubborn, "leftover": leftover, "orphan": orphan}[mode](sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
