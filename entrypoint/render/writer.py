"""All-or-nothing, atomic writing of rendered files.

Rendering happens in memory first; only then is anything touched.  Each file
goes to a hidden temp file in its destination's directory (so the final
``os.replace`` is a same-filesystem atomic rename), is fsynced and chmod-ed,
and then renamed over the destination; the directory is fsynced so the rename
survives a crash.  A reader therefore sees the old bytes or the new bytes,
never a torn file, even if we are SIGKILLed mid-way.  Writing is split into
:meth:`Staging.commit` and :meth:`Staging.abort` so a check command can run on
the staged files before they go live (confd's ``check_cmd``).

Several writers may share a directory (a ``render --watch`` beside a CI job,
two containers on one volume, ``run --watch`` beside an offline ``render``).
A temp file is therefore locked (:func:`fcntl.flock`, exclusive) from its
creation until it is renamed or removed, on a descriptor kept open that long;
the leftovers of a killed writer are exactly the temp files nobody holds a
lock on, and only those are removed (:func:`remove_leftovers`).  A lock dies
with its holder, whatever PID namespace that was in, so this works across
containers where pids mean nothing.  Where the filesystem has no locks, a
leftover is removed only once it is :data:`UNLOCKED_STALE_AGE` old.

Standard library only and light (no :mod:`tempfile`, :mod:`pathlib`,
:mod:`dataclasses`; :mod:`fcntl` is a small C module): ``run`` imports this
in its render fork.  Destinations may be given as strings or path objects;
they are reported back as given.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from entrypoint.errors import OutputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeAlias

    StrPath: TypeAlias = str | os.PathLike[str]

TEMP_PREFIX = ".entrypoint-"
TEMP_SUFFIX = ".tmp"
DEFAULT_MODE = 0o644
#: Where locks cannot tell whether a temp file's writer lives (a filesystem without locks, or
#: another user's file we may not open), it is removed only once it is this old (seconds).
UNLOCKED_STALE_AGE = 3600.0

#: flock errors that mean "this filesystem has no locks", not "someone holds it"
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS})
#: (st_dev, st_ino) of the temp files this process holds: over NFS, flock is a per-process POSIX
#: lock, which our own probe would be granted (and, closing, would drop)
_held: set[tuple[int, int]] = set()
#: how often a step is retried when another writer's directory or cleaner got in between
_RETRIES = 20


class RenderedFile:
    """Bytes for one destination."""

    __slots__ = ("create_dirs_under", "data", "dest", "mode")

    def __init__(self, dest: StrPath, data: bytes, mode: int | None = None,
                 create_dirs_under: StrPath | None = None) -> None:
        self.dest = dest
        self.data = data
        self.mode = mode  # for a new file; an existing destination keeps its own mode
        self.create_dirs_under = create_dirs_under  # may create missing directories between this and dest


class StagedFile:
    __slots__ = ("dest", "fd", "temp")

    def __init__(self, dest: StrPath, temp: str | None, fd: int | None = None) -> None:
        self.dest = dest
        self.temp = temp  # None: content and mode already match, nothing to do
        self.fd = fd  # open and locked while ``temp`` is ours; None once renamed or removed

    def release(self, unlink: bool) -> None:
        """Give the temp file up (removing it first if ``unlink``): only then drop its lock."""
        if self.fd is None:
            return
        if unlink and self.temp is not None:
            _unlink_quietly(self.temp)
        _close_held(self.fd)
        self.fd = None


class Staging:
    """Temp files written and fsynced, not yet renamed into place."""

    def __init__(self) -> None:
        self.files: list[StagedFile] = []
        self.created_dirs: list[str] = []
        self.done = False

    @property
    def changed(self) -> list[StagedFile]:
        return [f for f in self.files if f.temp is not None]

    def commit(self) -> list[StrPath]:
        """Rename every staged file into place; returns the destinations that changed."""
        if self.done:
            raise RuntimeError("staging already committed or aborted")
        self.done = True
        changed: list[StrPath] = []
        directories: set[str] = set()
        try:
            for staged in self.changed:
                assert staged.temp is not None
                renamed = _install(staged.temp, os.fspath(staged.dest))
                staged.release(unlink=not renamed)
                changed.append(staged.dest)
                directories.add(_parent(os.fspath(staged.dest)))
        finally:
            self._remove_temps()
        for directory in sorted(directories):
            _fsync_directory(directory)
        return changed

    def abort(self) -> None:
        """Forget everything: temp files and any directories we created go away."""
        if self.done:
            return
        self.done = True
        self._remove_temps()
        for directory in reversed(self.created_dirs):
            try:
                os.rmdir(directory)
            except OSError:
                pass

    def _remove_temps(self) -> None:
        for staged in self.files:
            staged.release(unlink=True)  # only those still ours: a renamed one's name is not


def _parent(path: str) -> str:
    return os.path.dirname(path) or "."


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_all(files: Iterable[RenderedFile]) -> list[StrPath]:
    """Stage and commit; nothing is renamed unless every file was staged."""
    staging = stage_all(files)
    try:
        return staging.commit()
    finally:
        staging.abort()


def stage_all(files: Iterable[RenderedFile]) -> Staging:
    """Write every file to its temp path; on any error remove them all and raise OutputError."""
    staging = Staging()
    try:
        items = list(files)
        for directory in sorted({_parent(os.fspath(f.dest)) for f in items}):
            if os.path.isdir(directory):
                remove_leftovers(directory)
        for item in items:
            staging.files.append(_stage_with_parents(item, staging))
    except BaseException:
        staging.abort()
        raise
    return staging


def _stage_with_parents(item: RenderedFile, staging: Staging) -> StagedFile:
    """Create missing directories, then stage; again if another writer's abort removed them."""
    for _ in range(_RETRIES):
        _make_parents(item, staging)
        try:
            return _stage_one(item)
        except _DirectoryGone:
            continue  # _make_parents makes it again (or says it does not exist)
    raise OutputError(f"{item.dest}: cannot create a temporary file: destination directory "
                      f"{_parent(os.fspath(item.dest))} keeps disappearing")


