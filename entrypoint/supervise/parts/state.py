"""``--state-file``: PID 1 publishes its phase for ``entrypoint status``.

The file is rewritten atomically (a temporary file in the same directory,
then ``rename``) and only when something in it changes, so an idle
container writes nothing and wakes for nothing.  The format is fixed
(``entrypoint status`` reads it)::

    {"version": 1, "runtime_pid": 1, "phase": "running",
     "app": {"pid": 7, "restarts": 0, "last_exit_code": null, "command": ["nginx"]},
     "changed_at": 1764581000.123}

Not :mod:`json`: its encoder imports :mod:`re`, about 1 MiB of resident
memory in PID 1 for good, to write one small object.  :func:`dumps` below
produces what ``json.dumps`` (``ensure_ascii=True``) produces for these
shapes; the tests hold it to that.
"""

from __future__ import annotations

import os
import time

from entrypoint import log
from entrypoint.fdio import write_all

DEFAULT_STATE_FILE = "/run/entrypoint/state.json"
VERSION = 1

RENDERING = "rendering"
HOOKS = "hooks"
WAITING = "waiting"
STARTING = "starting"  # the services start (COMMAND, if any, once every one is ready)
RUNNING = "running"
RESTARTING = "restarting"
STOPPING = "stopping"
FINISHING = "finishing"
PHASES = (RENDERING, HOOKS, WAITING, STARTING, RUNNING, RESTARTING, STOPPING, FINISHING)

TYPE_CHECKING = False
if TYPE_CHECKING:
    Value = None | bool | int | float | str | list["Value"] | dict[str, "Value"]

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _string(text: str) -> str:
    """A JSON string literal, ASCII only, as ``json.dumps`` writes it (lone surrogates included)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0x20 <= code < 0x7F and ch not in '"\\':
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def dumps(value: Value) -> str:
    """JSON text for None, bools, ints, finite floats, strings, lists and str-keyed dicts."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class StateFile:
    """The published state; :meth:`update` writes only when a field really changes.

    ``path`` None (or a directory that cannot be created) disables it: the
    feature costs nothing then, and its absence is only a debug line.
    """

    def __init__(self, path: str | None, command: list[str]) -> None:
        self.path = path
        self.command = list(command)
        self.phase: str | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit_code: int | None = None
        self.changed_at = 0.0
        self.writes = 0
        #: --services-dir: one entry per service (name, state, pid, restarts, last_exit_code);
        #: None without services (the file then has no ``services`` key, as before 0.3)
        self.services: list[dict[str, Value]] | None = None
        if path is not None and not _make_dir(path):
            self.path = None

    def update(self, phase: str | None = None, *, pid: int | bool | None = False,
               restarts: int | None = None, last_exit_code: int | bool | None = False) -> bool:
        """Change some fields (``False`` = leave as is; ``pid=None`` = no app); True if written."""
        new_phase = self.phase if phase is None else phase
        new_pid = self.pid if pid is False else pid
        new_restarts = self.restarts if restarts is None else restarts
        new_code = self.last_exit_code if last_exit_code is False else last_exit_code
        assert new_pid is not True and new_code is not True
        if (new_phase, new_pid, new_restarts, new_code) == (
                self.phase, self.pid, self.restarts, self.last_exit_code):
            return False
        self.phase, self.pid, self.restarts, self.last_exit_code = new_phase, new_pid, new_restarts, new_code
        self.changed_at = time.time()
        return self._write()

    def update_services(self, services: list[dict[str, Value]]) -> bool:
        """The services' entries (see :meth:`entrypoint.supervise.unit.Unit.document`); True if written."""
        if services == self.services:
            return False
        self.services = services
        self.changed_at = time.time()
        return self._write()

    def document(self) -> dict[str, Value]:
        """What the file holds (the exact keys ``entrypoint status`` reads)."""
        document = self._app_document()
        if self.services is not None:
            document["services"] = list(self.services)
        return document

    def _app_document(self) -> dict[str, Value]:
        return {
            "version": VERSION,
            "runtime_pid": os.getpid(),
            "phase": self.phase,
            "app": {"pid": self.pid, "restarts": self.restarts, "last_exit_code": self.last_exit_code,
                    "command": list(self.command)},
            "changed_at": self.changed_at,
        }

    def _write(self) -> bool:
        path = self.path
        if path is None:
            return False
        data = (dumps(self.document()) + "\n").encode("ascii")
        directory, name = os.path.split(path)
        # Random, not the pid: every container's PID 1 is pid 1, and two may share a directory.
        temp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            os.rename(temp, path)
        except OSError as exc:
            log.debug(f"cannot write state file {path}: {exc.strerror}")
            try:
                os.unlink(temp)
            except OSError:
                pass
            return False
        self.writes += 1
        return True


def _make_dir(path: str) -> bool:
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        log.debug(f"no state file: cannot create {directory}: {exc.strerror}")
        return False
    if not os.path.isdir(directory):
        log.debug(f"no state file: {directory} is not a directory")
        return False
    return True
