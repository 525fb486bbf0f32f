"""``run --watch``: notice changes to what the templates read, re-render, say whether to reload.

The watcher lives inside PID 1 and adds no thread, no timer and no second
resident process (see ``docs/watch.md`` for the memory budget): inotify
readiness arrives as the real-time signal :attr:`Watcher.signum`, which the
PID-1 loop waits for with ``sigwaitinfo`` like any other signal.  The loop
then calls :meth:`Watcher.drain`, sleeps in ``sigtimedwait`` until
:meth:`Watcher.deadline`, and calls :meth:`Watcher.rerender`, which runs
the render step in a fork of PID 1 (no new interpreter): the render modules,
and Jinja2 or pydantic when a template needs them, are imported in that child
only, so they never load into PID 1.

Paths are watched by their directories as well as by themselves, because a
Kubernetes ConfigMap/Secret volume changes by renaming a new ``..data``
symlink over the old one: the file a plain watch follows is never written,
it is just no longer the one the path leads to.  After any structural event
every watch is re-added from the paths, so the next swap is seen too.
"""

from __future__ import annotations

import os
import stat
import time

from entrypoint import log
from entrypoint.options import split_env_list
from entrypoint.signames import WATCH_SIGNAL as WATCH_SIGNAL
from entrypoint.supervise.parts import inotify, signals
from entrypoint.supervise.steps.results import read_records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


DEFAULT_TEMPLATES_DIR = "/etc/entrypoint/templates"
RENDER_TIMEOUT = 60.0  # a hung --check-cmd must not wedge PID 1 forever

_TEMP_PREFIX = ".entrypoint-"  # render/writer.py's staging files: our own writes
_TEMP_SUFFIX = ".tmp"


class _Interest:
    """Which names in a watched inode matter: all of them, or a few (plus kubelet's ``..*``).

    A plain class, not a dataclass: :mod:`dataclasses` costs PID 1 about 3 MiB.
    """

    __slots__ = ("everything", "names")

    def __init__(self, everything: bool = False, names: set[str] | None = None) -> None:
        self.everything = everything
        self.names: set[str] = names if names is not None else set()

    def wants(self, name: str) -> bool:
        if name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
            return False
        if self.everything or not name:
            return True
        return name in self.names or name.startswith("..")


