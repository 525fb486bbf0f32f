"""Hand-written cases for the ``shell`` syntax, plus GNU envsubst as an oracle
for everything that is not one of our extensions."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from entrypoint.errors import TemplateError, TemplateErrors
from entrypoint.render.model import Selection, VariableUse
from entrypoint.render.shell import list_variables, render_shell
from tests.reference import DATA

UNSET: dict[str, str] = {}
EMPTY = {"X": ""}
SET = {"X": "val"}


def render(text: str, env: dict[str, str] | None = None, **kw: object) -> str:
    return render_shell(text, env if env is not None else {}, **kw)  # type: ignore[arg-type]


def errors(text: str, env: dict[str, str] | None = None, **kw: object) -> list[TemplateError]:
    with pytest.raises(TemplateErrors) as info:
        render(text, env, **kw)
    return info.value.errors


def located(errs: list[TemplateError]) -> list[str]:
    return [e.location_message() for e in errs]


# --- operators x {unset, empty, set} -------------------------------------------------

OPERATOR_TABLE = [
    # template,   unset,  empty,  set
    ("${X-w}", "w", "", "val"),
    ("${X:-w}", "w", "w", "val"),
    ("${X=w}", "w", "", "val"),
    ("${X:=w}", "w", "w", "val"),
    ("${X+w}", "", "w", "w"),
    ("${X:+w}", "", "", "w"),
    ("${X?w}", None, "", "val"),
    ("${X:?w}", None, None, "val"),
]


@pytest.mark.parametrize(("template", "unset", "empty", "is_set"), OPERATOR_TABLE)
def test_operator_semantics(template: str, unset: str | None, empty: str | None, is_set: str) -> None:
    for env, expected in ((UNSET, unset), (EMPTY, empty), (SET, is_set)):
        if expected is None:
            (err,) = errors(template, env)
            assert err.message == "X: w"
            assert (err.line, err.column, err.variable) == (1, 1, "X")
        else:
            assert render(template, env) == expected, (template, env)


@pytest.mark.parametrize(
    ("template", "env", "message"),
    [
        ("${X?}", UNSET, "X: parameter not set"),
        ("${X:?}", UNSET, "X: parameter null or not set"),
        ("${X:?}", EMPTY, "X: parameter null or not set"),
        ("${X:?need $Y here}", {"Y": "yy"}, "X: need yy here"),
    ],
)
def test_error_operator_messages(template: str, env: dict[str, str], message: str) -> None:
    (err,) = errors(template, env)
    assert err.message == message


def test_assignment_visible_later_and_env_untouched() -> None:
    env = {"Y": "y"}
    assert render("[$X] ${X:=a$Y} [$X] ${X:=other} [${X}]", env) == "[] ay [ay] ay [ay]"
    assert env == {"Y": "y"}
    assert render("${E=new}|$E|${E:=new}|$E", {"E": ""}) == "||new|new"
    assert render("${A:=a${A:=b}} $A") == "ab ab"
    # assignments live for one render only
    assert render("$X") == ""


def test_words_are_expanded_lazily() -> None:
    # the word of an operator that does not fire is not evaluated: no error, no assignment
    assert render("${X:-${Y:?boom}}${X:+${Z:=zz}}[$Z]", SET) == "valzz[zz]"
    assert render("${X:-${Y:?boom}}", SET, strict=True) == "val"
    assert render("${X+${Y:=yy}}[$Y]", UNSET) == "[]"


# --- nested words, text, $$ ----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # a8m/envsubst bugs (#30): the word is text + refs + nested expansions
        ("${N:-a$BAR}", "abar"),
        ("${N:-$BAR$FOO}", "barfoo"),
        ("${N:-$BAR-x}", "bar-x"),
        ("${N:-${BAR}}", "bar"),
        ("${N:-a ${M:-b ${O:-c $FOO} d} e}", "a b c foo d e"),
        ("${N:-{a}}|", "{a}|"),  # a bare '{' does not nest (as in bash)
        ("${N:-x}}", "x}"),
        ("${N:--1} ${M:==1} ${O:-http://localhost:8080/$FOO} $M", "-1 =1 http://localhost:8080/foo =1"),
        ("${N:-}|${N-}|${FOO:+}|", "|||"),
        ("${N:-line1\nline2}", "line1\nline2"),
        ("${N:-a$}b ${N:-$.} ${N:-$ x} ${N:-$'q'}", "a$b $. $ x $'q'"),
        ("${N:-'y' \"z\"}", "'y' \"z\""),  # quotes are plain text
        ("${N:-a\\}b}", "a\\b}"),  # backslash is plain text
        # a8m #53: :+ on an empty value is empty
        ("${EMPTY:+hello}|${EMPTY+hello}", "|hello"),
        # a8m: `${_} $FOO` is fine
        ("${_} $FOO", " foo"),
        # $$ escape
        ("$$", "$"),
        ("$${FOO}", "${FOO}"),
        ("$$FOO", "$FOO"),
        ("$$$FOO", "$foo"),
        ("$$$$", "$$"),
        ("$$${BAZ:-baz}", "$baz"),
        ("${N:-$$FOO}", "$FOO"),
        ("${N:-$${FOO}}", "${FOO}"),
        ("price: 5$$", "price: 5$"),
    ],
)
def test_words_and_escapes(template: str, expected: str) -> None:
    assert render(template, {"FOO": "foo", "BAR": "bar", "EMPTY": "", "_": "u"} | {"_": ""}) == expected


# --- GNU literal forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "$1 ${1} $1FOO $0 ${10}",
        "$é",
        "${#FOO} ${FOO:1:2} ${FOO/o/0} ${FOO%o} ${FOO#f} ${!FOO} ${FOO^^} ${FOO[0]}",
        "${FOO@Q} ${!FOO*} ${!FOO@} ${#FOO[0]} ${FOO,,} ${FOO//o/0}",
        "cost $ 5 $. $- $@ $* $# $? $! $( $[ $/ $(id) `id`",
        "end$",
        "${FOO: -1} ${FOO::} ${#-} ${#?} ${-} ${$} ${!} ${#} ${@} ${*}",
    ],
)
def test_gnu_literal_forms_stay_literal(template: str) -> None:
    """What bash expands in ways we do not support, at top level, is copied as GNU copies it."""
    assert render(template, {"FOO": "foo", "1": "one"}) == template


def test_gnu_literal_brace_still_scans_inside() -> None:
    assert render("${FOO/o/$FOO} ${FOO}}", {"FOO": "foo"}) == "${FOO/o/foo} foo}"
    assert render("x ${FOO/o/\n$FOO}", {"FOO": "foo"}) == "x ${FOO/o/\nfoo}"


@pytest.mark.parametrize(
    ("template", "where", "message"),
    [
        ("port = ${PORT\nmore text", "1:8", "unterminated ${PORT: the line ends before its }"),
        ("port = ${PORT\nmore}", "1:8", "unterminated ${PORT: the line ends before its }"),
        ("a\r\nb ${PORT\r\n}", "2:3", "unterminated ${PORT: the line ends before its }"),
        ("x ${A B}", "1:3", "bad substitution ${A B}: ' ' cannot follow ${A"),
        ("${A!}", "1:1", "bad substitution ${A!}: '!' cannot follow ${A"),
        ("${1x}", "1:1", "bad substitution ${1x}: 'x' cannot follow ${1"),
        ("${1FOO}", "1:1", "bad substitution ${1FOO}: 'F' cannot follow ${1"),
        ("${}", "1:1", "bad substitution ${}: a name must follow ${"),
        ("${}x", "1:1", "bad substitution ${}: a name must follow ${"),
        ("${ FOO}", "1:1", "bad substitution ${ FOO}: a name must follow ${"),
        ("${FOO }", "1:1", "bad substitution ${FOO }: ' ' cannot follow ${FOO"),
        ("${é}", "1:1", "bad substitution ${é}: a name must follow ${"),
        ("${{FOO}}", "1:1", "bad substitution ${{FOO}: a name must follow ${"),
        ("${$FOO}", "1:1", "bad substitution ${$FOO}: 'F' cannot follow ${$"),
        ("${FOO:}", "1:1", "bad substitution ${FOO:}: '}' cannot follow ${FOO:"),
        ("${FOO@}", "1:1", "bad substitution ${FOO@}: '}' cannot follow ${FOO@"),
        ("${FOO@x}", "1:1", "bad substitution ${FOO@x}: 'x' cannot follow ${FOO@"),
        ("${FOO.bar}", "1:1", "bad substitution ${FOO.bar}: '.' cannot follow ${FOO"),
        ("${FOO*}", "1:1", "bad substitution ${FOO*}: '*' cannot follow ${FOO"),
        ("${FOO[}", "1:1", "bad substitution ${FOO[}: '[' cannot follow ${FOO"),
        ("${#FOO x}", "1:1", "bad substitution ${#FOO x}: ' ' cannot follow ${#FOO"),
        ("${!FOO x}", "1:1", "bad substitution ${!FOO x}: ' ' cannot follow ${!FOO"),
        ("ok\n  ${FOO/x", "2:3", "unterminated ${: no closing }"),
        ("${FOO:1", "1:1", "unterminated ${: no closing }"),
    ],
)
def test_what_bash_rejects_is_an_error_at_its_dollar(template: str, where: str, message: str) -> None:
    [error] = errors(template, {"FOO": "foo"}, filename="f")
    assert f"{error.line}:{error.column}" == where
    assert error.message == f"{message} (write $${{ for a literal ${{)"


def test_every_bad_substitution_is_reported_and_the_rest_still_checked() -> None:
    text = "a=${A B}\nb=${PORT\nc=${C:?needed}\nd=$${ literal\n"
    assert located(errors(text, {})) == [
        "<template>:1:3: bad substitution ${A B}: ' ' cannot follow ${A (write $${ for a literal ${)",
        "<template>:2:3: unterminated ${PORT: the line ends before its } (write $${ for a literal ${)",
        "<template>:3:3: C: needed",
    ]


VECTORS = DATA / "gnu-envsubst-vectors.jsonl"
# the vectors where `shell` deliberately differs: operators and the $$ escape
EXTENSIONS = {
    "default_forms_verbatim",
    "default_forms_unset_verbatim",
    "default_form_inner_var_expanded",
    "double_dollar_no_escape",
    "double_dollar_braced",
    # `${` cut off by the end of the file is an error here (a truncated template), literal in GNU
    "dollar_brace_at_eof",
    "unterminated_brace_eof",
}
# `${` forms bash refuses with "bad substitution": errors here, literal in GNU
BAD_SUBSTITUTIONS = {
    "digit_first_not_a_name",
    "non_ascii_not_name",
    "space_inside_braces",
    "empty_braces",
    "double_brace",
    "dollar_brace_dollar",
    "unterminated_brace_newline",
}
EXTENSIONS |= BAD_SUBSTITUTIONS


def _vectors() -> list[dict[str, object]]:
    if not VECTORS.exists():
        return []
    records = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    return [r for r in records if not r["args"] and r["id"] not in EXTENSIONS]


@pytest.mark.skipif(not VECTORS.exists(), reason="GNU vectors not available")
def test_gnu_vectors_bash_refuses_are_errors() -> None:
    records = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    chosen = [r for r in records if r["id"] in BAD_SUBSTITUTIONS]
    assert len(chosen) == len(BAD_SUBSTITUTIONS)
    for record in chosen:
        template = base64.b64decode(str(record["template_b64"])).decode("utf-8", "surrogateescape")
        with pytest.raises(TemplateErrors):
            render(template, record["env"])  # type: ignore[arg-type]


@pytest.mark.skipif(not VECTORS.exists(), reason="GNU vectors not available")
@pytest.mark.parametrize("record", _vectors(), ids=lambda r: str(r["id"]))
def test_gnu_vectors(record: dict[str, object]) -> None:
    template = base64.b64decode(str(record["template_b64"])).decode("utf-8", "surrogateescape")
    expected = base64.b64decode(str(record["expected_b64"])).decode("utf-8", "surrogateescape")
    assert render(template, record["env"]) == expected  # type: ignore[arg-type]


GNU_ALPHABET = st.sampled_from(list("$${}{}:-=+?#!@*1 \nFOBAR_xé.\"'/"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(GNU_ALPHABET, max_size=30).map("".join))
def test_agrees_with_gnu_envsubst_outside_extensions(template: str) -> None:
    """Any template that uses none of our extensions renders exactly like GNU envsubst."""
    assume("$$" not in template)
    try:
        uses = list_variables(template)
    except TemplateErrors:
        assume(False)
        raise
    assume(all(u.operator is None for u in uses))
    env = {"FOO": "foo", "A": "a", "_": "u", "F": ""}
    gnu = subprocess.run(
        ["/usr/bin/envsubst"], input=template.encode(), env=env, capture_output=True, check=True, timeout=10
    ).stdout.decode()
    assert render(template, env) == gnu


# --- strict --------------------------------------------------------------------------


def test_strict() -> None:
    env = {"E": ""}
    assert located(errors("a $X b\n  ${Y}", env, strict=True, filename="f.conf")) == [
        "f.conf:1:3: X: not set",
        "f.conf:2:3: Y: not set",
    ]
    # empty is set; any operator supplies a default, even an empty one (a8m #61)
    for ok in ("$E${E}", "${X:-}", "${X-}", "${X:+w}", "${X+w}", "${X:=}", "${X:-$E}"):
        assert render(ok, env, strict=True) == ""
    # a default that itself references an unset variable is an error (the word is evaluated)
    assert located(errors("${X:-$Y}", env, strict=True)) == ["<template>:1:6: Y: not set"]
    # without strict, unset is empty
    assert render("[$X][${Y}]") == "[][]"


# --- errors: positions, collection, unterminated, unsupported ------------------------


def test_errors_are_all_collected_with_file_line_col() -> None:
    text = "ok ${A:?first}\nxx ${B:?second $C}\n\té${D?}\n$U\n"
    errs = errors(text, {"C": "c"}, filename="/etc/app.conf", strict=True)
    assert located(errs) == [
        "/etc/app.conf:1:4: A: first",
        "/etc/app.conf:2:4: B: second c",
        "/etc/app.conf:3:3: D: parameter not set",
        "/etc/app.conf:4:1: U: not set",
    ]
    assert [e.variable for e in errs] == ["A", "B", "D", "U"]
    assert str(TemplateErrors(errs)).count("\n") == 3


def test_nested_error_position_is_its_own_dollar() -> None:
    assert located(errors("${A:-xy${B:?no}}")) == ["<template>:1:8: B: no"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("x ${FOO:-abc", "1:3"),
        ("line\n  ${FOO-abc\n}x ${BAR:=", "3:4"),  # first one closed by the '}' on line 3
        ("${A:-${B:-x}", "1:1"),  # reported at the outermost open ${
        ("${A:-${B:-x", "1:1"),
        ("${A:-", "1:1"),
        ("end${", "1:4"),
        ("x ${FOO", "1:3"),
    ],
)
def test_unterminated_is_an_error(text: str, where: str) -> None:
    (err,) = errors(text)
    assert err.message == "unterminated ${"
    assert f"{err.line}:{err.column}" == where


@pytest.mark.parametrize(
    ("text", "col", "fragment"),
    [
        ("..${1:-x}", 3, "${1:-"),
        ("${@:-x}", 1, "${@:-"),
        ("${#:-x}", 1, "${#:-"),
        ("${!FOO:-x}", 1, "${!FOO:-"),
        ("${FOO[0]:-x}", 1, "${FOO[0]:-"),
        ("${N:-$(id)}", 6, "command substitution $(...)"),
        ("${N:-`id`}", 6, "command substitution `...`"),
        ("${N:-$1}", 6, "positional parameter $1"),
        ("${N:-$?}", 6, "special parameter $?"),
        ("${N:-${#FOO}}", 6, "unsupported parameter expansion in a word"),
        ("${N:-${FOO/a/b}}", 6, "unsupported parameter expansion in a word"),
    ],
)
def test_bash_forms_we_cannot_honour_are_errors(text: str, col: int, fragment: str) -> None:
    (err,) = errors(text, {"FOO": "foo"})
    assert err.column == col
    assert fragment in err.message


def test_columns_count_characters_not_bytes() -> None:
    (err,) = errors("ééé ${X:?m}")
    assert (err.line, err.column) == (1, 5)


# --- selection -----------------------------------------------------------------------

NGINX = """\
server {
    listen ${PORT};
    server_name ${SERVER_NAME:-localhost};
    location / {
        proxy_set_header Host $host;
        proxy_set_header X-Proxy $http_proxy;
        try_files $uri $uri/ =404;
        set $backend "${UPSTREAM:-http://127.0.0.1:$PORT}";
    }
}
"""


def test_nginx_braced_only() -> None:
    env = {"PORT": "8080", "host": "BAD", "uri": "BAD", "http_proxy": "BAD"}
    out = render(NGINX, env, selection=Selection(braced_only=True))
    assert "listen 8080;" in out
    assert "server_name localhost;" in out
    assert "Host $host;" in out and "X-Proxy $http_proxy;" in out and "try_files $uri $uri/" in out
    # inside a selected word, a bare ref is still not selected: copied verbatim
    assert 'set $backend "http://127.0.0.1:$PORT";' in out
    assert "BAD" not in out


def test_nginx_names_and_prefixes() -> None:
    env = {"PORT": "8080", "host": "BAD", "uri": "BAD", "http_proxy": "BAD", "SERVER_NAME": "ex"}
    out = render(NGINX, env, selection=Selection(names=frozenset({"PORT", "UPSTREAM", "SERVER_NAME"})))
    assert "listen 8080;" in out and "server_name ex;" in out
    assert 'set $backend "http://127.0.0.1:8080";' in out
    assert "$host" in out and "$http_proxy" in out and "$uri $uri/" in out
    out = render(
        "${APP_X:-d} ${OTHER:-keep $APP_X} $APP_Y", {"APP_Y": "y"}, selection=Selection(prefixes=("APP_",))
    )
    assert out == "d ${OTHER:-keep $APP_X} y"


def test_unselected_is_verbatim_and_inert() -> None:
    sel = Selection(names=frozenset({"A"}))
    # not selected: no assignment, no error, no strict complaint
    assert render("${B:=x}[$B]${B:?no}", {}, selection=sel, strict=True) == "${B:=x}[$B]${B:?no}"
    # $$ is still the escape with a selection active
    assert render("$$A $A", {"A": "a"}, selection=sel) == "$A a"
    # syntax errors do not depend on the selection
    assert errors("${B:-", selection=sel)[0].message == "unterminated ${"


# --- values are inert ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["${OTHER}", "$(id)", "{{ 7*7 }}", "$OTHER", "$$", "`id`", "${X:?boom}"])
def test_values_are_never_reexpanded(value: str) -> None:
    env = {"V": value, "OTHER": "SHOULD_NOT_APPEAR", "E": ""}
    assert (
        render("$V|${V}|${E:-$V}|${V:+[$V]}|${N:=$V}$N", env)
        == f"{value}|{value}|{value}|[{value}]|{value}{value}"
    )


# --- list_variables ------------------------------------------------------------------


def test_list_variables() -> None:
    uses = list_variables("$A ${B:-x${C}}\n  ${D} ${E:?m} $$F $1 ${G:=$A}")
    assert uses == [
        VariableUse("A", 1, 1),
        VariableUse("B", 1, 4, default="x${C}", operator=":-"),
        VariableUse("C", 1, 10),
        VariableUse("D", 2, 3),
        VariableUse("E", 2, 8, default="m", operator=":?"),
        VariableUse("G", 2, 23, default="$A", operator=":="),
        VariableUse("A", 2, 28),
    ]
    with pytest.raises(TemplateErrors):
        list_variables("${A:-")


# --- robustness ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_deep_nesting_has_no_recursion_limit() -> None:
    depth = 5000
    text = "".join(f"${{V{i}:-" for i in range(depth)) + "bottom" + "}" * depth
    assert render(text, {}) == "bottom"
    assert render(text, {"V4999": "v"}) == "v"
    uses = list_variables(text)
    assert len(uses) == depth and uses[-1].column == 1 + sum(len(f"${{V{i}:-") for i in range(depth - 1))
    (err,) = errors(text[:-1])
    assert (err.message, err.column) == ("unterminated ${", 1)
    assert render("${A:=" * depth + "x" + "}" * depth + "$A", {}) == "xx"


@pytest.mark.timeout(60)
def test_large_inputs_are_linear_enough() -> None:
    name = "N" * 200_000
    value = "v" * 1_000_000
    assert render(f"${name} ${{{name}:-d}}", {name: value}) == f"{value} {value}"
    many = "${A:-x} $B $$ text " * 50_000
    assert render(many, {"B": "b"}) == "x b $ text " * 50_000
    bad_arrays = "${a[" * 100_000  # each one a bad substitution; finding them stays linear
    with pytest.raises(TemplateErrors) as info:
        render(bad_arrays, {})
    assert len(info.value.errors) == 100_000
    assert re.fullmatch(r"(x b \$ text )+", render(many, {"B": "b"}))
