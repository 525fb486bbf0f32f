"""All-or-nothing, atomic writing of rendered files.

Rendering happens in memory first; only then is anything touched.  Each file
goes to a hidden temp file in its destination's directory (so the final
``os.replace`` is a same-filesystem atomic rename), is fsynced and chmod-ed,
and then renamed over the destination; the directory is fsynced so the rename
survives a crash.  A reader therefore sees the old bytes or the new bytes,
never a torn file, even if we are SIGKILLed mid-way.  Writing is split into
:meth:`Staging.commit` and :meth:`Staging.abort` so a check command can run on
the staged files before they go live (confd's ``check_cmd``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint.errors import OutputError

TEMP_PREFIX = ".entrypoint-"
TEMP_SUFFIX = ".tmp"
DEFAULT_MODE = 0o644


@dataclass(frozen=True)
class RenderedFile:
    dest: Path
    data: bytes
    mode: int | None = None  # for a new file; an existing destination keeps its own mode
    create_dirs_under: Path | None = None  # may create missing directories between this and dest


@dataclass
class StagedFile:
    dest: Path
    temp: Path | None  # None: content and mode already match, nothing to do


@dataclass
class Staging:
    """Temp files written and fsynced, not yet renamed into place."""

    files: list[StagedFile] = field(default_factory=list)
    created_dirs: list[Path] = field(default_factory=list)
    done: bool = False

    @property
    def changed(self) -> list[StagedFile]:
        return [f for f in self.files if f.temp is not None]

    def commit(self) -> list[Path]:
        """Rename every staged file into place; returns the destinations that changed."""
        if self.done:
            raise RuntimeError("staging already committed or aborted")
        self.done = True
        changed: list[Path] = []
        directories: set[Path] = set()
        try:
            for staged in self.changed:
                assert staged.temp is not None
                _install(staged.temp, staged.dest)
                changed.append(staged.dest)
                directories.add(staged.dest.parent)
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
            with contextlib.suppress(OSError):
                directory.rmdir()

    def _remove_temps(self) -> None:
        for staged in self.files:
            if staged.temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    staged.temp.unlink()


def write_all(files: Iterable[RenderedFile]) -> list[Path]:
    """Stage and commit; nothing is renamed unless every file was staged."""
    with staged(files) as staging:
        return staging.commit()


@contextlib.contextmanager
def staged(files: Iterable[RenderedFile]) -> Iterator[Staging]:
    """Stage, yield, and abort whatever was not committed (even on exceptions)."""
    staging = stage_all(files)
    try:
        yield staging
    finally:
        staging.abort()


def stage_all(files: Iterable[RenderedFile]) -> Staging:
    """Write every file to its temp path; on any error remove them all and raise OutputError."""
    staging = Staging()
    try:
        items = list(files)
        for directory in sorted({f.dest.parent for f in items}):
            if directory.is_dir():
                remove_leftovers(directory)
        for item in items:
            _make_parents(item, staging)
            staging.files.append(StagedFile(dest=item.dest, temp=_stage_one(item)))
    except BaseException:
        staging.abort()
        raise
    return staging


def remove_leftovers(directory: Path) -> list[Path]:
    """Delete temp files of an earlier run that was killed before it could clean up."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def not_writable_remedy(exc: OSError, directory: Path) -> str:
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
    parent = item.dest.parent
    if parent.is_dir():
        return
    root = item.create_dirs_under
    if root is None or not parent.is_relative_to(root):
        raise OutputError(f"{item.dest}: destination directory {parent} does not exist")
    missing: list[Path] = []
    probe = parent
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o755)
        except OSError as exc:
            raise OutputError(f"{directory}: cannot create directory: {exc.strerror}"
                              f"{not_writable_remedy(exc, directory)}") from None
        staging.created_dirs.append(directory)
        remove_leftovers(directory)


def _stage_one(item: RenderedFile) -> Path | None:
    dest = item.dest
    mode, owner = _target_mode_and_owner(item)
    if _unchanged(dest, item.data, mode):
        return None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{dest.name}-", suffix=TEMP_SUFFIX,
                                         dir=dest.parent)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot create a temporary file: {exc.strerror}"
                          f"{not_writable_remedy(exc, dest.parent)}") from None
    temp = Path(temp_name)
    try:
        try:
            _write_fd(fd, item.data)
            os.fchmod(fd, mode)
            if owner is not None:
                with contextlib.suppress(OSError):
                    os.fchown(fd, *owner)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise OutputError(f"{dest}: cannot write: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
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


def _unchanged(dest: Path, data: bytes, mode: int) -> bool:
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


def _install(temp: Path, dest: Path) -> None:
    try:
        os.replace(temp, dest)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise OutputError(f"{dest}: cannot rename into place: {exc.strerror}"
                              f"{not_writable_remedy(exc, dest.parent)}") from None
        _rewrite_in_place(temp, dest)  # a bind-mounted file cannot be renamed over


def _rewrite_in_place(temp: Path, dest: Path) -> None:
    """EBUSY fallback (confd does the same): not atomic, but the only way into a bind mount."""
    try:
        data = temp.read_bytes()
        fd = os.open(dest, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            _write_fd(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot rewrite bind-mounted file: {exc.strerror}"
                          f"{not_writable_remedy(exc, dest.parent)}") from None


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