class Watcher:
    """Watches template sources, env files and secret files; debounces; re-renders."""

    signum: int

    def __init__(self, paths: list[str], *, render: Callable[[int], int | None], quiet_period: float = 0.2,
                 max_wait: float = 2.0, render_timeout: float = RENDER_TIMEOUT) -> None:
        """``render(result_fd)`` is the render step, run in a fork: 0 (or None) for success,
        records of the changed files written to ``result_fd`` (see ``supervise/steps/results.py``)."""
        if quiet_period < 0 or max_wait < 0:
            raise ValueError("quiet_period and max_wait must not be negative")
        self.signum = WATCH_SIGNAL
        self.paths = _unique(os.path.abspath(p) for p in paths)
        self.render = render
        self.quiet_period = quiet_period
        self.max_wait = max_wait
        self.render_timeout = render_timeout
        self._first: float | None = None  # first event of the current burst
        self._last = 0.0  # latest event of the current burst
        self._watches: dict[int, _Interest] = {}
        self._warned: set[str] = set()
        # Blocked before O_ASYNC is set: an unblocked real-time signal's default action is to kill.
        signals.block(self.signum)
        self._ino = inotify.open_inotify()
        self._ino.signal_driven(self.signum)
        self._refresh()

    # -- the loop's interface -------------------------------------------------------------

    def drain(self) -> None:
        """Consume queued notifications and pending events; note a change with its time."""
        # Signals first, events second: an event that arrives in between is read now and
        # leaves at most one spurious signal behind, never an unread event without a signal.
        signals.discard(self.signum)
        relevant = structural = False
        for event in self._ino.read_events():
            if event.mask & inotify.IN_Q_OVERFLOW:
                relevant = structural = True
                continue
            interest = self._watches.get(event.wd)
            if interest is None or not interest.wants(event.name):
                continue
            relevant = True
            structural = structural or bool(event.mask & inotify.STRUCTURAL)
        if structural:
            self._refresh()
        if relevant:
            now = time.monotonic()
            if self._first is None:
                self._first = now
            self._last = now

    def deadline(self) -> float | None:
        """When the debounced re-render is due (``time.monotonic()``); None while idle."""
        if self._first is None:
            return None
        return min(self._last + self.quiet_period, self._first + self.max_wait)

    def rerender(self) -> bool:
        """Render in a child; True when files changed and the app should reload."""
        self._first = None
        report = os.memfd_create("entrypoint-report", os.MFD_CLOEXEC)  # the forked child writes to it
        # No signals while PID 1 sits in waitpid: a writer busy during the render would
        # otherwise queue one real-time signal per event.  What arrives meanwhile is read
        # right after, and starts the next debounce.
        self._ino.set_async(False)
        try:
            code = self._run_child(report)
            if code is None:
                return False
            if code != 0:
                why = f"was killed by signal {code - 128}" if code > 128 else f"failed (exit {code})"
                log.error(f"re-render {why}: old configuration kept, app not reloaded")
                return False
            changed = bool(read_records(report).changed)
        finally:
            os.close(report)
            self._ino.set_async(True)
            self.drain()
        log.info("configuration changed" if changed else "re-rendered: output unchanged, no reload")
        return changed

    def close(self) -> None:
        """Stop watching.  The signal stays blocked: a stray queued one would otherwise kill us."""
        self._ino.close()
        signals.discard(self.signum)

    # -- rendering ------------------------------------------------------------------------

    def _run_child(self, report_fd: int) -> int | None:
        """Exit code of the render fork, or None (already logged) when it could not finish."""
        try:
            pid = os.fork()
        except OSError as exc:
            log.error(f"re-render failed: cannot fork: {exc.strerror}; old configuration kept")
            return None
        if pid == 0:
            self._child(report_fd)
        try:
            os.setpgid(pid, pid)  # also here, so that a timeout can kill the group at once
        except OSError:
            pass
        timed_out = not _wait_exit(pid, self.render_timeout)
        if timed_out:
            log.error(f"re-render took longer than {self.render_timeout:g}s and was killed; "
                      "old configuration kept")
            _kill_group(pid)
        _, status = os.waitpid(pid, 0)  # this pid only: PID 1 reaps everything else
        if timed_out:
            return None
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

    def _child(self, report_fd: int) -> None:
        """In the fork: own process group (a timeout kills a --check-cmd with it), signals
        unblocked, no stdin; then the render step.  Never returns."""
        from entrypoint.supervise.parts.spawn import finish_child

        try:
            os.setpgid(0, 0)
            signals.unblock_all()  # as fork_step does; PID 1 has no handlers to reset
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        except OSError:
            os._exit(70)
        finish_child("re-rendering the templates", lambda: self.render(report_fd))

    # -- watches --------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Re-add every watch from the paths; drop the ones no path leads to any more."""
        fresh: dict[int, _Interest] = {}
        for path in self.paths:
            self._watch_path(path, fresh)
        for wd in set(self._watches) - set(fresh):
            try:
                self._ino.rm_watch(wd)
            except OSError:
                pass
        self._watches = fresh

    def _watch_path(self, path: str, into: dict[int, _Interest]) -> None:
        real = os.path.realpath(path)
        for name_path in _unique([path, real]):
            self._watch_parent(name_path, into)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return  # missing for now: the parent watch sees it appear
        if stat.S_ISDIR(mode):
            for directory in _walk_dirs(path):
                self._add(directory, into, _Interest(everything=True))
        else:
            self._add(path, into, _Interest(everything=True))

    def _watch_parent(self, path: str, into: dict[int, _Interest]) -> None:
        """Watch the nearest existing ancestor for the name that leads towards PATH."""
        child = path
        parent = os.path.dirname(path)
        while parent != child and not os.path.isdir(parent):
            child, parent = parent, os.path.dirname(parent)
        if parent != child:
            self._add(parent, into, _Interest(names={os.path.basename(child)}))

    def _add(self, path: str, into: dict[int, _Interest], interest: _Interest) -> None:
        try:
            wd = self._ino.add_watch(path)
        except OSError as exc:
            if exc.errno not in (2, 20) and path not in self._warned:  # ENOENT/ENOTDIR: raced a change
                self._warned.add(path)
                log.warn(f"--watch: cannot watch {path}: {exc.strerror}")
            return
        current = into.setdefault(wd, _Interest())
        current.everything = current.everything or interest.everything
        current.names |= interest.names


def watch_paths_from_env(env: Mapping[str, str], templates: list[str], *,
                         templates_dir: str | None = None, env_files: list[str] | None = None) -> list[str]:
    """Everything a render reads from files: templates, env files, ``NAME_FILE`` secrets.

    ``templates`` are ``SRC[:DEST]`` arguments.  Without them the render step
    renders ``ENTRYPOINT_TEMPLATES`` and the templates directory, so those are
    watched instead (the directory even while missing: it may appear);
    ``templates_dir`` is a ``--templates-dir`` given on the command line;
    ``env_files`` are ``run``'s ``--env-file``/``ENTRYPOINT_ENV_FILE`` (read
    from the environment when None).
    """
    sources = [t.partition(":")[0] for t in templates]
    if not sources:
        listed = split_env_list(env.get("ENTRYPOINT_TEMPLATES", ""), paths=True)
        sources += [t.partition(":")[0] for t in listed]
        sources.append(templates_dir or env.get("ENTRYPOINT_TEMPLATES_DIR") or DEFAULT_TEMPLATES_DIR)
    if env_files is None:
        env_files = split_env_list(env.get("ENTRYPOINT_ENV_FILE", ""), paths=True)
    sources += env_files
    for key, value in env.items():
        name = key[: -len("_FILE")]
        if key.endswith("_FILE") and name and value and name not in env:
            sources.append(value)
    return _unique(s for s in sources if s)


# -- helpers ------------------------------------------------------------------------------

def _walk_dirs(root: str) -> list[str]:
    """ROOT and every directory below it, symlinked ones included, each inode once."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
            entries = list(os.scandir(directory))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        found.append(directory)
        for entry in entries:
            try:
                if entry.is_dir():  # follows symlinks, like the template planner
                    stack.append(entry.path)
            except OSError:
                continue
    return found


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait for PID to exit without touching signals (a pidfd); False on timeout."""
    if timeout <= 0:
        return True
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return True  # old kernel: fall back to an unbounded waitpid
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except ProcessLookupError:
        pass


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
