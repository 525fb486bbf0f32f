"""The kubelet's AtomicWriter layout of a ConfigMap/Secret volume, built for real on disk.

What the kubelet does (pkg/volume/util/atomic_writer.go):

* the payload is written into a fresh hidden directory ``..<timestamp>``
  (``..2026_12_01_09_33_30.123456789``), nested keys (``items[].path`` with a
  ``/``) as real subdirectories of it;
* ``..data`` is a symlink to that directory; an update creates ``..data_tmp``
  pointing at the new directory and renames it over ``..data`` (the atomic
  swap), then removes the old timestamped directory;
* each key's first path component is exposed as a relative symlink through
  ``..data``: ``name -> ..data/name``, ``etc -> ..data/etc`` for ``etc/app/x``.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

_counter = itertools.count(1)


def _timestamp_dir() -> str:
    n = next(_counter)
    return f"..2026_12_01_09_33_{n:02d}.{123456789 + n}"


def _write_payload(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(mode=0o755)
    for key, text in files.items():
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)


def _visible(files: dict[str, str]) -> set[str]:
    return {key.split("/", 1)[0] for key in files}


def volume(root: Path, files: dict[str, str]) -> str:
    """A freshly mounted volume at ``root`` (created if missing); returns the timestamp dir's name."""
    root.mkdir(parents=True, exist_ok=True)
    ts = _timestamp_dir()
    _write_payload(root / ts, files)
    (root / "..data").symlink_to(ts)
    for name in sorted(_visible(files)):
        (root / name).symlink_to(f"..data/{name}")
    return ts


def update(root: Path, files: dict[str, str]) -> str:
    """The kubelet's update: new timestamp dir, ``..data_tmp`` renamed over ``..data``, old dir removed."""
    old = os.readlink(root / "..data")
    old_visible = {entry.name for entry in os.scandir(root) if not entry.name.startswith("..")}
    ts = _timestamp_dir()
    _write_payload(root / ts, files)
    (root / "..data_tmp").symlink_to(ts)
    os.rename(root / "..data_tmp", root / "..data")
    for name in sorted(_visible(files) - old_visible):
        (root / name).symlink_to(f"..data/{name}")
    for name in sorted(old_visible - _visible(files)):
        (root / name).unlink()
    shutil.rmtree(root / old)
    return ts
