"""Our process tree, read from /proc with the standard library.

Not psutil: importing it costs about 16 ms and 2-3 MiB of resident memory in
a process that must stay under 12 MiB for the container's whole life, and all
we need is "which live processes descend from us", which is one pass over
``/proc/*/stat``.  (``/proc/PID/task/*/children`` would be cheaper but needs
``CONFIG_PROC_CHILDREN``, which many kernels lack.)

The tree is followed by parent pid, so descendants that left our process
group or session (``setsid``, double forks) are still found: as PID 1 or as a
child subreaper every orphan is re-parented to us.
"""

from __future__ import annotations

import os

from entrypoint import log

PR_SET_CHILD_SUBREAPER = 36


def _read_stat(pid: str) -> tuple[int, str] | None:
    """``(ppid, state)`` of one process, or None if it vanished meanwhile."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    if len(fields) < 2:
        return None
    return int(fields[1]), fields[0].decode("ascii", "replace")


def proc_matches_namespace() -> bool:
    """True when /proc shows our own PID namespace.

    Under ``unshare --pid --fork`` without ``--mount-proc`` /proc is the
    host's: its pids mean other processes than ours, and signalling them
    would hit the host.  Then the tree features stay off.
    """
    try:
        return int(os.readlink("/proc/self")) == os.getpid()
    except (OSError, ValueError):
        return False


def has_children() -> bool:
    """Cheap pre-check for :func:`descendants`, without reaping anything.

    As PID 1 or a subreaper, every live descendant hangs below one of our
    children, so no children at all means an empty tree and no /proc scan
    (which costs milliseconds on a busy host).
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of ``root``, parents before children."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for entry in names:
        if not entry.isdigit():
            continue
        info = _read_stat(entry)
        if info is None or info[1] in ("Z", "X"):
            continue
        children.setdefault(info[0], []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass  # gone meanwhile, or not ours to signal: nothing to do


def become_subreaper() -> bool:
    """Ask the kernel to re-parent our orphans to us (Linux >= 3.4).

    ctypes is imported only here, when we are not PID 1, because it costs
    memory that PID 1 never needs.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            return True
        err = ctypes.get_errno()
        log.warn(f"cannot become a child subreaper: {os.strerror(err)}; orphans will not be reaped")
    except (OSError, AttributeError, ImportError) as exc:
        log.warn(f"cannot become a child subreaper: {exc}; orphans will not be reaped")
    return False
