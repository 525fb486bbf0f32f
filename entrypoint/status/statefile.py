"""Reading the state file PID 1 writes (``entrypoint/supervise/parts/state.py``, format v1).

The writer is the only source of truth for the format; this side validates
every field by hand (no pydantic, not even dataclasses: ``status`` runs as a
health check inside a 32 MiB container, so every MiB it loads counts) and
turns anything unreadable -- missing, truncated, garbage, another version --
into one :class:`~entrypoint.errors.StatusUnavailable` line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple, TypeGuard

from entrypoint.errors import StatusUnavailable
from entrypoint.supervise.parts.state import DEFAULT_STATE_FILE, PHASES, VERSION
from entrypoint.supervise.unit import SERVICE_STATES

STATE_FILE_VARIABLE = "ENTRYPOINT_STATE_FILE"


class AppState(NamedTuple):
    pid: int | None
    restarts: int
    last_exit_code: int | None
    command: list[str]


class ServiceState(NamedTuple):
    """One entry of ``services`` (``--services-dir``)."""

    name: str
    state: str
    pid: int | None
    restarts: int
    last_exit_code: int | None
    essential: bool


class PublishedState(NamedTuple):
    """One state file, validated."""

    path: str
    runtime_pid: int
    phase: str
    app: AppState
    changed_at: float
    services: list[ServiceState] = []  # noqa: RUF012 - a NamedTuple default, never mutated


def state_file_path(option: str | None) -> str:
    """``--state-file``, else ``ENTRYPOINT_STATE_FILE``, else the default (as ``run`` chooses)."""
    return option or os.environ.get(STATE_FILE_VARIABLE) or DEFAULT_STATE_FILE


def read_state(path: str) -> PublishedState:
    """The state at ``path``; :class:`StatusUnavailable` with one line for anything else."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        raise StatusUnavailable(
            f"no state file at {path}: PID 1 is not entrypoint run, or it publishes no state "
            f"(another --state-file / {STATE_FILE_VARIABLE}?)") from None
    except IsADirectoryError:
        raise StatusUnavailable(f"state file {path} is a directory") from None
    except OSError as exc:
        raise StatusUnavailable(f"cannot read state file {path}: {exc.strerror}") from None
    if not data.strip():
        raise StatusUnavailable(f"state file {path} is empty")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StatusUnavailable(f"state file {path} is not text (not written by entrypoint?)") from None
    except json.JSONDecodeError as exc:
        text = data.strip()
        cut = " (truncated)" if text.startswith(b"{") and not text.endswith(b"}") else ""
        raise StatusUnavailable(f"state file {path} is not valid JSON{cut}: {exc}") from None
    return parse_state(document, path)


def parse_state(document: Any, path: str) -> PublishedState:
    """Check every field of a decoded state document."""
    def bad(what: str) -> StatusUnavailable:
        return StatusUnavailable(f"state file {path} is not a valid entrypoint state: {what}")

    if not isinstance(document, dict):
        raise bad(f"a JSON {type(document).__name__} instead of an object")
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):
        raise StatusUnavailable(f"state file {path} has format version {version!r}; "
                                f"this entrypoint reads version {VERSION}")
    runtime_pid = document.get("runtime_pid")
    if not _is_int(runtime_pid) or runtime_pid <= 0:
        raise bad(f"runtime_pid {runtime_pid!r}")
    phase = document.get("phase")
    if phase not in PHASES:
        raise bad(f"phase {phase!r} (expected one of {', '.join(PHASES)})")
    app = document.get("app")
    if not isinstance(app, dict):
        raise bad("no app object")
    pid, restarts, code, command = (app.get(k) for k in ("pid", "restarts", "last_exit_code", "command"))
    if pid is not None and (not _is_int(pid) or pid <= 0):
        raise bad(f"app.pid {pid!r}")
    if not _is_int(restarts) or restarts < 0:
        raise bad(f"app.restarts {restarts!r}")
    if code is not None and not _is_int(code):
        raise bad(f"app.last_exit_code {code!r}")
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise bad("app.command is not a list of strings")
    changed_at = document.get("changed_at")
    if (isinstance(changed_at, bool) or not isinstance(changed_at, int | float)
            or not math.isfinite(changed_at)):
        raise bad(f"changed_at {changed_at!r}")
    return PublishedState(path=path, runtime_pid=runtime_pid, phase=phase,
                          app=AppState(pid=pid, restarts=restarts, last_exit_code=code, command=command),
                          changed_at=float(changed_at), services=_services(document, bad))


def _services(document: dict[str, Any], bad: Callable[[str], StatusUnavailable]) -> list[ServiceState]:
    """``services``: absent before 0.3 and without --services-dir."""
    entries = document.get("services", [])
    if not isinstance(entries, list):
        raise bad("services is not a list")
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise bad(f"services entry {entry!r}")
        name = entry["name"]
        state, pid, restarts, code = (entry.get(k) for k in ("state", "pid", "restarts", "last_exit_code"))
        if state not in SERVICE_STATES:
            raise bad(f"service {name}: state {state!r}")
        if pid is not None and (not _is_int(pid) or pid <= 0):
            raise bad(f"service {name}: pid {pid!r}")
        if not _is_int(restarts) or restarts < 0:
            raise bad(f"service {name}: restarts {restarts!r}")
        if code is not None and not _is_int(code):
            raise bad(f"service {name}: last_exit_code {code!r}")
        found.append(ServiceState(name, state, pid, restarts, code, entry.get("essential") is True))
    return found


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
