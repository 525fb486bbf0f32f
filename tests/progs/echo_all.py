"""Test helper: reports exactly what it was started with, as JSON on stdout.

argv and the environment come from /proc/self (the kernel's copy, before
Python's locale coercion could touch them); stdin is read to EOF.
"""

import json
import os
import sys


def split(path: str) -> list[str]:
    with open(path, "rb") as f:
        return [os.fsdecode(x) for x in f.read().split(b"\0")[:-1]]


def main() -> int:
    report = {
        "argv": split("/proc/self/cmdline"),
        "environ": split("/proc/self/environ"),
        "cwd": os.getcwd(),
        "stdin": sys.stdin.read(),
        "pgid_is_pid": os.getpgrp() == os.getpid(),
    }
    print(json.dumps(report), flush=True)
    print("to-stderr", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
