"""`entrypoint _prepare`: the render step of `run`, as the real child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def prepare(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run `_prepare --report-fd N` and return the process and the parsed report (or None)."""
    read_end, write_end = os.pipe()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    try:
        argv = [sys.executable, "-m", "entrypoint", "_prepare", "--report-fd", str(write_end), *args]
        result = subprocess.run(argv, env=base, pass_fds=(write_end,), capture_output=True, text=True,
                                timeout=60, check=False)
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as fh:
        report = fh.read()
    return result, (json.loads(report) if report else None)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, str]:
    templates = tmp_path / "templates"
    (templates / "etc" / "app").mkdir(parents=True)
    (templates / "etc" / "app" / "app.conf.template").write_text("port=${PORT}\n")
    (templates / "hello.txt.j2").write_text("hello {{ env.WHO }}\n")
    (tmp_path / "root").mkdir()
    return {"ENTRYPOINT_TEMPLATES_DIR": str(templates), "ENTRYPOINT_OUTPUT_DIR": str(tmp_path / "root"),
            "PORT": "31000", "WHO": "world"}


def test_renders_settings_dir_silently_and_reports_changes(tree: dict[str, str]) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    result, report = prepare([], tree)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert sorted(report["changed"]) == [str(root / "etc/app/app.conf"), str(root / "hello.txt")]
    assert (root / "etc/app/app.conf").read_text() == "port=31000\n"
    result, report = prepare([], tree)
    assert result.returncode == 0 and report["changed"] == [] and len(report["unchanged"]) == 2


def test_error_exits_78_and_writes_nothing(tree: dict[str, str]) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    del tree["WHO"]
    result, report = prepare([], tree)
    assert result.returncode == 78 and report is None
    assert "hello.txt.j2:1:" in result.stderr and "WHO" in result.stderr and "Traceback" not in result.stderr
    assert list(root.rglob("*")) == []


def test_nothing_to_render_is_success(tmp_path: Path) -> None:
    result, report = prepare([], {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none")})
    assert result.returncode == 0 and report == {"changed": [], "unchanged": []}


def test_template_argument(tmp_path: Path) -> None:
    (tmp_path / "a.tmpl").write_text("a=${A}\n")
    result, report = prepare(["--template", f"{tmp_path}/a.tmpl:{tmp_path}/a.conf"],
                             {"A": "1", "ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.conf").read_text() == "a=1\n" and report["changed"] == [str(tmp_path / "a.conf")]


def test_failing_check_command_installs_nothing(tree: dict[str, str]) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    result, _ = prepare(["--check-cmd", "grep -q nope {src}"], tree)
    assert result.returncode == 78 and "check command failed" in result.stderr
    assert list(root.rglob("*")) == []


def test_check_command_sees_staged_files(tree: dict[str, str], tmp_path: Path) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    seen = tmp_path / "seen"
    cmd = f'for f in $ENTRYPOINT_STAGED; do cat "$f"; done > {seen}'
    result, report = prepare(["--check-cmd", cmd], tree)
    assert result.returncode == 0, result.stderr
    assert sorted(seen.read_text().splitlines()) == ["hello world", "port=31000"]
    assert len(report["changed"]) == 2 and (root / "hello.txt").exists()
    assert not list(root.rglob(".entrypoint-*"))


def test_stage_only_is_a_dry_run(tree: dict[str, str]) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    result, report = prepare(["--stage-only"], tree)
    assert result.returncode == 0 and len(report["changed"]) == 2
    assert list(root.rglob("*")) == []
