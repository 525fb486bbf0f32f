"""What is rendered where: suffixes, mirroring, and every refused layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from entrypoint.context.settings import load_settings
from entrypoint.errors import ConfigError, OutputError
from entrypoint.render.model import Syntax, selection_of
from entrypoint.render.plan import plan_argument, plan_directory, split_template_arg


def touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    templates, out = tmp_path / "templates", tmp_path / "out"
    out.mkdir()
    touch(templates / "default.conf.template")
    touch(templates / "etc" / "app" / "app.yaml.j2")
    touch(templates / "etc" / "app" / "x.ini.tmpl")
    touch(templates / "a.jinja")
    touch(templates / "README.md")  # no known suffix: ignored
    touch(templates / ".template")  # a bare suffix is not a template name
    return templates, out


def test_directory_mode_strips_suffixes_and_mirrors(layout: tuple[Path, Path]) -> None:
    templates, out = layout
    specs = plan_directory(templates, out)
    got = {(os.path.relpath(s.src, templates), os.path.relpath(s.dest, out) if s.dest else None,
            s.syntax) for s in specs}
    assert got == {
        ("a.jinja", "a", Syntax.JINJA),
        ("default.conf.template", "default.conf", Syntax.SHELL),
        ("etc/app/app.yaml.j2", "etc/app/app.yaml", Syntax.JINJA),
        ("etc/app/x.ini.tmpl", "etc/app/x.ini", Syntax.SHELL),
    }


def test_forced_syntax_applies_to_all(layout: tuple[Path, Path]) -> None:
    templates, out = layout
    assert {s.syntax for s in plan_directory(templates, out, "envsubst")} == {Syntax.ENVSUBST}


def test_missing_templates_dir_is_nothing_to_do(tmp_path: Path) -> None:
    assert plan_directory(tmp_path / "none", tmp_path, missing_ok=True) == []


def test_template_argument_forms(tmp_path: Path) -> None:
    src = touch(tmp_path / "a.template")
    assert split_template_arg("a:b") == ("a", "b")
    assert split_template_arg(".//a/:./b//c/") == ("a", "b/c")  # printed as pathlib would
    assert plan_argument(str(src))[0].dest is None
    [spec] = plan_argument(f"{src}:{tmp_path}/a.conf")
    assert spec.dest == str(tmp_path / "a.conf")


def test_directory_argument_is_directory_mode(layout: tuple[Path, Path]) -> None:
    templates, out = layout
    assert len(plan_argument(f"{templates}:{out}")) == 4


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: None, "not found"),
        (lambda t: os.mkfifo(t), "FIFO"),
        (lambda t: t.symlink_to(t.parent / "dangling"), "not found"),
    ],
)
def test_bad_template_arguments_are_refused(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "t.template"
    make(target)
    with pytest.raises(ConfigError, match=message) as info:
        plan_argument(f"{target}:{tmp_path}/out")
    assert info.value.exit_code == 78


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t.mkdir(), "is a directory"),
        (lambda t: os.mkfifo(t), "FIFO"),
        (lambda t: t.symlink_to(t.parent / "dangling"), "not found"),
    ],
)
def test_bad_files_in_templates_dir_are_refused(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    templates, out = tmp_path / "t", tmp_path / "o"
    templates.mkdir()
    out.mkdir()
    make(templates / "bad.conf.template")
    with pytest.raises(ConfigError, match=message):
        plan_directory(templates, out)


def test_destination_in_missing_directory_is_refused(tmp_path: Path) -> None:
    src = touch(tmp_path / "a.template")
    with pytest.raises(OutputError, match="does not exist"):
        plan_argument(f"{src}:{tmp_path}/nope/a.conf")


def test_symlinked_output_subdir_leading_out_is_refused(tmp_path: Path) -> None:
    templates, out, outside = tmp_path / "t", tmp_path / "out", tmp_path / "outside"
    touch(templates / "etc" / "x.conf.template")
    out.mkdir()
    outside.mkdir()
    (out / "etc").symlink_to(outside)
    with pytest.raises(OutputError, match="outside"):
        plan_directory(templates, out)


def test_symlinked_destination_file_leading_out_is_refused(tmp_path: Path) -> None:
    templates, out = tmp_path / "t", tmp_path / "out"
    touch(templates / "x.conf.template")
    out.mkdir()
    (out / "x.conf").symlink_to(tmp_path / "victim")
    with pytest.raises(OutputError, match="outside"):
        plan_directory(templates, out)


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    templates, out = tmp_path / "t", tmp_path / "out"
    touch(templates / "sub" / "a.template")
    out.mkdir()
    (templates / "sub" / "loop").symlink_to(templates)
    with pytest.raises(ConfigError, match="symlink loop"):
        plan_directory(templates, out)
    (templates / "sub" / "loop").unlink()
    (templates / "self.template").symlink_to(templates / "self.template")
    with pytest.raises(ConfigError, match="symlink loop"):
        plan_directory(templates, out)


def test_symlinked_template_dir_inside_is_followed(tmp_path: Path) -> None:
    templates, out, shared = tmp_path / "t", tmp_path / "out", tmp_path / "shared"
    touch(shared / "s.conf.template")
    templates.mkdir()
    out.mkdir()
    (templates / "linked").symlink_to(shared)
    [spec] = plan_directory(templates, out)
    assert spec.dest == str(out / "linked" / "s.conf")


def test_settings_from_environment() -> None:
    settings = load_settings({"ENTRYPOINT_TEMPLATES_DIR": "/t", "ENTRYPOINT_ONLY": "A, B",
                              "ENTRYPOINT_BRACED_ONLY": "true", "ENTRYPOINT_GRACE_PERIOD": "3"})
    assert settings.templates_dir == "/t" and settings.output_dir == "/"
    selection = selection_of(settings)
    assert selection.names == frozenset({"A", "B"}) and selection.braced_only


@pytest.mark.parametrize(("name", "value"), [("STRICT", "maybe"), ("SYNTAX", "perl")])
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"ENTRYPOINT_{name}"):
        load_settings({f"ENTRYPOINT_{name}": value})


def test_two_templates_for_one_destination_are_refused(tmp_path: Path) -> None:
    from entrypoint.render.plan import refuse_conflicting_destinations

    a, b = touch(tmp_path / "a.template"), touch(tmp_path / "b.template")
    specs = plan_argument(f"{a}:{tmp_path}/x.conf") + plan_argument(f"{b}:{tmp_path}/./x.conf")
    with pytest.raises(OutputError, match="destination of both"):
        refuse_conflicting_destinations(specs)
