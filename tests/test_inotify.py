"""The ctypes inotify binding against the real kernel: events, symlinks, signal-driven readiness."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from entrypoint.supervise.parts import inotify

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ino() -> inotify.Inotify:
    handle = inotify.open_inotify()
    yield handle
    handle.close()


def test_create_and_write_are_reported_by_name(ino: inotify.Inotify, tmp_path: Path) -> None:
    wd = ino.add_watch(str(tmp_path))
    (tmp_path / "a.conf").write_text("x")
    events = list(ino.read_events())
    kinds = [(e.wd, e.name, e.mask & (inotify.IN_CREATE | inotify.IN_CLOSE_WRITE)) for e in events]
    assert (wd, "a.conf", inotify.IN_CREATE) in kinds
    assert (wd, "a.conf", inotify.IN_CLOSE_WRITE) in kinds


def test_read_never_blocks_when_idle(ino: inotify.Inotify, tmp_path: Path) -> None:
    ino.add_watch(str(tmp_path))
    assert list(ino.read_events()) == []


def test_descriptor_is_nonblocking_and_close_on_exec(ino: inotify.Inotify) -> None:
    assert os.get_blocking(ino.fd) is False
    assert os.get_inheritable(ino.fd) is False


def test_symlink_is_followed_to_the_same_watch(ino: inotify.Inotify, tmp_path: Path) -> None:
    target = tmp_path / "real.conf"
    target.write_text("x")
    link = tmp_path / "link.conf"
    link.symlink_to(target)
    assert ino.add_watch(str(link)) == ino.add_watch(str(target))


def test_missing_path_raises_enoent(ino: inotify.Inotify, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ino.add_watch(str(tmp_path / "nope"))


def test_rm_watch_of_a_dropped_watch_is_quiet(ino: inotify.Inotify, tmp_path: Path) -> None:
    sub = tmp_path / "d"
    sub.mkdir()
    wd = ino.add_watch(str(sub))
    sub.rmdir()
    assert any(e.wd == wd and e.mask & inotify.IN_IGNORED for e in ino.read_events())
    ino.rm_watch(wd)  # the kernel already dropped it: EINVAL is swallowed


def test_parse_events_decodes_padded_names() -> None:
    buf = struct.pack("iIII", 3, inotify.IN_CREATE, 0, 16) + b"app.conf" + b"\0" * 8
    buf += struct.pack("iIII", 4, inotify.IN_DELETE_SELF, 0, 0)
    assert list(inotify.parse_events(buf)) == [
        inotify.Event(3, inotify.IN_CREATE, 0, "app.conf"),
        inotify.Event(4, inotify.IN_DELETE_SELF, 0, ""),
    ]


def test_readiness_arrives_as_the_queued_realtime_signal(tmp_path: Path) -> None:
    """A blocked RT signal carrying the fd, collected with sigtimedwait: no thread, no poll."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from entrypoint.supervise.parts import inotify
        sig = signal.SIGRTMIN + 3
        signal.pthread_sigmask(signal.SIG_BLOCK, {{sig}})
        ino = inotify.open_inotify()
        ino.signal_driven(sig)
        ino.add_watch({str(tmp_path)!r})
        assert signal.sigtimedwait({{sig}}, 0) is None
        open({str(tmp_path / "f")!r}, "w").close()
        info = signal.sigtimedwait({{sig}}, 5)
        assert info is not None, "no signal"
        print(info.si_signo - signal.SIGRTMIN, info.si_code, len(list(ino.read_events())) > 0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "1", "True"]  # si_code POLL_IN


def test_importing_the_watcher_does_not_load_ctypes() -> None:
    """ctypes (about 0.5 MiB) is paid only when a Watcher is actually created."""
    script = "import sys, entrypoint.supervise.parts.watch; print('ctypes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20,
                         cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr
