"""The process tree below PID 1, with psutil (the ``status`` extra).

psutil is imported by the caller through :func:`entrypoint.extras.require`
and passed in, so this module imports nothing heavy and a missing extra is
one line.  PID 1 has its own, smaller walker (``supervise/parts/tree.py``): it
needs only pids; ``status`` needs users, RSS, CPU and command lines on every
platform psutil knows, which is its job.
"""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any, NamedTuple


class ProcessRow(NamedTuple):
    pid: int
    ppid: int | None
    user: str | None
    status: str | None  # psutil's words: "running", "sleeping", "zombie", "stopped", ...
    rss_bytes: int | None
    cpu_percent: float | None
    cmdline: list[str]
    name: str | None

    @property
    def zombie(self) -> bool:
        return self.status == "zombie"


def is_entrypoint(cmdline: list[str]) -> bool:
    """Whether a command line is ours: ``.../entrypoint ...`` or ``python -m entrypoint ...``."""
    for i, arg in enumerate(cmdline[:4]):
        if os.path.basename(arg) == "entrypoint" or arg == "-mentrypoint":
            return True
        if arg == "-m" and i + 1 < len(cmdline) and cmdline[i + 1] == "entrypoint":
            return True
    return False


def process_tree(psutil: ModuleType, root: int, *, interval: float) -> list[ProcessRow]:
    """``root`` and everything below it, parents first; CPU % sampled over ``interval`` s.

    ``interval`` 0 gives the average since each process started (as ``ps``
    does) instead of a sample.  Processes that exit meanwhile are left out.
    """
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return []
    if interval > 0:
        for proc in procs:
            _quiet(psutil, proc.cpu_percent, None)
        time.sleep(interval)  # a measuring window, not synchronisation
    rows = []
    for proc in procs:
        row = _row(psutil, proc, interval)
        if row is not None:
            rows.append(row)
    return _parents_first(rows, root)


def _row(psutil: ModuleType, proc: Any, interval: float) -> ProcessRow | None:
    try:
        with proc.oneshot():
            status = proc.status()
            ppid = proc.ppid()
            name = _quiet(psutil, proc.name)
            user = _quiet(psutil, proc.username)
            memory = _quiet(psutil, proc.memory_info)
            cmdline = _quiet(psutil, proc.cmdline) or []
            cpu = _quiet(psutil, proc.cpu_percent, None) if interval > 0 else _lifetime_cpu(psutil, proc)
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return ProcessRow(proc.pid, None, None, None, None, None, [], None)
    zombie = status == "zombie"
    return ProcessRow(pid=proc.pid, ppid=ppid, user=user, status=status,
                      rss_bytes=None if zombie or memory is None else memory.rss,
                      cpu_percent=None if zombie or cpu is None else round(cpu, 1),
                      cmdline=list(cmdline), name=name)


def _lifetime_cpu(psutil: ModuleType, proc: Any) -> float | None:
    times = _quiet(psutil, proc.cpu_times)
    started = _quiet(psutil, proc.create_time)
    if times is None or started is None:
        return None
    elapsed = max(time.time() - started, 1e-3)
    return float(100.0 * (times.user + times.system) / elapsed)


def _quiet(psutil: ModuleType, call: Any, *args: Any) -> Any:
    """One attribute, or None when the kernel will not tell us (zombie, another user)."""
    try:
        return call(*args)
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _parents_first(rows: list[ProcessRow], root: int) -> list[ProcessRow]:
    """Depth-first from ``root``, children by pid: the order of a tree listing."""
    by_parent: dict[int | None, list[ProcessRow]] = {}
    for row in rows:
        by_parent.setdefault(row.ppid, []).append(row)
    out: list[ProcessRow] = []
    todo = [row for row in rows if row.pid == root]
    seen: set[int] = set()
    while todo:
        row = todo.pop()
        if row.pid in seen:
            continue
        seen.add(row.pid)
        out.append(row)
        todo.extend(sorted(by_parent.get(row.pid, []), key=lambda r: r.pid, reverse=True))
    out.extend(row for row in rows if row.pid not in seen)
    return out


def depth_of(rows: list[ProcessRow]) -> dict[int, int]:
    """pid -> depth below the first row (for indenting the text listing)."""
    depth: dict[int, int] = {}
    for row in rows:
        depth[row.pid] = depth.get(row.ppid, -1) + 1 if row.ppid in depth else 0
    return depth
