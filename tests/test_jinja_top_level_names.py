"""Jinja templates written for j2cli/dockerize: variables as top-level names, precedence, "did you mean"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint.errors import TemplateError, TemplateErrors
from entrypoint.render.jinja import render_jinja

ENV = {"FEEDS_CLIENT_ID": "abc", "PORT": "8080", "MARATHON_APP_ID": "/feeds", "HOST": "h1"}


def render(text: str, env: dict[str, str] | None = None, **kw: object) -> str:
    return render_jinja(text, ENV if env is None else env, filename="app.j2", **kw)  # type: ignore[arg-type]


def message(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(TemplateError) as info:
        render(text, env)
    return info.value.message


@pytest.mark.parametrize("strict", [True, False])
def test_variables_are_top_level_names(strict: bool) -> None:
    text = "id={{ FEEDS_CLIENT_ID }} port={{ PORT | int + 1 }}{% if HOST %} host={{ HOST }}{% endif %}\n"
    assert render(text, strict=strict) == "id=abc port=8081 host=h1\n"


def test_top_level_names_in_loops_macros_and_includes(tmp_path: Path) -> None:
    (tmp_path / "part.inc").write_text("inc={{ FEEDS_CLIENT_ID }}")
    text = (
        "{% macro m() %}m={{ PORT }}{% endmacro %}{{ m() }} "
        "{% for i in [1] %}{{ HOST }}{% endfor %} {% include 'part.inc' %}"
    )
    assert (
        render_jinja(text, ENV, filename=str(tmp_path / "t.j2"), include_dir=tmp_path) == "m=8080 h1 inc=abc"
    )


def test_top_level_names_read_name_file_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    assert render("{{ DB_PASSWORD }}", {"DB_PASSWORD_FILE": str(secret)}) == "s3cret"


def test_definedness_tests_and_default_work_on_top_level_names() -> None:
    text = "{{ PORT is defined }} {{ NOPE is defined }} {{ NOPE | default('d') }} {{ PORT | default('d') }}"
    assert render(text) == "True False d 8080"


# -- precedence: template names > context (env, getenv, typed objects) > Jinja globals > variables --


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ env.PORT }}", "8080"),  # a variable named env does not replace env
        ("{{ getenv('PORT') }}", "8080"),
        ("{{ orchestrator.kind }}", "marathon"),  # nor one named like a typed object
        ("{{ marathon.app_id }}", "/feeds"),
        ("{{ range(2) | list }}", "[0, 1]"),  # nor a Jinja global
        ("{% set PORT = 1 %}{{ PORT }}", "1"),  # template assignments win
        ("{% for PORT in [2] %}{{ PORT }}{% endfor %}", "2"),
        ("{% macro m(PORT) %}{{ PORT }}{% endmacro %}{{ m(3) }}", "3"),
    ],
)
def test_precedence(text: str, expected: str) -> None:
    env = {**ENV, "env": "x", "getenv": "x", "orchestrator": "x", "marathon": "x", "range": "x"}
    assert render(text, env) == expected


# -- undefined names: "did you mean" ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("{{ FEEDS_CLIENTID }}", "FEEDS_CLIENT_ID"),  # a letter missing
        ("{{ feeds_client_id }}", "FEEDS_CLIENT_ID"),  # the case differs
        ("{{ FEEDS_CLEINT_ID }}", "FEEDS_CLIENT_ID"),  # transposed
        ("{{ env.FEEDS_CLIENT_IDS }}", "FEEDS_CLIENT_ID"),  # the env.NAME form too
        ("{{ env['Port'] }}", "PORT"),
        ("{{ orchestrater.kind }}", "orchestrator"),  # context names too
        ("{{ DB_PASWORD }}", "DB_PASSWORD"),  # a NAME_FILE secret's name
    ],
)
def test_close_names_get_a_suggestion(text: str, meant: str) -> None:
    env = {**ENV, "DB_PASSWORD_FILE": "/nonexistent"}
    got = message(text, env)
    assert got.startswith("undefined variable ") and got.endswith(f"(did you mean {meant}?)"), got


@pytest.mark.parametrize("text", ["{{ NOPE }}", "{{ env.DATABASE_URL }}", "{{ X }}"])
def test_far_names_get_no_suggestion(text: str) -> None:
    assert "did you mean" not in message(text)


def test_every_undefined_name_is_reported_with_its_suggestion() -> None:
    with pytest.raises(TemplateErrors) as info:
        render("{{ FEEDS_CLIENTID }}\n{{ PROT }}\n{{ NOPE }}\n")
    got = [(e.line, e.variable, "did you mean" in e.message) for e in info.value.errors]
    assert got == [(1, "FEEDS_CLIENTID", True), (2, "PROT", True), (3, "NOPE", False)]


def cli(command: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``entrypoint COMMAND --clean-env --set FEEDS_CLIENT_ID=abc ARGS...`` as a process."""
    argv = [sys.executable, "-m", "entrypoint", command, "--clean-env", "--set", "FEEDS_CLIENT_ID=abc"]
    return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def test_lenient_renders_empty_but_warns_about_a_likely_typo(tmp_path: Path) -> None:
    template = tmp_path / "app.conf.j2"
    template.write_text("id={{ FEEDS_CLIENTID }}\nopt={{ OPTIONAL }}\nok={{ FEEDS_CLIENT_ID }}\n")
    done = cli("render", "--lenient", template)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "id=\nopt=\nok=abc\n"
    assert done.stderr.splitlines() == [
        f"[entrypoint] warning: {template}:1: undefined variable FEEDS_CLIENTID rendered empty "
        "(did you mean FEEDS_CLIENT_ID?)"
    ]