def remove_leftovers(directory: StrPath) -> list[str]:
    """Delete the temp files of writers that are gone (killed before they could clean up).

    A temp file whose lock someone holds belongs to a live writer (maybe
    another container's, maybe one that is stopped) and is left alone.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        ours = entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)
        if ours and _is_regular(entry) and _remove_if_abandoned(entry.path):
            removed.append(entry.path)
    return removed


def _is_regular(entry: os.DirEntry[str]) -> bool:
    """We only ever create regular files; a device or FIFO by that name is not ours to open."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _remove_if_abandoned(path: str) -> bool:
    """Unlink ``path`` if no live writer holds it: we get a shared lock on it, or (where that cannot
    be asked) it is old.  The unlink happens under our lock, and only if the name still is the
    file we probed; a writer that created it a moment ago, and had not locked it yet, cannot lock
    it now (or, once we are done, finds its name gone) and takes another name."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # not ours to open (another user's, a symlink): only its age can tell
        return _remove_if_stale(path)
    try:
        probed = os.fstat(fd)
        if not stat.S_ISREG(probed.st_mode) or (probed.st_dev, probed.st_ino) in _held:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                return False  # EWOULDBLOCK: its writer is alive
            if time.time() - probed.st_mtime < UNLOCKED_STALE_AGE:
                return False
        try:
            if not _same_file(os.stat(path, follow_symlinks=False), probed):
                return False
            os.unlink(path)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def _remove_if_stale(path: str) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or time.time() - st.st_mtime < UNLOCKED_STALE_AGE:
            return False
        os.unlink(path)
    except OSError:
        return False
    return True


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def not_writable_remedy(exc: OSError, directory: str) -> str:
    """The rest of the one-line message when the output location cannot be written: who and what to do.

    A read-only root filesystem (``readOnlyRootFilesystem``, ``--read-only``)
    and a non-root ``USER`` are the usual causes; the fix is a writable mount
    there, or rendering somewhere that is writable.
    """
    if exc.errno not in _NOT_WRITABLE:
        return ""
    return (f" (uid {os.geteuid()}): mount a writable volume at {directory}, "
            f"set ENTRYPOINT_OUTPUT_DIR to a writable directory, "
            f"or run the container with --tmpfs {directory}")


def _make_parents(item: RenderedFile, staging: Staging) -> None:
    parent = _parent(os.fspath(item.dest))
    if os.path.isdir(parent):
        return
    root = None if item.create_dirs_under is None else os.fspath(item.create_dirs_under).rstrip("/")
    if root is None or not (parent == root or parent.startswith(root + "/")):
        raise OutputError(f"{item.dest}: destination directory {parent} does not exist")
    for _ in range(_RETRIES):
        try:
            _make_missing(_missing_dirs(parent), staging)
            return
        except FileNotFoundError:  # one above went away: another writer's abort removed its own
            continue
    raise OutputError(f"{parent}: cannot create directory: a directory above it keeps disappearing")


def _missing_dirs(parent: str) -> list[str]:
    """``parent`` and those of its ancestors that do not exist, innermost first."""
    missing: list[str] = []
    probe = parent
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = _parent(probe)
    return missing


def _make_missing(missing: list[str], staging: Staging) -> None:
    """mkdir each of ``missing``, outermost first; one that another writer made meanwhile is not ours."""
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if os.path.isdir(directory):
                continue  # created by another writer at the same moment: not ours to remove
            raise OutputError(f"{directory}: cannot create directory: it exists and is not a directory"
                              ) from None
        except FileNotFoundError:
            raise  # the one above is gone: _make_parents looks again
        except OSError as exc:
            raise OutputError(f"{directory}: cannot create directory: {exc.strerror}"
                              f"{not_writable_remedy(exc, directory)}") from None
        staging.created_dirs.append(directory)


class _DirectoryGone(Exception):
    """The destination directory vanished before the temp file was made (another writer's abort)."""


def _make_temp(dest: str) -> tuple[int, str]:
    """A new hidden file next to ``dest`` (as :func:`tempfile.mkstemp`: O_EXCL, mode 0600), locked.

    Between our create and our lock, a cleaner (another writer's
    :func:`remove_leftovers`) may open the new file and take its shared lock:
    it will unlink it.  So a name we cannot lock at once, or that no longer is
    our file once locked, is left to that cleaner and we take another; never a
    blocking lock, which a stopped cleaner could hold for ever.
    """
    prefix = os.path.join(_parent(dest), f"{TEMP_PREFIX}{os.path.basename(dest)}-")
    for _ in range(100):
        temp = f"{prefix}{os.urandom(6).hex()}{TEMP_SUFFIX}"
        try:
            fd = _open_new(temp)
        except FileExistsError:
            continue
        try:
            st = os.fstat(fd)
            locked = _lock(fd)
            if locked is None or (locked and not _still_named(temp, st)):
                os.close(fd)
                continue
        except BaseException:
            _unlink_quietly(temp)
            os.close(fd)
            raise
        _held.add((st.st_dev, st.st_ino))
        return fd, temp
    raise FileExistsError(errno.EEXIST, "no usable temporary name")


def _open_new(temp: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(temp, flags, 0o600)
    except OSError as exc:
        if exc.errno != errno.EMFILE or not _raise_open_file_limit():
            raise
    return os.open(temp, flags, 0o600)


def _raise_open_file_limit() -> bool:
    """Each staged file keeps a descriptor until it is renamed: raise the soft limit to the hard one.

    Imported only here: a render of more files than the soft limit is rare.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return False
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return False
    return True


def _lock(fd: int) -> bool | None:
    """Take an exclusive lock on our new temp file: True; False where the filesystem has no
    locks; None if a cleaner holds it (it is unlinking the file)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        return False
    return True


def _still_named(temp: str, st: os.stat_result) -> bool:
    try:
        return _same_file(os.stat(temp, follow_symlinks=False), st)
    except FileNotFoundError:
        return False


def _close_held(fd: int) -> None:
    try:
        st = os.fstat(fd)
        _held.discard((st.st_dev, st.st_ino))
    finally:
        os.close(fd)


def _stage_one(item: RenderedFile) -> StagedFile:
    dest = os.fspath(item.dest)
    mode, owner = _target_mode_and_owner(item)
    if _unchanged(dest, item.data, mode):
        return StagedFile(dest=item.dest, temp=None)
    try:
        fd, temp = _make_temp(dest)
    except FileNotFoundError:
        if os.path.isdir(_parent(dest)):
            raise OutputError(f"{item.dest}: cannot create a temporary file: No such file or directory"
                              ) from None
        raise _DirectoryGone() from None
    except OSError as exc:
        raise OutputError(f"{item.dest}: cannot create a temporary file: {exc.strerror}"
                          f"{not_writable_remedy(exc, _parent(dest))}") from None
    try:
        _write_fd(fd, item.data)
        os.fchmod(fd, mode)
        if owner is not None:
            try:
                os.fchown(fd, *owner)
            except OSError:
                pass
        os.fsync(fd)
    except OSError as exc:
        _unlink_quietly(temp)
        _close_held(fd)
        raise OutputError(f"{item.dest}: cannot write: {exc.strerror}") from None
    except BaseException:
        _unlink_quietly(temp)
        _close_held(fd)
        raise
    return StagedFile(dest=item.dest, temp=temp, fd=fd)


def _target_mode_and_owner(item: RenderedFile) -> tuple[int, tuple[int, int] | None]:
    try:
        st = os.stat(item.dest)
    except FileNotFoundError:
        return (item.mode if item.mode is not None else DEFAULT_MODE), None
    except OSError as exc:
        raise OutputError(f"{item.dest}: cannot stat destination: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{item.dest}: destination exists and is not a regular file")
    return stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)


def _unchanged(dest: str, data: bytes, mode: int) -> bool:
    try:
        st = os.stat(dest)
        if st.st_size != len(data) or stat.S_IMODE(st.st_mode) != mode:
            return False
        with open(dest, "rb") as fh:
            return fh.read(len(data) + 1) == data
    except OSError:
        return False


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _install(temp: str, dest: str) -> bool:
    """Put the temp file's bytes at ``dest``; True if by rename (the temp name is gone then)."""
    try:
        os.replace(temp, dest)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise OutputError(f"{dest}: cannot rename into place: {exc.strerror}"
                              f"{not_writable_remedy(exc, _parent(dest))}") from None
        _rewrite_in_place(temp, dest)  # a bind-mounted file cannot be renamed over
        return False
    return True


def _rewrite_in_place(temp: str, dest: str) -> None:
    """EBUSY fallback (confd does the same): not atomic, but the only way into a bind mount."""
    try:
        with open(temp, "rb") as fh:
            data = fh.read()
        fd = os.open(dest, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            _write_fd(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot rewrite bind-mounted file: {exc.strerror}"
                          f"{not_writable_remedy(exc, _parent(dest))}") from None


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
