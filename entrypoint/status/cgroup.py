"""The container's memory limit and usage and its CPU quota, from its cgroup (v1 or v2).

Standard library only.  Which cgroup: the one ``/proc/PID/cgroup`` names for
PID 1 (``docker exec`` puts ``status`` in the same cgroup, ``nsenter`` does
not, PID 1's is right in both).  Where its files are: the mount points in
``/proc/self/mountinfo``, minus the mount's own root (a container without a
cgroup namespace sees ``/docker/ID`` in ``/proc/1/cgroup`` and that same
directory mounted as the hierarchy's root).  Hybrid hosts (v1 controllers
plus an empty v2 ``unified`` tree) are read where the controller is bound.

The figures are the effective ones: v1's ``hierarchical_memory_limit`` and
v2's smallest ``memory.max`` up the tree, since a limit set on a parent
(a Kubernetes pod, a systemd slice) binds the container as much as its own.
Plain ``os.path`` strings and named tuples, not pathlib and dataclasses:
together those add 1.7 MiB to a health check that runs in the container.
"""

from __future__ import annotations

import os
from typing import NamedTuple

#: v1 reports "no limit" as the largest page-aligned counter (9223372036854771712 on 4 KiB pages)
_V1_UNLIMITED = 1 << 62


class Mount(NamedTuple):
    root: str  # the directory of the hierarchy that is mounted here
    point: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    options: frozenset[str]  # super options: the v1 controllers ("memory", "cpu", ...)


class CgroupFigures(NamedTuple):
    memory_version: str | None = None  # "v1" / "v2" / None when no memory controller was found
    memory_limit: int | None = None  # bytes; None = unlimited or unknown
    memory_usage: int | None = None  # bytes
    cpu_version: str | None = None
    cpu_quota_us: int | None = None  # None = no quota
    cpu_period_us: int | None = None

    @property
    def cpu_quota_cores(self) -> float | None:
        if self.cpu_quota_us is None or not self.cpu_period_us:
            return None
        return self.cpu_quota_us / self.cpu_period_us


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """``/proc/PID/cgroup`` -> (v1 controller -> path, the v2 path or None)."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
            continue
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return v1, v2


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of ``/proc/PID/mountinfo``."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(Mount(root=_unescape(fields[3]), point=_unescape(fields[4]), fstype=tail[0],
                            options=frozenset(tail[2].split(","))))
    return mounts


def _directory(mount: Mount, path: str) -> str:
    """Where the cgroup ``path`` is under ``mount`` (its root stripped when it is a prefix)."""
    root = mount.root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    candidate = os.path.normpath(os.path.join(mount.point, path.lstrip("/")))
    return candidate if os.path.isdir(candidate) else mount.point


def _read_int(path: str) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _v1_memory(directory: str) -> tuple[int | None, int | None]:
    limit = _read_int(os.path.join(directory, "memory.limit_in_bytes"))
    stat = _read_text(os.path.join(directory, "memory.stat")) or ""
    for line in stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "hierarchical_memory_limit" and value.strip().isdigit():
            limit = int(value) if limit is None else min(limit, int(value))
    if limit is not None and limit >= _V1_UNLIMITED:
        limit = None
    return limit, _read_int(os.path.join(directory, "memory.usage_in_bytes"))


def _v2_memory(mount: Mount, directory: str) -> tuple[int | None, int | None]:
    limit: int | None = None
    top = os.path.normpath(mount.point)
    here = directory
    while True:
        text = (_read_text(os.path.join(here, "memory.max")) or "").strip()
        if text.isdigit():
            limit = int(text) if limit is None else min(limit, int(text))
        parent = os.path.dirname(here)
        if here == top or parent == here or not here.startswith(top.rstrip("/") + "/"):
            break
        here = parent
    return limit, _read_int(os.path.join(directory, "memory.current"))


def _v1_cpu(directory: str) -> tuple[int | None, int | None]:
    quota = _read_int(os.path.join(directory, "cpu.cfs_quota_us"))
    period = _read_int(os.path.join(directory, "cpu.cfs_period_us"))
    return (quota if quota is not None and quota > 0 else None), period


def _v2_cpu(directory: str) -> tuple[int | None, int | None]:
    fields = (_read_text(os.path.join(directory, "cpu.max")) or "").split()
    if len(fields) != 2 or not fields[1].isdigit():
        return None, None
    return (int(fields[0]) if fields[0].isdigit() else None), int(fields[1])


def cgroup_figures(proc_cgroup: str, mountinfo: str) -> CgroupFigures:
    """The figures for the cgroup described by these two files' contents."""
    v1_paths, v2_path = parse_proc_cgroup(proc_cgroup)
    mounts = parse_mountinfo(mountinfo)
    v2_mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    v2_dir = _directory(v2_mount, v2_path) if v2_mount is not None and v2_path is not None else None

    def v1_dir(controller: str) -> str | None:
        if controller not in v1_paths:
            return None
        mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        return None if mount is None else _directory(mount, v1_paths[controller])

    figures = CgroupFigures()
    if (directory := v1_dir("memory")) is not None:
        limit, usage = _v1_memory(directory)
        figures = figures._replace(memory_version="v1", memory_limit=limit, memory_usage=usage)
    elif v2_mount is not None and v2_dir is not None and _has(v2_dir, "memory.current"):
        limit, usage = _v2_memory(v2_mount, v2_dir)
        figures = figures._replace(memory_version="v2", memory_limit=limit, memory_usage=usage)
    if (directory := v1_dir("cpu")) is not None:
        quota, period = _v1_cpu(directory)
        figures = figures._replace(cpu_version="v1", cpu_quota_us=quota, cpu_period_us=period)
    elif v2_dir is not None and _has(v2_dir, "cpu.max"):
        quota, period = _v2_cpu(v2_dir)
        figures = figures._replace(cpu_version="v2", cpu_quota_us=quota, cpu_period_us=period)
    return figures


def _has(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def read_cgroup(pid: int | str = "self", proc: str = "/proc") -> CgroupFigures:
    """The figures of ``pid``'s cgroup, files located through our own mount table."""
    proc_cgroup = _read_text(os.path.join(proc, str(pid), "cgroup"))
    mountinfo = _read_text(os.path.join(proc, "self", "mountinfo"))
    if proc_cgroup is None or mountinfo is None:
        return CgroupFigures()
    return cgroup_figures(proc_cgroup, mountinfo)
