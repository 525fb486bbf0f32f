"""One status report: PID 1's published state checked against the live system.

The exit code rule of cli.md lives here: healthy only while the phase is
``running`` and the app's pid is alive (not a zombie) and PID 1's child.
"""

from __future__ import annotations

import shlex
import time
from types import ModuleType
from typing import Any, NamedTuple

from entrypoint.errors import StatusUnavailable
from entrypoint.status.cgroup import CgroupFigures
from entrypoint.status.processes import ProcessRow, depth_of, is_entrypoint, process_tree
from entrypoint.status.statefile import PublishedState
from entrypoint.supervise.parts.state import RUNNING
from entrypoint.supervise.unit import READY

#: psutil derives a start time from boot time and clock ticks; allow for its rounding
_START_SLACK = 2.0


class Report(NamedTuple):
    state: PublishedState
    app_alive: bool
    processes: list[ProcessRow]
    cgroup: CgroupFigures

    @property
    def healthy(self) -> bool:
        """Phase running, the app (if there is one) alive, every essential service ready."""
        state = self.state
        app_ok = self.app_alive or not state.app.command
        essential_ok = all(s.state == READY for s in state.services if s.essential)
        return state.phase == RUNNING and app_ok and essential_ok


def build_report(state: PublishedState, psutil: ModuleType, cgroup: CgroupFigures,
                 *, interval: float) -> Report:
    """Check that the state's PID 1 is alive and ours, then gather its tree."""
    pid, path = state.runtime_pid, state.path
    try:
        runtime = psutil.Process(pid)
        cmdline = runtime.cmdline()
        started = runtime.create_time()
    except psutil.NoSuchProcess:
        raise StatusUnavailable(f"stale state file {path}: its runtime (pid {pid}) is not running, "
                                "so PID 1 is not entrypoint") from None
    except psutil.AccessDenied:
        raise StatusUnavailable(f"not allowed to inspect pid {pid} (named by {path})") from None
    if not is_entrypoint(cmdline):
        shown = shlex.join(cmdline[:3]) or "a kernel thread"
        raise StatusUnavailable(f"stale state file {path}: pid {pid} is not entrypoint ({shown})")
    if started > state.changed_at + _START_SLACK:
        raise StatusUnavailable(f"stale state file {path}: written before pid {pid} started")
    rows = process_tree(psutil, pid, interval=interval)
    return Report(state=state, app_alive=_app_alive(psutil, state), processes=rows, cgroup=cgroup)


def _app_alive(psutil: ModuleType, state: PublishedState) -> bool:
    if state.app.pid is None:
        return False
    try:
        app = psutil.Process(state.app.pid)
        return bool(app.status() != "zombie" and app.ppid() == state.runtime_pid)
    except psutil.Error:
        return False


def as_json(report: Report) -> dict[str, Any]:
    """The ``--format json`` document (keys per cli.md, plus a few more)."""
    state, cg = report.state, report.cgroup
    return {
        "phase": state.phase,
        "healthy": report.healthy,
        "runtime_pid": state.runtime_pid,
        "changed_at": state.changed_at,
        "app": {"pid": state.app.pid, "alive": report.app_alive, "restarts": state.app.restarts,
                "last_exit_code": state.app.last_exit_code, "command": state.app.command},
        "services": [s._asdict() for s in state.services],
        "processes": [{"pid": r.pid, "ppid": r.ppid, "user": r.user, "status": r.status,
                       "zombie": r.zombie, "rss_bytes": r.rss_bytes, "cpu_percent": r.cpu_percent,
                       "cmdline": r.cmdline} for r in report.processes],
        "memory": {"limit_bytes": cg.memory_limit, "usage_bytes": cg.memory_usage,
                   "cgroup": cg.memory_version},
        "cpu": {"quota_cores": cg.cpu_quota_cores, "quota_us": cg.cpu_quota_us,
                "period_us": cg.cpu_period_us, "cgroup": cg.cpu_version},
    }


def unavailable_json(message: str) -> dict[str, Any]:
    return {"phase": None, "healthy": False, "error": message}


def as_text(report: Report, now: float | None = None) -> str:
    state, app = report.state, report.state.app
    now = time.time() if now is None else now
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.changed_at))
    lines = [f"phase: {state.phase} since {since} ({_ago(now - state.changed_at)} ago), "
             f"runtime pid {state.runtime_pid}"]
    if app.pid is None:
        alive = "no app process"
    else:
        alive = f"pid {app.pid} " + ("alive" if report.app_alive else "NOT RUNNING")
    code = "none" if app.last_exit_code is None else str(app.last_exit_code)
    if app.command:
        lines.append(f"app: {alive}, restarts {app.restarts}, last exit code {code}: "
                     f"{shlex.join(app.command)}")
    else:
        lines.append("app: none (services only)")
    for s in state.services:
        pid = "no process" if s.pid is None else f"pid {s.pid}"
        shown = "none" if s.last_exit_code is None else str(s.last_exit_code)
        lines.append(f"service {s.name}: {s.state}, {pid}, restarts {s.restarts}, last exit code {shown}"
                     + (", essential" if s.essential else ""))
    lines.append(_cgroup_line(report.cgroup))
    lines.append(f"{'PID':>7} {'PPID':>7} {'USER':<10} {'STATUS':<9} {'RSS':>8} {'CPU%':>5}  COMMAND")
    depth = depth_of(report.processes)
    for row in report.processes:
        command = shlex.join(row.cmdline) if row.cmdline else f"[{row.name or '?'}]"
        if row.zombie:
            command += "  <defunct: ZOMBIE, not reaped>"
        lines.append(f"{row.pid:>7} {_or(row.ppid):>7} {_or(row.user)[:10]:<10} {_or(row.status)[:9]:<9} "
                     f"{_size(row.rss_bytes):>8} {_or(row.cpu_percent):>5}  "
                     f"{'  ' * depth.get(row.pid, 0)}{command}")
    zombies = sum(row.zombie for row in report.processes)
    if zombies:
        lines.append(f"{zombies} zombie process(es)")
    lines.append(_verdict(report))
    return "\n".join(lines) + "\n"


def _verdict(report: Report) -> str:
    state = report.state
    if report.healthy:
        if not state.services:
            return "healthy: the app is running"
        return "healthy: " + ("the app is running, " if state.app.command else "") + \
            "every essential service is ready"
    if state.phase != RUNNING:
        return f"unhealthy: phase {state.phase}"
    if state.app.command and not report.app_alive:
        return "unhealthy: the app is not alive"
    down = [s.name for s in state.services if s.essential and s.state != READY]
    return f"unhealthy: essential service(s) not ready: {', '.join(down)}"


def _cgroup_line(cg: CgroupFigures) -> str:
    if cg.memory_version is None:
        memory = "memory: no cgroup memory controller found"
    else:
        limit = "no limit" if cg.memory_limit is None else f"limit {_size(cg.memory_limit)}"
        share = ""
        if cg.memory_limit and cg.memory_usage is not None:
            share = f" ({100 * cg.memory_usage / cg.memory_limit:.0f}%)"
        memory = f"memory: {_size(cg.memory_usage)} used{share}, {limit} (cgroup {cg.memory_version})"
    cores = cg.cpu_quota_cores
    cpu = "cpu: no quota" if cores is None else f"cpu: quota {cores:.2f} CPU"
    return f"{memory}; {cpu}"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    if value >= 1 << 30:
        return f"{value / (1 << 30):.1f}G"
    return f"{value / (1 << 20):.1f}M"


def _or(value: object) -> str:
    return "-" if value is None else str(value)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
