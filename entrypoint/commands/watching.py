"""``render --watch`` / ``check --watch``: do the work once, then again after every save.

For template authors at their desks (Linux, macOS, Windows), so the file
events come from watchdog (``entrypoint[watch]``), whose observer uses
inotify, FSEvents or ReadDirectoryChangesW as the platform has.  This is not
``run --watch``: PID 1 watches with its own inotify code and imports none of
this (see docs/watch.md).

The loop calls the command's one-shot function, so a watched render is the
same all-or-nothing render as a plain one: a failed render leaves every DEST
as it was.  Its error is printed and the watch goes on.  Files are watched
through their directories, so saves by rename (most editors, Kubernetes'
``..data`` swap) count, and a template that does not exist yet is seen
when it appears.  A burst of writes (an editor saving in several steps) is
one run: it waits until the files have been quiet for ``--watch-quiet``
seconds, at most ``--watch-max-wait`` after the first change.  Where the
platform reports closes (inotify), a file written in place (truncate, then
write) also counts as quiet only once it is closed: a slow writer is never
rendered half-written.  SIGINT and SIGTERM end the watch with exit 0.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from entrypoint import log, stdio
from entrypoint.commands import lightargs as argparse  # the parsers of render/check
from entrypoint.commands.watch_args import add_watch_options as add_watch_options
from entrypoint.errors import EntrypointError, StdoutClosed, StdoutError
from entrypoint.extras import require
from entrypoint.render.plan import split_template_arg, strip_suffix

# Reading a template produces "opened"/"closed_no_write" events: those must not count.
_CHANGES = frozenset({"created", "modified", "deleted", "moved", "closed", "attrib"})


@dataclass(frozen=True)
class WatchSet:
    """What counts as a change: exact files, template trees, and outputs that never count."""

    files: frozenset[Path] = frozenset()
    trees: frozenset[Path] = frozenset()
    outputs: frozenset[Path] = frozenset()
    #: trees where every change counts (``check --services-dir``: any file of a service matters)
    whole_trees: frozenset[Path] = frozenset()

    def matches(self, path: Path, *, is_directory: bool = False) -> bool:
        if path in self.outputs:
            return False
        if path in self.files:
            return True
        if any(path == tree or tree in path.parents for tree in self.whole_trees):
            return True
        for tree in self.trees:
            if path == tree or tree in path.parents:
                rel = path.relative_to(tree).parts
                # a template, a (new, moved, removed) subdirectory, or a ConfigMap's ..data swap
                return is_directory or any(p.startswith("..") for p in rel) or (
                    bool(rel) and strip_suffix(rel[-1]) is not None)
        return False

    def directories(self) -> dict[Path, bool]:
        """Directory -> recursive: what the observer must watch to see every change above."""
        wanted: dict[Path, bool] = {}
        for path, recursive in [*((f.parent, False) for f in self.files),
                                *((t, True) for t in (*self.trees, *self.whole_trees))]:
            existing = path
            while not existing.is_dir() and existing != existing.parent:
                existing, recursive = existing.parent, True  # watch for it to appear
            wanted[existing] = wanted.get(existing, False) or recursive
        return wanted


def watch_set(ns: argparse.Namespace, default_templates: Iterable[str],
              templates_dir: str | Path | None, services_dir: str | None = None) -> WatchSet:
    """The sources of one render/check command line: TEMPLATE arguments (or the configured
    templates and directory), ``--env-file`` files, the ``--marathon-app`` file, and for
    ``check --services-dir`` the services directory."""
    files: set[Path] = set()
    trees: set[Path] = set()
    outputs: set[Path] = set()
    arguments = list(ns.templates) or list(default_templates)
    for arg in arguments:
        try:
            src, dest = split_template_arg(arg)
        except EntrypointError:
            continue
        (trees if Path(src).is_dir() else files).add(_absolute(Path(src)))
        if dest is not None:
            outputs.add(_absolute(Path(dest)))
    if not ns.templates and templates_dir is not None:
        trees.add(_absolute(Path(templates_dir)))
    files.update(_absolute(Path(p)) for p in ns.env_file)
    if ns.marathon_app is not None:
        files.add(_absolute(ns.marathon_app))
    whole = {_absolute(Path(d)) for d in [services_dir] if d}
    return WatchSet(frozenset(files), frozenset(trees), frozenset(outputs), frozenset(whole))


def _absolute(path: Path) -> Path:
    return Path(path).absolute()


@dataclass
class _Events:
    """Observer thread -> main thread: "something relevant changed", and a stop request."""

    changes: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)
    stop: threading.Event = field(default_factory=threading.Event)
    #: the observer reports closes after writing (inotify), so ``writing`` is meaningful
    close_events: bool = False
    #: watched files created or modified in place and not closed since
    writing: set[str] = field(default_factory=set)

    def note(self, kind: str, path: str) -> None:
        """Track writes in progress: ``created``/``modified`` open one, ``closed`` ends it."""
        if kind in ("created", "modified"):
            self.writing.add(path)
        elif kind in ("closed", "deleted", "moved"):
            self.writing.discard(path)

    def wait(self, timeout: float | None) -> str | None:
        try:
            return self.changes.get(timeout=timeout)
        except queue.Empty:
            return None


def watch(once: Callable[[], int], sources: Callable[[], WatchSet], *, command: str,
          quiet: float = 0.2, max_wait: float = 2.0) -> int:
    """Run ``once`` now and after every change in ``sources()``; exit 0 on SIGINT/SIGTERM."""
    watchdog_observers = require("watchdog.observers", f"{command} --watch")
    watchdog_events = require("watchdog.events", f"{command} --watch")
    events = _Events()
    previous = _install_stop_handlers(events)
    if log.level() < log.VERBOSE:
        log.set_level(log.VERBOSE)  # name each written file: the author wants to see it happen
    current = WatchSet()
    observer = watchdog_observers.Observer()
    events.close_events = "inotify" in type(observer).__module__
    watches = _Watches(observer, _handler(watchdog_events, lambda: current, events))
    try:
        while not events.stop.is_set():
            current = sources()  # watched before the run: a save during it is not lost
            watches.set(current.directories())
            code = _run_once(once)
            current = sources()  # the run may have made a missing directory or file appear
            watches.set(current.directories())
            log.info(f"{command} --watch: {'done' if code == 0 else f'failed (exit {code})'}; "
                     f"watching {len(current.files) + len(current.trees)} path(s), Ctrl-C to stop")
            changed = _next_burst(events, quiet=quiet, max_wait=max_wait)
            if changed is not None:
                log.info(f"{command} --watch: {changed} changed")
    finally:
        watches.close()
        for signum, old in previous.items():
            signal.signal(signum, old)
    return 0


def _run_once(once: Callable[[], int]) -> int:
    """One run; its error is printed and the watch goes on."""
    try:
        return once()
    except (StdoutClosed, StdoutError):
        raise  # the results have nowhere to go: the watch ends with the command's verdict on that
    except EntrypointError as exc:
        log.error(str(exc))
        return exc.exit_code
    except OSError as exc:
        log.error(f"{exc.filename or ''}: {exc.strerror or exc}")
        return 1
    finally:
        stdio.flush()  # each result shows now, not when the watch ends (a gone reader ends the watch)


def _next_burst(events: _Events, *, quiet: float, max_wait: float) -> str | None:
    """Block until a change, then until changes pause for ``quiet`` (at most ``max_wait``).

    None means stop.  No timer runs while nothing changes.
    """
    first = events.wait(None)
    if first is None or events.stop.is_set():
        return None
    deadline = time.monotonic() + max_wait
    while not events.stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        writing = events.close_events and bool(events.writing)  # a save still in progress
        if events.wait(left if writing else min(quiet, left)) is None and not writing:
            break
    events.writing.clear()  # a close we never saw must not hold up the next burst
    return None if events.stop.is_set() else first


def _install_stop_handlers(events: _Events) -> dict[int, Any]:
    def stop(signum: int, frame: FrameType | None) -> None:
        events.stop.set()
        events.changes.put("")  # wake the main thread

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, stop)
    return previous


def _handler(watchdog_events: ModuleType, current: Callable[[], WatchSet], events: _Events) -> Any:
    class Handler(watchdog_events.FileSystemEventHandler):  # type: ignore[misc, name-defined]
        def on_any_event(self, event: Any) -> None:
            if event.event_type not in _CHANGES:
                return
            if event.is_directory and event.event_type in ("modified", "closed"):
                return  # a directory's mtime moves with every file written in it, our own included
            wanted = current()
            matched = None
            for raw in (event.src_path, getattr(event, "dest_path", "")):
                if raw:
                    path = Path(raw if isinstance(raw, str) else raw.decode(errors="replace"))
                    if wanted.matches(path, is_directory=event.is_directory):
                        if not event.is_directory:
                            events.note(event.event_type, str(path))
                        matched = matched or str(path)
            if matched is not None:
                events.changes.put(matched)

    return Handler()


class _Watches:
    """The observer thread and the directories it watches now."""

    def __init__(self, observer: Any, handler: Any) -> None:
        self.observer, self.handler = observer, handler
        self.watched: dict[Path, bool] = {}
        observer.daemon = True
        observer.start()

    def set(self, wanted: dict[Path, bool]) -> None:
        """Watch exactly these directories (a template directory may have appeared meanwhile)."""
        if wanted == self.watched:
            return
        self.observer.unschedule_all()
        for directory, recursive in wanted.items():
            try:
                self.observer.schedule(self.handler, str(directory), recursive=recursive)
            except OSError as exc:
                log.warn(f"cannot watch {directory}: {exc.strerror or exc}")
        self.watched = wanted

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(5)


def _services_dir(ns: argparse.Namespace) -> str | None:
    """``check``'s services directory, if it checks one (``render`` has no such option)."""
    if "services_dir" not in vars(ns):
        return None
    import os

    from entrypoint.options import given_or_env

    return given_or_env(ns.services_dir, "--services-dir", os.environ)


def watch_command(ns: argparse.Namespace, once: Callable[[argparse.Namespace], int], *, command: str) -> int:
    """``render --watch`` / ``check --watch``: :func:`watch` over this command line's sources."""
    from entrypoint.context.settings import load_settings  # as the one-shot command itself does

    def sources() -> WatchSet:
        services_dir = _services_dir(ns)
        try:
            settings = load_settings()
        except EntrypointError:
            return watch_set(ns, [], ns.templates_dir, services_dir)
        return watch_set(ns, settings.templates, ns.templates_dir or settings.templates_dir, services_dir)

    return watch(lambda: once(ns), sources, command=command, quiet=max(ns.watch_quiet, 0.0),
                 max_wait=max(ns.watch_max_wait, 0.0))
