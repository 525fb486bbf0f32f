"""Test helper: appends a line to FILE, then exits with CODE."""

import sys

with open(sys.argv[1], "a") as f:
    f.write("run\n")
sys.exit(int(sys.argv[2]))
