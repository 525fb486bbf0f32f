"""``entrypoint status``: what PID 1 published, the process tree, the cgroup's limits.

Runs next to PID 1 (``docker exec``), never in it: the state file is read
with :mod:`json`, the process tree with psutil (``entrypoint[status]``), the
cgroup files with the standard library.
"""
