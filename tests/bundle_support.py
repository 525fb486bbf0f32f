"""The bundle under test: built once per session with ``scripts/bundle`` (or reused).

``ENTRYPOINT_TEST_BUNDLE=DIR`` names a tree already built (``DIR/opt/entrypoint``): scripts/test
builds it once and both pytest runs use it.  Otherwise the ``bundle`` fixture builds one into a
session temporary directory; it skips, saying what is missing, only when a build prerequisite is
absent (gcc and the static C library, patchelf, a shared libpython).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts/bundle"
HOME = "opt/entrypoint"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (.ci/run installs it)


def missing_prerequisite() -> str | None:
    """Why scripts/bundle cannot run here, or None."""
    for tool in ("gcc", "patchelf", "strip", "ldd"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install gcc libc6-dev patchelf binutils)"
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    if not any(Path(d, "libc.a").is_file() for d in (f"/usr/lib/{multiarch}", "/usr/lib")):
        return "no static C library for the launcher (apt-get install libc6-dev)"
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") and not Path(
            sysconfig.get_config_var("LIBPL") or "/nonexistent", "libpython3.11.so").exists():
        return "this interpreter has no shared libpython"
    return None


def build(parent: Path) -> Path:
    """``scripts/bundle parent``; the tree's root (``parent/opt/entrypoint``)."""
    given = os.environ.get("ENTRYPOINT_TEST_BUNDLE")
    if given:
        root = Path(given) / HOME
        assert (root / "bin/entrypoint").is_file(), f"ENTRYPOINT_TEST_BUNDLE={given} holds no {HOME}"
        return root
    why = missing_prerequisite()
    if why:
        pytest.skip(f"cannot build the bundle: {why}")
    done = subprocess.run([sys.executable, str(SCRIPT), str(parent)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return parent / HOME


def busybox() -> Path:
    if not BUSYBOX.is_file():
        pytest.skip("no static busybox (apt-get install busybox-static)")
    return BUSYBOX


def scratch_root(tree: Path, where: Path) -> Path:
    """A FROM-scratch-like root: only the bundle at /opt/entrypoint and a static busybox."""
    root = where / "root"
    shutil.copytree(tree, root / HOME, symlinks=True)
    (root / "bin").mkdir()
    shutil.copy2(busybox(), root / "bin/busybox")
    for applet in ("sh", "env", "cat", "echo", "sleep", "kill", "ls", "true", "httpd"):
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "tmp", "etc"):
        (root / d).mkdir()
    return root
