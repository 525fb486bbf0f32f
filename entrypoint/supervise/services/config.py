"""``--services-dir``: read and validate the service directories, every problem at once.

Each subdirectory NAME of the services directory is one service, in s6's
service-directory format where the meanings overlap (see docs/services.md for
the table of files and how each differs from s6 / s6-rc).  Validation is
offline and complete: :func:`problems` reports everything wrong in one pass,
as ``DIR/NAME/FILE: message`` lines, so ``check --services-dir`` in CI and
``run`` at start-up refuse exactly the same directories, and a user fixes
them all in one go rather than one per container start.

Nothing here resolves users or connects anywhere: ``user`` is checked for
its form only (the runtime resolves it with :mod:`entrypoint.supervise.parts.user`),
``ready`` with the ``--wait`` parser.  Imported by PID 1: standard library
only, plain classes with ``__slots__``.
"""

from __future__ import annotations

import os

from entrypoint.errors import ServicesError, UsageError
from entrypoint.options import RESTART_POLICIES
from entrypoint.supervise.parts import signals
from entrypoint.supervise.parts.user import split_spec

DEFAULT_TIMEOUT_UP = 30.0
DEFAULT_RESTART = "always"
#: The lowest open-files soft limit containers run with is 1024: a higher fd
#: could not be dup2'ed into the service at all.
MAX_NOTIFICATION_FD = 1023
#: A configuration file larger than this is a mistake (a binary copied there), not one to read.
MAX_FILE_SIZE = 64 * 1024
#: s6-rc's ``type`` file: only long-running services have a ``run`` to supervise.
SUPPORTED_TYPES = ("longrun",)


