"""The render step of `run` (entrypoint.supervise.steps.render), run in a fork exactly as PID 1 runs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from entrypoint.options import parse_run_args
from entrypoint.supervise.parts.spawn import finish_child
from entrypoint.supervise.steps.forks import render_work
from entrypoint.supervise.steps.results import read_records


class Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def prepare(capfd: pytest.CaptureFixture[str]) -> Any:
    """Fork, run the render step in the child with a result memfd (as steps.render does), reap it;
    return the outcome and the report as a dict (None when the step failed)."""
    def run(args: list[str], env: dict[str, str]) -> tuple[Done, dict[str, list[str]] | None]:
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        opts = parse_run_args([*args, "--", "true"], base)
        work = render_work(opts, base)
        memfd = os.memfd_create("test-step", os.MFD_CLOEXEC)
        capfd.readouterr()
        pid = os.fork()
        if pid == 0:
            finish_child("rendering the templates", lambda: work(memfd))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out, err = capfd.readouterr()
        result = read_records(memfd)
        os.close(memfd)
        report = None if code != 0 else {"changed": result.values("changed"),
                                         "unchanged": result.values("unchanged")}
        return Done(code, out, err), report

    return run


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, str]:
    templates = tmp_path / "templates"
    (templates / "etc" / "app").mkdir(parents=True)
    (templates / "etc" / "app" / "app.conf.template").write_text("port=${PORT}\n")
    (templates / "hello.txt.j2").write_text("hello {{ env.WHO }}\n")
    (tmp_path / "root").mkdir()
    return {"ENTRYPOINT_TEMPLATES_DIR": str(templates), "ENTRYPOINT_OUTPUT_DIR": str(tmp_path / "root"),
            "PORT": "31000", "WHO": "world"}


def test_renders_settings_dir_silently_and_reports_changes(tree: dict[str, str], prepare: Any) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    result, report = prepare([], tree)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert sorted(report["changed"]) == [str(root / "etc/app/app.conf"), str(root / "hello.txt")]
    assert (root / "etc/app/app.conf").read_text() == "port=31000\n"
    result, report = prepare([], tree)
    assert result.returncode == 0 and report["changed"] == [] and len(report["unchanged"]) == 2


def test_error_exits_78_and_writes_nothing(tree: dict[str, str], prepare: Any) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    del tree["WHO"]
    result, report = prepare([], tree)
    assert result.returncode == 78 and report is None
    assert "hello.txt.j2:1:" in result.stderr and "WHO" in result.stderr and "Traceback" not in result.stderr
    assert list(root.rglob("*")) == []


def test_nothing_to_render_is_success(tmp_path: Path, prepare: Any) -> None:
    result, report = prepare([], {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none")})
    assert result.returncode == 0 and report == {"changed": [], "unchanged": []}


def test_template_argument(tmp_path: Path, prepare: Any) -> None:
    (tmp_path / "a.tmpl").write_text("a=${A}\n")
    result, report = prepare(["--template", f"{tmp_path}/a.tmpl:{tmp_path}/a.conf"],
                             {"A": "1", "ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.conf").read_text() == "a=1\n" and report["changed"] == [str(tmp_path / "a.conf")]


def test_failing_check_command_installs_nothing(tree: dict[str, str], prepare: Any) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    result, _ = prepare(["--check-cmd", "grep -q nope {src}"], tree)
    assert result.returncode == 78 and "check command failed" in result.stderr
    assert list(root.rglob("*")) == []


def test_check_command_sees_staged_files(tree: dict[str, str], tmp_path: Path, prepare: Any) -> None:
    root = Path(tree["ENTRYPOINT_OUTPUT_DIR"])
    seen = tmp_path / "seen"
    cmd = f'for f in $ENTRYPOINT_STAGED; do cat "$f"; done > {seen}'
    result, report = prepare(["--check-cmd", cmd], tree)
    assert result.returncode == 0, result.stderr
    assert sorted(seen.read_text().splitlines()) == ["hello world", "port=31000"]
    assert len(report["changed"]) == 2 and (root / "hello.txt").exists()
    assert not list(root.rglob(".entrypoint-*"))


def test_env_files_feed_the_templates_and_settings_come_from_one_table(tmp_path: Path, prepare: Any) -> None:
    """ENTRYPOINT_* list rules and the render settings, as `run` reads them."""
    (tmp_path / "a.tmpl").write_text("a=${A} b=${B}\n")
    (tmp_path / "one.env").write_text("A=from-file\n")
    (tmp_path / "two.env").write_text("B=two\n")
    env = {"ENTRYPOINT_TEMPLATES": f"{tmp_path}/a.tmpl:{tmp_path}/a.conf",
           "ENTRYPOINT_ENV_FILE": f"{tmp_path}/one.env, {tmp_path}/two.env",
           "ENTRYPOINT_ONLY": "A", "ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none"), "A": "env", "B": "env"}
    result, _ = prepare([], env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.conf").read_text() == "a=from-file b=${B}\n"  # --only A: B stays


def test_a_template_without_destination_is_refused(tmp_path: Path, prepare: Any) -> None:
    (tmp_path / "a.tmpl").write_text("x\n")
    result, report = prepare(["--template", f"{tmp_path}/a.tmpl"], {})
    assert result.returncode == 78 and "needs a destination" in result.stderr and report is None
