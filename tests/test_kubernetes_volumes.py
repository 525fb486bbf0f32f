"""Kubernetes ConfigMap/Secret volumes as templates, and output directories that are missing or not writable.

The volumes are the kubelet's exact layout (tests/kubelet.py); the
read-only and non-root cases use a real read-only bind mount and a real
unprivileged uid (``setpriv``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoint.render.plan import plan_argument, plan_directory
from tests import kubelet, mounts

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
NESTED = {
    "app.conf.template": "port=${PORT}\n",
    "etc/app/db.conf.j2": "db={{ env.DB }}\n",
    "etc/app/deep/x.tmpl": "x=${X:-1}\n",
    "README": "not a template\n",
}


def entrypoint(
    args: list[str], env: dict[str, str], *, user: int | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    head = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run(
        [*head, sys.executable, "-m", "entrypoint", *args],
        env=base,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp dir an unprivileged uid can traverse (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="ep-k8s-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


# -- the planner ------------------------------------------------------------------------------


def test_volume_mounted_at_the_templates_dir_renders_each_template_once(tmp_path: Path) -> None:
    kubelet.volume(tmp_path / "cm", NESTED)
    specs = plan_directory(tmp_path / "cm", tmp_path / "out")
    assert sorted(os.path.relpath(s.dest, tmp_path / "out") for s in specs if s.dest) == [
        "app.conf",
        "etc/app/db.conf",
        "etc/app/deep/x",
    ]
    assert all(".." not in str(s.src) for s in specs)


def test_volume_mounted_below_the_templates_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    kubelet.volume(root / "etc" / "app", {"a.conf.template": "a\n", "sub/b.j2": "b\n"})
    specs = plan_directory(root, tmp_path / "out")
    assert sorted(os.path.relpath(s.dest, tmp_path / "out") for s in specs if s.dest) == [
        "etc/app/a.conf",
        "etc/app/sub/b",
    ]


@pytest.mark.parametrize(
    "name", ["..data", "..2026_12_01_09_33_30.1", "..data_tmp", "..x.template", "...template", "..", "..j2"]
)
def test_any_dot_dot_entry_is_never_rendered_nor_descended(tmp_path: Path, name: str) -> None:
    root = tmp_path / "t"
    (root / "ok").mkdir(parents=True)
    (root / "ok" / "a.template").write_text("a\n")
    if name != "..":
        (root / name).mkdir()
        (root / name / "inner.template").write_text("no\n")
        (root / "ok" / (name + ".template")).write_text("no\n")
        (root / "ok" / name).mkdir()
        (root / "ok" / name / "deeper.template").write_text("no\n")
    assert [os.path.relpath(s.src, root) for s in plan_directory(root, tmp_path / "out")] == ["ok/a.template"]


def test_visible_symlink_as_an_explicit_template_is_followed(tmp_path: Path) -> None:
    kubelet.volume(tmp_path / "cm", NESTED)
    [spec] = plan_argument(str(tmp_path / "cm" / "app.conf.template"))
    assert Path(spec.src).read_text() == "port=${PORT}\n"
    specs = plan_argument(f"{tmp_path / 'cm'}:{tmp_path / 'out'}")
    assert len(specs) == 3


# -- render and check on a volume --------------------------------------------------------------


def test_check_counts_each_template_of_a_volume_once(tmp_path: Path) -> None:
    kubelet.volume(tmp_path / "cm", NESTED)
    done = entrypoint(["check", "--clean-env", "--set", "PORT=1", "--set", "DB=d", str(tmp_path / "cm")], {})
    assert done.returncode == 0, done.stderr
    assert "3 template(s) OK" in done.stdout


def test_volume_at_the_templates_root_as_non_root_writes_only_visible_files(shared_tmp: Path) -> None:
    """Output dir mirrors / (root-owned); only etc/app belongs to the app's uid, as in an image."""
    kubelet.volume(
        shared_tmp / "templates",
        {"etc/app/app.conf.template": "port=${PORT}\n", "etc/app/extra.j2": "x={{ PORT }}\n"},
    )
    out = shared_tmp / "root"
    (out / "etc" / "app").mkdir(parents=True)
    os.chown(out / "etc" / "app", NOBODY, NOBODY)
    done = entrypoint(
        ["render", "--templates-dir", str(shared_tmp / "templates"), "--output-dir", str(out)],
        {"PORT": "8080"},
        user=NOBODY,
    )
    assert done.returncode == 0, done.stderr
    assert tree(out) == ["etc/app/app.conf", "etc/app/extra"]
    assert (out / "etc/app/app.conf").read_text() == "port=8080\n"


# -- the output directory ----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["rendered", "a/b/rendered"])
def test_missing_output_dir_is_created_with_its_parents(tmp_path: Path, missing: str) -> None:
    (tmp_path / "t" / "sub").mkdir(parents=True)
    (tmp_path / "t" / "sub" / "a.conf.template").write_text("a=${A}\n")
    (tmp_path / "t" / "top.j2").write_text("top\n")
    out = tmp_path / missing
    done = entrypoint(
        ["render", "--set", "A=1", "--templates-dir", str(tmp_path / "t")],
        {"ENTRYPOINT_OUTPUT_DIR": str(out)},
    )
    assert done.returncode == 0, done.stderr
    assert tree(out) == ["sub/a.conf", "top"]