class Service:
    """One service directory, validated: what the runtime needs to start, watch and stop it."""

    __slots__ = ("dependencies", "directory", "down_signal", "essential", "finish", "name",
                 "notification_fd", "ready", "restart", "run", "timeout_up", "user")

    def __init__(
        self,
        name: str,
        directory: str,
        run: str,
        *,
        finish: str | None = None,
        dependencies: tuple[str, ...] = (),
        notification_fd: int | None = None,
        ready: str | None = None,
        timeout_up: float = DEFAULT_TIMEOUT_UP,
        restart: str = DEFAULT_RESTART,
        essential: bool = False,
        down_signal: int = signals.SIGTERM,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.directory = directory  # absolute DIR/NAME: the service's working directory
        self.run = run  # absolute DIR/NAME/run
        self.finish = finish
        self.dependencies = dependencies
        self.notification_fd = notification_fd
        self.ready = ready  # one --wait URL
        self.timeout_up = timeout_up  # seconds
        self.restart = restart
        self.essential = essential
        self.down_signal = down_signal
        self.user = user  # USER[:GROUP], unresolved

    def __repr__(self) -> str:
        return f"Service({self.name!r}, dependencies={self.dependencies!r})"


class ServiceProblem:
    """One thing wrong: ``path`` is DIR/NAME/FILE (or DIR itself), ``message`` what is wrong with it."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def text(self) -> str:
        return f"{self.path}: {self.message}"

    __str__ = text

    def __repr__(self) -> str:
        return f"ServiceProblem({self.path!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceProblem) and (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


# -- the public functions ----------------------------------------------------------------------


def problems(services_dir: str) -> tuple[list[Service], list[ServiceProblem]]:
    """Every service without a problem of its own, and every problem of the directory.

    A missing ``services_dir`` is no services and no problem (``run``'s default
    directory need not exist).  Entries whose name starts with ``.`` and entries
    that are not directories are ignored, as s6-svscan and s6-rc-compile do.
    """
    shown = services_dir.rstrip("/") or "/"
    found: list[ServiceProblem] = []
    try:
        listed = _service_names(services_dir)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [ServiceProblem(shown, f"cannot read the services directory: {_reason(exc)}")]
    readers = [_ServiceDir(shown, services_dir, name) for name in listed]
    parsed = [reader.parse() for reader in readers]
    known = set(listed)
    for reader in readers:
        reader.check_dependencies(known)
    cycles = _cycles(readers)
    for reader in readers:
        found.extend(reader.problems)
    found.extend(_cycle_problems(readers, cycles))
    bad = {reader.name for reader in readers if reader.problems} | {n for cycle in cycles for n in cycle}
    services = [service for service in parsed if service.name not in bad]
    return services, found


def names(services_dir: str) -> list[str]:
    """The service names in ``services_dir``, valid or not, sorted (none when it cannot be read)."""
    try:
        return _service_names(services_dir)
    except OSError:
        return []


def load(services_dir: str) -> list[Service]:
    """The services, or :class:`ServicesError` (exit 78) with one line per problem."""
    services, found = problems(services_dir)
    if found:
        raise ServicesError([problem.text() for problem in found])
    return services


# -- one service directory ---------------------------------------------------------------------


def _service_names(services_dir: str) -> list[str]:
    with os.scandir(services_dir) as entries:
        return sorted(entry.name for entry in entries
                      if not entry.name.startswith(".") and entry.is_dir())


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _lines(text: str) -> list[str]:
    """Non-blank lines, stripped, without ``#`` comment lines (s6-rc's ``dependencies`` rule)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


class _ServiceDir:
    """Reads one DIR/NAME, collecting its problems rather than stopping at the first."""

    __slots__ = ("dep_sources", "directory", "name", "problems", "shown")

    def __init__(self, shown_dir: str, services_dir: str, name: str) -> None:
        self.name = name
        self.shown = f"{shown_dir}/{name}" if shown_dir != "/" else f"/{name}"
        self.directory = os.path.abspath(os.path.join(services_dir, name))
        self.problems: list[ServiceProblem] = []
        #: dependency -> the FILE that names it ("dependencies" or "dependencies.d/DEP")
        self.dep_sources: dict[str, str] = {}

    def problem(self, file: str, message: str) -> None:
        self.problems.append(ServiceProblem(f"{self.shown}/{file}" if file else self.shown, message))

    def path(self, file: str) -> str:
        return os.path.join(self.directory, file)

    def exists(self, file: str) -> bool:
        return os.path.lexists(self.path(file))

    def read(self, file: str) -> str | None:
        """The file's text; None when absent, or unreadable (then a problem is recorded)."""
        if not self.exists(file):
            return None
        try:
            with open(self.path(file), "rb") as stream:
                data = stream.read(MAX_FILE_SIZE + 1)
        except OSError as exc:
            self.problem(file, f"cannot read: {_reason(exc)}")
            return None
        if len(data) > MAX_FILE_SIZE:
            self.problem(file, f"larger than {MAX_FILE_SIZE // 1024} KiB: not a configuration file")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(file, "not UTF-8 text")
            return None

    # -- the files ----------------------------------------------------------------------------

    def parse(self) -> Service:
        if "\n" in self.name or "\r" in self.name:
            self.problem("", "a service name cannot contain a line break")
        long_running = self._type()
        run = self._executable("run", required=long_running)
        finish = self._executable("finish", required=False)
        notification_fd = self._notification_fd()
        ready = self._ready()
        if self.exists("notification-fd") and self.exists("ready"):
            self.problem("ready", "notification-fd is set too: a service is made ready by one of them, "
                                  "not both")
        return Service(
            self.name, self.directory, run or self.path("run"),
            finish=finish,
            dependencies=self._dependencies(),
            notification_fd=notification_fd,
            ready=ready,
            timeout_up=self._timeout_up(),
            restart=self._restart(),
            essential=self.exists("essential"),
            down_signal=self._down_signal(),
            user=self._user(),
        )

    def _type(self) -> bool:
        """s6-rc's ``type``: a oneshot or a bundle has no ``run`` here; say so instead of "no run"."""
        text = self.read("type")
        if text is None or text.strip() in SUPPORTED_TYPES:
            return True
        self.problem("type", f"s6-rc type {text.strip()!r} is not supported: only long-running services "
                             "(longrun, a run file) are; run a oneshot's up script as a hook "
                             "(--hooks-dir) instead")
        return False

    def _executable(self, file: str, *, required: bool) -> str | None:
        path = self.path(file)
        if not self.exists(file):
            if required:
                self.problem(file, "missing: every service needs an executable run file")
            return None
        try:
            st = os.stat(path)
        except OSError as exc:
            self.problem(file, f"cannot read: {_reason(exc)}")
            return None
        if not os.path.isfile(path):
            self.problem(file, "not a regular file")
        elif not st.st_mode & 0o111:
            self.problem(file, "not executable (chmod +x)")
        else:
            return path
        return None

    def _dependencies(self) -> tuple[str, ...]:
        text = self.read("dependencies")
        for dep in _lines(text or ""):
            self.dep_sources.setdefault(dep, "dependencies")
        if self.exists("dependencies.d"):
            path = self.path("dependencies.d")
            if not os.path.isdir(path):
                self.problem("dependencies.d", "not a directory (s6-rc: one empty file per dependency)")
            else:
                try:
                    entries = sorted(name for name in os.listdir(path) if not name.startswith("."))
                except OSError as exc:
                    self.problem("dependencies.d", f"cannot read: {_reason(exc)}")
                    entries = []
                for dep in entries:
                    self.dep_sources.setdefault(dep, f"dependencies.d/{dep}")
        return tuple(self.dep_sources)

    def check_dependencies(self, known: set[str]) -> None:
        for dep, file in self.dep_sources.items():
            if dep == self.name:
                self.problem(file, f"{self.name} depends on itself")
            elif dep == "base" and file == "dependencies.d/base":
                # s6-overlay's own bundle: every copied s6-rc.d longrun has this file
                self.problem(file, "unknown service 'base' (s6-overlay's base bundle: here templates, hooks "
                                   "and waits always come first; delete dependencies.d/base)")
            elif dep not in known:
                self.problem(file, f"unknown service {dep!r} (no directory of that name)")

    def _notification_fd(self) -> int | None:
        text = self.read("notification-fd")
        if text is None:
            return None
        word = text.strip()
        if not (word.isascii() and word.isdigit()):
            self.problem("notification-fd", f"expected a file descriptor number (3 or more), got {word!r}")
            return None
        fd = int(word)
        if fd < 3:
            self.problem("notification-fd", f"{fd} is standard {('input', 'output', 'error')[fd]}: "
                                            "use a number of 3 or more")
            return None
        if fd > MAX_NOTIFICATION_FD:
            self.problem("notification-fd", f"{fd} is too large (at most {MAX_NOTIFICATION_FD})")
            return None
        return fd

    def _ready(self) -> str | None:
        text = self.read("ready")
        if text is None:
            return None
        urls = _lines(text)
        if len(urls) != 1:
            self.problem("ready", "expected one --wait URL (tcp://, http(s)://, unix://, file://), "
                                  f"found {len(urls)}")
            return None
        # only for a ready file: PID 1 stays small
        from entrypoint.supervise.steps.waits import parse_wait_url

        try:
            parse_wait_url(urls[0])
        except UsageError as exc:
            self.problem("ready", f"bad URL: {_wait_reason(str(exc))}")
            return None
        return urls[0]

    def _timeout_up(self) -> float:
        text = self.read("timeout-up")
        if text is None:
            return DEFAULT_TIMEOUT_UP
        word = text.strip()
        try:
            if "_" in word:
                raise ValueError(word)
            seconds = float(word)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds < float("inf"):  # also NaN
            self.problem("timeout-up", f"expected seconds greater than 0 (e.g. 30 or 2.5), got {word!r}")
            return DEFAULT_TIMEOUT_UP
        return seconds

    def _restart(self) -> str:
        text = self.read("restart")
        if text is None:
            return DEFAULT_RESTART
        word = text.strip()
        if word not in RESTART_POLICIES:
            self.problem("restart", f"expected always, on-failure or no, got {word!r}")
            return DEFAULT_RESTART
        return word

    def _down_signal(self) -> int:
        text = self.read("down-signal")
        if text is None:
            return signals.SIGTERM
        word = text.strip()
        try:
            return signals.parse(word)
        except ValueError:
            self.problem("down-signal", f"not a signal: {word!r} (expected a name such as TERM or "
                                        "SIGTERM, or a number)")
            return signals.SIGTERM

    def _user(self) -> str | None:
        text = self.read("user")
        if text is None:
            return None
        spec = text.strip()
        parts = split_spec(spec)
        # Offline, /etc/passwd and /etc/group cannot be asked; what they could never hold (a blank,
        # a second colon) is refused here already.
        if parts is None or ":" in (parts[1] or "") or any(c.isspace() for c in spec):
            self.problem("user", f"expected USER[:GROUP] (a name or a number each), got {spec!r}")
            return None
        return spec


def _wait_reason(message: str) -> str:
    """parse_wait_url's message without its ``--wait URL: `` head (the URL may hold a password)."""
    head, sep, reason = message.partition(": ")
    return reason if sep and head.startswith("--wait ") else message


# -- the dependency graph ----------------------------------------------------------------------


def _edges(readers: list[_ServiceDir]) -> dict[str, list[str]]:
    known = {reader.name for reader in readers}
    return {reader.name: [d for d in reader.dep_sources if d in known and d != reader.name]
            for reader in readers}


def _reachable(edges: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name])
    return seen


