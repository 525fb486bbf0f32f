"""All-or-nothing, atomic writing of rendered files.

Rendering happens in memory first; only then is anything touched.  Each file
goes to a hidden temp file in its destination's directory (so the final
``os.replace`` is a same-filesystem atomic rename), is fsynced and chmod-ed,
and then renamed over the destination; the directory is fsynced so the rename
survives a crash.  A reader therefore sees the old bytes or the new bytes,
never a torn file, even if we are SIGKILLed mid-way.  Writing is split into
:meth:`Staging.commit` and :meth:`Staging.abort` so a check command can run on
the staged files before they go live (confd's ``check_cmd``).

Standard library only and light (no :mod:`tempfile`, :mod:`pathlib`,
:mod:`dataclasses`): ``run`` imports this in its render fork.  Destinations
may be given as strings or path objects; they are reported back as given.
"""

from __future__ import annotations

import errno
import os
import stat

from entrypoint.errors import OutputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeAlias

    StrPath: TypeAlias = str | os.PathLike[str]

TEMP_PREFIX = ".entrypoint-"
TEMP_SUFFIX = ".tmp"
DEFAULT_MODE = 0o644


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
    __slots__ = ("dest", "temp")

    def __init__(self, dest: StrPath, temp: str | None) -> None:
        self.dest = dest
        self.temp = temp  # None: content and mode already match, nothing to do


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
                _install(staged.temp, os.fspath(staged.dest))
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
            if staged.temp is not None:
                _unlink_quietly(staged.temp)


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
            _make_parents(item, staging)
            staging.files.append(StagedFile(dest=item.dest, temp=_stage_one(item)))
    except BaseException:
        staging.abort()
        raise
    return staging


def remove_leftovers(directory: StrPath) -> list[str]:
    """Delete temp files of an earlier run that was killed before it could clean up."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(entry.path)
    return removed


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
    missing: list[str] = []
    probe = parent
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = _parent(probe)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except OSError as exc:
            raise OutputError(f"{directory}: cannot create directory: {exc.strerror}"
                              f"{not_writable_remedy(exc, directory)}") from None
        staging.created_dirs.append(directory)
        remove_leftovers(directory)


def _make_temp(dest: str) -> tuple[int, str]:
    """A new hidden file next to ``dest`` (as :func:`tempfile.mkstemp`: O_EXCL, mode 0600)."""
    prefix = os.path.join(_parent(dest), f"{TEMP_PREFIX}{os.path.basename(dest)}-")
    for _ in range(100):
        temp = f"{prefix}{os.urandom(6).hex()}{TEMP_SUFFIX}"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no usable temporary name")


def _stage_one(item: RenderedFile) -> str | None:
    dest = os.fspath(item.dest)
    mode, owner = _target_mode_and_owner(item)
    if _unchanged(dest, item.data, mode):
        return None
    try:
        fd, temp = _make_temp(dest)
    except OSError as exc:
        raise OutputError(f"{item.dest}: cannot create a temporary file: {exc.strerror}"
                          f"{not_writable_remedy(exc, _parent(dest))}") from None
    try:
        try:
            _write_fd(fd, item.data)
            os.fchmod(fd, mode)
            if owner is not None:
                try:
                    os.fchown(fd, *owner)
                except OSError:
                    pass
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        _unlink_quietly(temp)
        raise OutputError(f"{item.dest}: cannot write: {exc.strerror}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    return temp


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


def _install(temp: str, dest: str) -> None:
    try:
        os.replace(temp, dest)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise OutputError(f"{dest}: cannot rename into place: {exc.strerror}"
                              f"{not_writable_remedy(exc, _parent(dest))}") from None
        _rewrite_in_place(temp, dest)  # a bind-mounted file cannot be renamed over


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
