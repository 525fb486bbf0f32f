"""Sandboxed Jinja2: errors with FILE:LINE and the name, filters, NAME_FILE, sandbox escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint.errors import TemplateError
from entrypoint.render.jinja import list_jinja_variables, render_jinja

ENV = {"PORT": "8080", "FLAG": "yes", "LIST": "a, b,,c", "NAME": "it's \"q\""}


def render(text: str, env: dict[str, str] | None = None, **kw: object) -> str:
    return render_jinja(text, ENV if env is None else env, filename="app.conf.j2", **kw)  # type: ignore[arg-type]


def error_of(text: str, env: dict[str, str] | None = None, **kw: object) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        render(text, env, **kw)
    return info.value


def test_env_attribute_and_item_access() -> None:
    assert render("listen {{ env.PORT }};\n{{ env['PORT'] }}") == "listen 8080;\n8080"


def test_trailing_newline_is_kept() -> None:
    assert render("x\n") == "x\n"
    assert render("x\n\n") == "x\n\n"


def test_autoescape_is_off() -> None:
    assert render("{{ '<a & b>' }}\n") == "<a & b>\n"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a\nb {{ env.MISSING }}\n", 2, 10),
        ("a\n\n{{ env['MISSING'] }}\n", 3, 9),
        ("{{ MISSING }}\n", 1, 4),
        ("{% for x in [1] %}\n{{ x }}\n  {{ getenv('MISSING') }}\n{% endfor %}\n", 3, 14),
    ],
)
def test_undefined_is_an_error_with_file_line_and_name(text: str, line: int, column: int) -> None:
    err = error_of(text)
    assert (err.filename, err.line, err.column, err.variable) == ("app.conf.j2", line, column, "MISSING")
    assert "MISSING" in err.message
    assert err.location_message().startswith(f"app.conf.j2:{line}:{column}: ")


def test_lenient_renders_undefined_as_empty() -> None:
    assert render("[{{ env.MISSING }}][{{ MISSING.deeper }}]\n", strict=False) == "[][]\n"


def test_syntax_error_reports_line() -> None:
    err = error_of("ok\n{% if %}\n")
    assert err.line == 2 and "syntax error" in err.message


def test_undefined_inside_an_include_points_at_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "part.j2").write_text("one\n{{ env.GONE }}\n")
    with pytest.raises(TemplateError) as info:
        main = str(tmp_path / "main.j2")
        render_jinja("{% include 'part.j2' %}\n", {}, filename=main, include_dir=tmp_path)
    assert info.value.filename.endswith("part.j2") and info.value.line == 2


def test_include_is_confined_to_the_template_directory(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("nope\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    with pytest.raises(TemplateError, match="include not found"):
        render_jinja("{% include '../secret' %}", {}, filename=str(sub / "m.j2"), include_dir=sub)
    with pytest.raises(TemplateError):
        render_jinja("{% include 'x' %}", {}, filename="m.j2", include_dir=None)


@pytest.mark.parametrize(
    "text",
    [
        "{{ ().__class__.__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('id') }}",
        "{{ self.__init__.__globals__ }}",
        "{{ getenv.__globals__ }}",
        "{{ env.__class__.__base__.__subclasses__() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
    ],
)
def test_sandbox_escapes_are_refused(text: str) -> None:
    err = error_of(text)
    assert err.line == 1


@pytest.mark.parametrize(
    "text",
    ["{{ ().__class__ }}", "{{ cycler.__init__ }}"],
)
def test_sandbox_unsafe_attributes_are_inert_when_lenient(text: str) -> None:
    try:
        out = render(text, strict=False)
    except TemplateError:
        return
    assert "class" not in out and "function" not in out


def test_filters() -> None:
    assert render("{{ env.NAME | json }}") == '"it\'s \\"q\\""'
    assert render("{{ 'a: b\\n' | yaml_quote }}") == '"a: b\\n"'
    assert render("{{ env.FLAG | bool }} {{ 'off' | bool }} {{ '1' | bool }}") == "True False True"
    assert render("{{ env.PORT | int + 1 }}") == "8081"
    assert render("{{ env.LIST | split(',') }}") == "['a', 'b', 'c']"
    assert render("{{ 'a b  c' | split | join('-') }}") == "a-b-c"
    assert render("{{ env.NAME | shell_quote }}") == "'it'\"'\"'s \"q\"'"


@pytest.mark.parametrize(
    ("text", "word"), [("{{ env.PORT | bool }}", "bool"), ("{{ env.FLAG | int }}", "int")]
)
def test_bad_conversions_are_errors_without_the_value(text: str, word: str) -> None:
    err = error_of(text, {"PORT": "8080", "FLAG": "s3cr3t-value"})
    assert word in err.message and "8080" not in err.message and "s3cr3t" not in err.message


def test_getenv_default_and_name_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    env = {"DB_PASSWORD_FILE": str(secret), "SET": "v"}
    assert render("{{ getenv('DB_PASSWORD') }}", env) == "hunter2"
    assert render("{{ getenv('SET', 'd') }} {{ getenv('UNSET', 'd') }}", env) == "v d"
    assert error_of("{{ getenv('UNSET') }}", env).variable == "UNSET"


def test_values_are_never_re_rendered() -> None:
    env = {"V": "{{ 7*7 }} ${OTHER} $(id)"}
    assert render("{{ env.V }}\n", env) == "{{ 7*7 }} ${OTHER} $(id)\n"


def test_list_variables() -> None:
    uses = list_jinja_variables("{{ env.A }}\n{{ env['B'] }} {{ getenv('C', 'dflt') }}\n", filename="t")
    assert [(u.name, u.line, u.default) for u in uses] == [("A", 1, None), ("B", 2, None), ("C", 2, "dflt")]


def test_every_undefined_is_reported_once() -> None:
    from entrypoint.errors import TemplateErrors

    text = "{{ env.A }}\n{% for i in [1, 2] %}{{ env.B }}{% endfor %}\n{% if env.C %}x{% endif %}\n"
    with pytest.raises(TemplateErrors) as info:
        render(text, {})
    assert [(e.line, e.variable) for e in info.value.errors] == [(1, "A"), (2, "B"), (3, "C")]


def test_defined_tests_and_default_filter_are_not_errors() -> None:
    text = "{% if env.X is defined %}x{% endif %}{{ env.X | default('d') }}{{ env.get('X', 'g') }}\n"
    assert render(text, {}) == "dg\n"


def test_filter_on_undefined_reports_the_variable_once() -> None:
    err = error_of("{{ env.PORTX | int }}\n", {})
    assert (err.line, err.variable) == (1, "PORTX") and "undefined variable PORTX" in err.message


def test_int_accepts_marathon_doubles_but_not_fractions() -> None:
    """MARATHON_APP_RESOURCE_MEM is a Java double ("32.0"): `| int` must take it."""
    assert render("{{ env.MEM | int }}", {"MEM": "32.0"}) == "32"
    assert render("{{ env.MEM | int // 2 }}", {"MEM": "1.0E3"}) == "500"
    assert "int: cannot read" in error_of("{{ env.MEM | int }}", {"MEM": "32.5"}).message


def test_json_of_an_undefined_variable_names_it() -> None:
    assert error_of("{{ env.NOPE | json }}").variable == "NOPE"


def test_env_resolves_name_file_secrets_like_the_shell_syntax(tmp_path: Path) -> None:
    """`env.NAME` reads the file NAME_FILE points to; getenv too; unreadable: a clean error."""
    from entrypoint.context.sources import Environment

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    env = Environment({"DB_PASSWORD_FILE": str(secret)})
    assert render("{{ env.DB_PASSWORD }} {{ getenv('DB_PASSWORD') }}", env) == "s3cret s3cret"
    broken = Environment({"NOPE_FILE": str(tmp_path / "missing")})
    assert render("{{ getenv('NOPE', 'dflt') }}", broken) == "dflt"
    message = error_of("{{ env.NOPE }}", broken).message
    assert message.startswith("NOPE_FILE points to") and "ContextError" not in message
