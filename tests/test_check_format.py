"""`check --format text|json|github`, and `check`/`render` on nothing (exit 78, naming what was searched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kubelet


def entrypoint(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "entrypoint", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    write(tmp_path / "t" / "a.conf.template", "port=${PORT}\nbind=${BIND_ADDRESS}\nx=${X B}\n")
    write(tmp_path / "t" / "sub" / "b.yaml.j2", "id: {{ FEEDS_CLIENTID }}\n")
    write(tmp_path / "t" / "ok.tmpl", "ok\n")
    return tmp_path


EXPECTED = [
    {
        "file": "t/a.conf.template",
        "line": 2,
        "col": 6,
        "variable": "BIND_ADDRESS",
        "message": "BIND_ADDRESS: not set",
    },
    {
        "file": "t/a.conf.template",
        "line": 3,
        "col": 3,
        "variable": "X",
        "message": "bad substitution ${X B}: ' ' cannot follow ${X (write $${ for a literal ${)",
    },
    {
        "file": "t/sub/b.yaml.j2",
        "line": 1,
        "col": 8,
        "variable": "FEEDS_CLIENTID",
        "message": "undefined variable FEEDS_CLIENTID (did you mean FEEDS_CLIENT_ID?)",
    },
    {"file": "missing.j2", "line": None, "col": None, "variable": None, "message": "template not found"},
]
CONTEXT = ["--clean-env", "--set", "PORT=1", "--set", "FEEDS_CLIENT_ID=abc"]


def test_text_is_the_default_and_unchanged(broken: Path) -> None:
    done = entrypoint(["check", *CONTEXT, "t", "missing.j2"], broken)
    same = entrypoint(["check", *CONTEXT, "--format", "text", "t", "missing.j2"], broken)
    assert done.returncode == same.returncode == 78
    assert done.stdout == same.stdout == ""
    assert done.stderr == same.stderr
    assert done.stderr.splitlines() == [
        "missing.j2: template not found",
        "t/a.conf.template:2:6: BIND_ADDRESS: not set",
        "t/a.conf.template:3:3: bad substitution ${X B}: ' ' cannot follow ${X (write $${ for a literal ${)",
        "t/sub/b.yaml.j2:1:8: undefined variable FEEDS_CLIENTID (did you mean FEEDS_CLIENT_ID?)",
        "entrypoint check: 4 problem(s) in 3 file(s), 3 template(s) checked",
    ]


def test_json_is_a_list_of_problem_objects(broken: Path) -> None:
    done = entrypoint(["check", *CONTEXT, "--format", "json", "t", "missing.j2"], broken)
    assert done.returncode == 78
    problems = json.loads(done.stdout)
    assert sorted(problems, key=lambda p: (p["file"], p["line"] or 0)) == sorted(
        EXPECTED, key=lambda p: (str(p["file"]), p["line"] or 0)
    )
    assert all(list(p) == ["file", "line", "col", "variable", "message"] for p in problems)
    assert done.stderr == "entrypoint check: 4 problem(s) in 3 file(s), 3 template(s) checked\n"


def test_json_success_is_an_empty_list_and_exit_zero(broken: Path) -> None:
    done = entrypoint(["check", *CONTEXT, "--format", "json", "t/ok.tmpl"], broken)
    assert (done.returncode, json.loads(done.stdout)) == (0, [])
    assert done.stderr == "entrypoint check: 1 template(s) OK\n"


def test_github_annotations(broken: Path) -> None:
    done = entrypoint(["check", *CONTEXT, "--format", "github", "t", "missing.j2"], broken)
    assert done.returncode == 78
    assert done.stdout.splitlines() == [
        "::error file=missing.j2::template not found",
        "::error file=t/a.conf.template,line=2,col=6::BIND_ADDRESS: not set",
        "::error file=t/a.conf.template,line=3,col=3::bad substitution ${X B}: ' ' cannot follow ${X "
        "(write $${ for a literal ${)",
        "::error file=t/sub/b.yaml.j2,line=1,col=8::undefined variable FEEDS_CLIENTID "
        "(did you mean FEEDS_CLIENT_ID?)",
    ]
    assert "4 problem(s)" in done.stderr


def test_github_escapes_what_workflow_commands_reserve(tmp_path: Path) -> None:
    write(tmp_path / "a,b.template", "${X:?100% broken}\n")
    done = entrypoint(["check", "--clean-env", "--format", "github", "a,b.template"], tmp_path)
    assert done.stdout == "::error file=a%2Cb.template,line=1,col=1::X: 100%25 broken\n"


def test_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    assert entrypoint(["check", "--format", "xml", "x"], tmp_path).returncode == 2


def test_check_once_can_run_repeatedly_in_one_process(
    broken: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check --watch (issue 14) calls the one-check function again after each change."""
    from entrypoint.commands import check

    monkeypatch.chdir(broken)
    ns = check.build_parser().parse_args([*CONTEXT, "--format", "json", "t/ok.tmpl"])
    assert check.check_once(ns) == 0
    write(broken / "t" / "ok.tmpl", "${NOPE}\n")
    assert check.check_once(ns) == 78
    out = capsys.readouterr().out
    first, second = out[: out.index("]") + 1], out[out.index("]") + 1 :]
    assert json.loads(first) == [] and json.loads(second)[0]["variable"] == "NOPE"


# -- checking nothing is an error -----------------------------------------------------------


@pytest.mark.parametrize("layout", ["empty", "only-other-files", "only-kubelet-internals"])
def test_check_of_a_directory_without_templates_is_78(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    if layout == "only-other-files":
        write(folder / "README.md", "x\n")
        write(folder / "sub" / "app.conf", "x\n")
    elif layout == "only-kubelet-internals":
        (folder / "..2026_12_01").mkdir()
        write(folder / "..2026_12_01" / "x.template", "x\n")
        (folder / "..data").symlink_to("..2026_12_01")
    for fmt in ("text", "json"):
        done = entrypoint(["check", "--format", fmt, "templates"], tmp_path)
        assert done.returncode == 78
        text = done.stderr if fmt == "text" else done.stdout
        assert "templates: no template in this directory" in text or '"file": "templates"' in text
        assert ".template, .tmpl, .j2, .jinja" in text


def test_check_without_arguments_and_no_templates_dir_is_78(tmp_path: Path) -> None:
    done = entrypoint(["check"], tmp_path, {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "nowhere")})
    assert done.returncode == 78
    assert f"{tmp_path / 'nowhere'}: no template to check" in done.stderr
    assert "does not exist" in done.stderr and "0 template(s) checked" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = entrypoint(["check", "--templates-dir", str(empty)], tmp_path)
    assert done.returncode == 78 and f"{empty}: no template to check" in done.stderr
    assert "does not exist" not in done.stderr


def test_one_empty_directory_among_good_ones_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "good" / "a.template", "a\n")
    (tmp_path / "wrong").mkdir()
    done = entrypoint(["check", "good", "wrong"], tmp_path)
    assert done.returncode == 78 and done.stderr.startswith("wrong: no template in this directory")


@pytest.mark.parametrize("dest", ["", ":out"])
def test_render_of_an_explicit_empty_directory_is_78_and_writes_nothing(tmp_path: Path, dest: str) -> None:
    (tmp_path / "empty").mkdir()
    done = entrypoint(["render", f"empty{dest}"], tmp_path)
    assert done.returncode == 78
    assert done.stderr == (
        "[entrypoint] error: empty: no template in this directory (searched it and its "
        "subdirectories for files ending in .template, .tmpl, .j2, .jinja)\n"
    )
    assert not (tmp_path / "out").exists()


def test_render_without_arguments_and_no_templates_is_still_nothing_to_do(tmp_path: Path) -> None:
    """`run` renders the default templates directory: a missing or empty one is not an error there."""
    done = entrypoint(["render"], tmp_path, {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "nowhere")})
    assert done.returncode == 0, done.stderr


def test_a_kubelet_volume_is_not_empty(tmp_path: Path) -> None:
    kubelet.volume(tmp_path / "cm", {"a.conf.template": "a\n"})
    done = entrypoint(["check", "cm"], tmp_path)
    assert done.returncode == 0 and "1 template(s) OK" in done.stdout