def test_check_reports_the_suggestion_at_its_position(tmp_path: Path) -> None:
    template = tmp_path / "app.conf.j2"
    template.write_text("client_id = {{ FEEDS_CLIENTID }}\n")
    done = cli("check", template)
    assert done.returncode == 78
    assert (
        f"{template}:1:16: undefined variable FEEDS_CLIENTID (did you mean FEEDS_CLIENT_ID?)" in done.stderr
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("PROT", "PORT"),
        ("PORT1", "PORT0"),
        ("HOTS", "HOST"),
        ("Host", "HOST"),
        ("MARATHON_APP_LABEL_OWNR", "MARATHON_APP_LABEL_OWNER"),
        ("HOST_NAME", None),
        ("PORTS_X", None),
        ("XY", None),
        ("ENV", "env"),
    ],
)
def test_suggestion_thresholds(name: str, meant: str | None) -> None:
    from entrypoint.render.jinja_names import suggestion

    variables = {"PORT": "1", "PORT0": "1", "HOST": "h", "MARATHON_APP_LABEL_OWNER": "me", "XZ": "1"}
    assert suggestion(name, variables, ["env", "getenv"]) == meant


def test_context_names_are_what_the_render_context_defines() -> None:
    from entrypoint.render.jinja import make_environment, template_context
    from entrypoint.render.jinja_names import CONTEXT_NAMES

    assert set(template_context(ENV, make_environment())) == CONTEXT_NAMES


def test_render_variables_lists_bare_names_too() -> None:
    from entrypoint.render.jinja import list_jinja_variables

    text = (
        "{% set x = 1 %}{{ x }} {{ FEEDS_CLIENT_ID }} {{ env.PORT }} {{ range(1) | list }}\n"
        "{% for h in HOSTS.split(',') %}{{ h }}{{ loop.index }}{% endfor %} {{ orchestrator.kind }}\n"
        "{% macro m(a) %}{{ a }}{{ DEPTH }}{% endmacro %}{{ FEEDS_CLIENT_ID }}\n"
    )
    uses = [(u.name, u.line, u.column) for u in list_jinja_variables(text, filename="t.j2")]
    assert uses == [
        ("FEEDS_CLIENT_ID", 1, 27),
        ("PORT", 1, 53),
        ("HOSTS", 2, 13),
        ("DEPTH", 3, 27),
        ("FEEDS_CLIENT_ID", 3, 52),
    ]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("{% if FEEDS_CLIENTID %}x{% endif %}", "taken as false"),
        ("{% for i in FEEDS_CLIENTID %}{% endfor %}", "taken as empty"),
        ("{{ FEEDS_CLIENTID }}", "rendered empty"),
    ],
)
def test_lenient_warns_wherever_a_typo_is_used(
    text: str, what: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert render(text, strict=False) == ""
    err = capfd.readouterr().err
    assert f"app.j2:1: undefined variable FEEDS_CLIENTID {what} (did you mean FEEDS_CLIENT_ID?)" in err


def test_lenient_is_silent_for_names_far_from_any_variable(capfd: pytest.CaptureFixture[str]) -> None:
    assert render("{% if OPTIONAL_FLAG %}x{% endif %}{{ OTHER }}", strict=False) == ""
    assert capfd.readouterr().err == ""