def test_missing_output_dir_is_not_created_when_the_render_fails(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.conf.template").write_text("a=${A:?needed}\n")
    out = tmp_path / "x" / "rendered"
    done = entrypoint(["render", "--templates-dir", str(tmp_path / "t"), "--output-dir", str(out)], {})
    assert done.returncode == 78
    assert not (tmp_path / "x").exists()


def test_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.template").write_text("a\n")
    (tmp_path / "file").write_text("")
    done = entrypoint(
        ["render", "--templates-dir", str(tmp_path / "t"), "--output-dir", str(tmp_path / "file")], {}
    )
    assert done.returncode == 78 and "not a directory" in done.stderr


def assert_remedy(stderr: str, path: Path, uid: int) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert "Traceback" not in line and str(path) in line and f"uid {uid}" in line, line
    for fix in ("writable", "ENTRYPOINT_OUTPUT_DIR", "--tmpfs"):
        assert fix in line, line


@pytest.mark.parametrize("target", ["out", "out/new-subdir"])
def test_read_only_output_names_path_uid_and_fix(tmp_path: Path, target: str) -> None:
    (tmp_path / "t" / "new-subdir").mkdir(parents=True)
    (tmp_path / "t" / "a.conf.template").write_text("a\n")
    (tmp_path / "t" / "new-subdir" / "b.conf.template").write_text("b\n")
    backing = tmp_path / "backing"
    backing.mkdir()
    with mounts.read_only_bind(backing, tmp_path / "out") as out:
        done = entrypoint(["render", "--templates-dir", str(tmp_path / "t"), "--output-dir", str(out)], {})
        assert done.returncode == 78
        assert "Read-only file system" in done.stderr
        assert_remedy(done.stderr, out, 0)
    assert tree(backing) == []


def test_read_only_parent_of_a_missing_output_dir(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.conf.template").write_text("a\n")
    with mounts.read_only_bind(tmp_path / "t", tmp_path / "ro") as ro:
        done = entrypoint(
            ["render", "--templates-dir", str(tmp_path / "t"), "--output-dir", str(ro / "rendered")], {}
        )
        assert done.returncode == 78
        assert_remedy(done.stderr, ro / "rendered", 0)


@pytest.mark.parametrize("layout", ["file-in-dir", "missing-subdir", "missing-output-dir"])
def test_non_root_uid_names_itself_and_the_fix(shared_tmp: Path, layout: str) -> None:
    (shared_tmp / "t" / "sub").mkdir(parents=True)
    (shared_tmp / "t" / "sub" / "a.conf.template").write_text("a\n")
    out = shared_tmp / "out"
    out.mkdir()
    if layout == "file-in-dir":
        (out / "sub").mkdir()
        blocked = out / "sub"
    elif layout == "missing-subdir":
        blocked = out / "sub"
    else:
        out = out / "rendered"
        blocked = out
    os.chmod(shared_tmp / "t", 0o755)
    done = entrypoint(
        ["render", "--templates-dir", str(shared_tmp / "t"), "--output-dir", str(out)], {}, user=NOBODY
    )
    assert done.returncode == 78
    assert "Permission denied" in done.stderr
    assert_remedy(done.stderr, blocked, NOBODY)
    assert not list(out.rglob("*.entrypoint-*")) if out.exists() else True


# -- the kubelet's atomic swap under run --watch ---------------------------------------------

from tests.test_watch import RUNTIMES, Rig, wait_for  # noqa: E402


@pytest.fixture(params=RUNTIMES)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a PID namespace")
    r = Rig(tmp_path, request.param)
    yield r
    r.stop()


def test_swap_of_a_volume_at_the_templates_dir_reloads_once_with_nested_keys(rig: Rig) -> None:
    cm, out = rig.tmp / "cm", rig.tmp / "out"
    kubelet.volume(cm, {"app.conf.template": "v=1\n", "etc/app/nested.conf.template": "n=1\n"})
    rig.env["ENTRYPOINT_TEMPLATES_DIR"] = str(cm)
    rig.env["ENTRYPOINT_OUTPUT_DIR"] = str(out)  # created by the first render
    rig.start([], out / "app.conf")
    assert tree(out) == ["app.conf", "etc/app/nested.conf"]
    kubelet.update(cm, {"app.conf.template": "v=2\n", "etc/app/nested.conf.template": "n=2\n"})
    wait_for(lambda: rig.count("HUP") == 1, 5, "the reload after the swap")
    assert (out / "etc/app/nested.conf").read_text() == "n=2\n"
    assert rig.lines("HUP")[0][3] == "v=2"
    kubelet.update(
        cm,
        {
            "app.conf.template": "v=3\n",
            "etc/app/nested.conf.template": "n=3\n",
            "added.conf.template": "new\n",
        },
    )  # watches follow the new timestamp dir
    wait_for(lambda: (out / "added.conf").exists() and rig.count("HUP") == 2, 5, "the second reload")
    assert (out / "etc/app/nested.conf").read_text() == "n=3\n"
    assert tree(out) == ["added.conf", "app.conf", "etc/app/nested.conf"]  # never a ..data or ..<ts>
    assert "..data" not in rig.stderr() and "..2026" not in rig.stderr()


def test_swap_of_a_volume_mounted_inside_the_templates_root(rig: Rig) -> None:
    root, out = rig.tmp / "templates", rig.tmp / "root"
    kubelet.volume(root / "etc" / "app", {"app.conf.template": "v=1\n"})
    rig.env["ENTRYPOINT_TEMPLATES_DIR"] = str(root)
    rig.env["ENTRYPOINT_OUTPUT_DIR"] = str(out)
    rig.start([], out / "etc" / "app" / "app.conf")
    kubelet.update(root / "etc" / "app", {"app.conf.template": "v=2\n"})
    wait_for(lambda: rig.count("HUP") == 1, 5, "the reload after the swap")
    assert rig.lines("HUP")[0][3] == "v=2"
    assert tree(out) == ["etc/app/app.conf"]