def _cycles(readers: list[_ServiceDir]) -> list[list[str]]:
    """Each strongly connected group of two or more services once, as a cycle from its first name.

    Quadratic in the number of services, which is a handful: simpler than Tarjan, no recursion.
    """
    edges = _edges(readers)
    reach = {name: _reachable(edges, name) for name in edges}
    done: set[str] = set()
    cycles: list[list[str]] = []
    for name in sorted(edges):
        if name in done or name not in reach[name]:
            continue
        group = {other for other in reach[name] if name in reach[other]}
        done |= group
        cycles.append(_cycle_path(edges, name, group))
    return cycles


def _cycle_path(edges: dict[str, list[str]], start: str, group: set[str]) -> list[str]:
    """The shortest way from ``start`` back to itself inside ``group``: [start, ..., start]."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for name in frontier:
            for dep in edges[name]:
                if dep not in group:
                    continue
                if dep == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if dep not in parent:
                    parent[dep] = name
                    following.append(dep)
        frontier = following
    return [start, start]  # not reached: start is in its own group


def _cycle_problems(readers: list[_ServiceDir], cycles: list[list[str]]) -> list[ServiceProblem]:
    """One line per cycle, on the file of its first service that names the next one."""
    by_name = {reader.name: reader for reader in readers}
    found = []
    for cycle in cycles:
        first = by_name[cycle[0]]
        file = first.dep_sources[cycle[1]]
        found.append(ServiceProblem(f"{first.shown}/{file}", "dependency cycle: " + " -> ".join(cycle)))
    return found

