"""The atomic all-or-nothing writer, on real files, real mounts and a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoint.errors import OutputError
from entrypoint.render.writer import RenderedFile, remove_leftovers, stage_all, write_all
from tests import mounts


def temps(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".entrypoint-*"))


def test_writes_and_reports_changes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    changed = write_all([RenderedFile(a, b"A\n"), RenderedFile(b, b"B\n", mode=0o600)])
    assert changed == [a, b]
    assert a.read_bytes() == b"A\n" and b.read_bytes() == b"B\n"
    assert (a.stat().st_mode & 0o777, b.stat().st_mode & 0o777) == (0o644, 0o600)
    assert temps(tmp_path) == []


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    dest = tmp_path / "same.conf"
    dest.write_bytes(b"same\n")
    os.chmod(dest, 0o644)
    os.utime(dest, (1_000_000, 1_000_000))
    inode = dest.stat().st_ino
    assert write_all([RenderedFile(dest, b"same\n", mode=0o644)]) == []
    assert dest.stat().st_mtime == 1_000_000 and dest.stat().st_ino == inode


def test_existing_mode_is_kept(tmp_path: Path) -> None:
    dest = tmp_path / "secret.conf"
    dest.write_bytes(b"old\n")
    os.chmod(dest, 0o640)
    write_all([RenderedFile(dest, b"new\n", mode=0o755)])
    assert dest.read_bytes() == b"new\n" and dest.stat().st_mode & 0o777 == 0o640


def test_nothing_is_written_when_one_destination_fails(tmp_path: Path) -> None:
    good = tmp_path / "good.conf"
    good.write_bytes(b"old\n")
    blocker = tmp_path / "isdir"
    blocker.mkdir()
    with pytest.raises(OutputError):
        write_all([RenderedFile(good, b"new\n"), RenderedFile(blocker, b"x")])
    with pytest.raises(OutputError, match="does not exist"):
        write_all([RenderedFile(good, b"new\n"), RenderedFile(tmp_path / "missing" / "x", b"x")])
    assert good.read_bytes() == b"old\n"
    assert temps(tmp_path) == []


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".entrypoint-app.conf-abc123.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".hidden-but-not-ours.tmp"
    other.write_bytes(b"keep")
    write_all([RenderedFile(tmp_path / "app.conf", b"x")])
    assert not stale.exists() and other.exists()


def test_stage_then_abort_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "d" / "app.conf"
    staging = stage_all([RenderedFile(dest, b"new", create_dirs_under=tmp_path)])
    [staged] = staging.changed
    assert staged.temp is not None and Path(staged.temp).read_bytes() == b"new"
    temp = Path(staged.temp)
    assert temp.parent == dest.parent and temp.name.startswith(".entrypoint-app.conf-")
    staging.abort()
    assert not dest.parent.exists()


def test_stage_then_commit(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "deeper" / "app.conf"
    staging = stage_all([RenderedFile(dest, b"new", create_dirs_under=tmp_path)])
    assert staging.commit() == [dest]
    staging.abort()  # after a commit this is a no-op
    assert dest.read_bytes() == b"new" and temps(tmp_path) == []


KILL_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from entrypoint.render.writer import RenderedFile, write_all
    root = Path(sys.argv[1])
    n = 0
    while True:
        n += 1
        fill = b"%d" % (n % 2 + 1)
        write_all([RenderedFile(root / f"f{i}.conf", fill * (2 << 20)) for i in range(12)])
    """
)


def first_bytes(root: Path) -> list[bytes]:
    return [(root / f"f{i}.conf").read_bytes()[:1] for i in range(12)]


@pytest.mark.timeout(90)
def test_sigkill_mid_write_leaves_old_or_new_content(tmp_path: Path) -> None:
    valid = {b"0" * (2 << 20), b"1" * (2 << 20), b"2" * (2 << 20)}
    for i in range(12):
        (tmp_path / f"f{i}.conf").write_bytes(b"0" * (2 << 20))
    leftovers_seen = 0
    for attempt in range(6):
        child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(tmp_path)])
        before = first_bytes(tmp_path)
        deadline = time.monotonic() + 30
        # let at least one file be renamed into place, so kills also land in the commit phase
        if attempt % 2:  # kill after some file was renamed into place: the commit phase
            while first_bytes(tmp_path) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.005 * attempt)
        else:  # kill while a temp file is being written: the staging phase
            while not temps(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        leftovers_seen += bool(temps(tmp_path))
        for i in range(12):
            assert (tmp_path / f"f{i}.conf").read_bytes() in valid
    assert leftovers_seen > 0  # some kill did land in the middle of a write (cleaned below)
    write_all([RenderedFile(tmp_path / "f0.conf", b"final")])
    assert temps(tmp_path) == []


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounts.small_tmpfs(tmp_path, "64k") as mnt:
        yield mnt


def test_full_disk_is_a_clean_error_and_keeps_old_files(small_tmpfs: Path) -> None:
    a, b = small_tmpfs / "a.conf", small_tmpfs / "b.conf"
    a.write_bytes(b"old a\n")
    b.write_bytes(b"old b\n")
    with pytest.raises(OutputError, match="No space left"):
        write_all([RenderedFile(a, b"new a\n"), RenderedFile(b, b"x" * (256 << 10))])
    assert a.read_bytes() == b"old a\n" and b.read_bytes() == b"old b\n"
    assert temps(small_tmpfs) == []


def test_bind_mounted_destination_falls_back_to_rewrite(tmp_path: Path) -> None:
    source = tmp_path / "host-file"
    source.write_bytes(b"old\n")
    dest = tmp_path / "app.conf"
    dest.write_bytes(b"placeholder\n")
    done = subprocess.run(["mount", "--bind", str(source), str(dest)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount: {done.stderr.decode().strip()}")
    try:
        probe = tmp_path / "probe"
        probe.write_bytes(b"")
        try:
            os.replace(probe, dest)
            pytest.skip("rename over a bind mount did not fail with EBUSY here")
        except OSError:
            probe.unlink()
        assert write_all([RenderedFile(dest, b"new content\n")]) == [dest]
        assert dest.read_bytes() == b"new content\n"
        assert temps(tmp_path) == []
    finally:
        subprocess.run(["umount", str(dest)], check=False)
    assert source.read_bytes() == b"new content\n"


def test_remove_leftovers_on_missing_directory(tmp_path: Path) -> None:
    assert remove_leftovers(tmp_path / "nope") == []
