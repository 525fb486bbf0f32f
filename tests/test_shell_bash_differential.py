"""Differential test: the ``shell`` syntax against bash itself.

Each template is put in an unquoted here-document (``cat <<DELIM``), which
is where bash expands ``$NAME``/``${NAME OP word}`` but treats quotes in
plain text literally.  Generated templates are restricted to what both
sides define identically: names from a pool that bash never sets itself,
the six non-erroring operators, nested words, and text without ``$``
(``$$`` is bash's PID), backslash, backquote, and, inside words, without
quotes (bash still honours those inside ``${...}`` of a here-document).
Many templates go to one bash process, each in its own subshell so that
``:=`` assignments do not leak, separated by NUL bytes.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoint.errors import TemplateErrors
from entrypoint.render.shell import render_shell

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash not installed")

# Upper-case/digits only: bash's own variables (BASH*, PWD, PATH, IFS, RANDOM...)
# are upper case too, so the pool avoids all of them and plain text has no
# upper-case letters (so `$A` + text can never spell one of them).
NAMES = ["A", "B", "FOO", "X1", "Q_Z"]
OPS = [":-", "-", ":=", "=", ":+", "+"]
DELIM = "END_OF_TEMPLATE_7Q"
# No $ \ ` anywhere.  Only at top level: '}', quotes, and '<' '>' (inside
# ${...} bash parses `<(` as a process substitution and wants its ')').
WORD_CHARS = "abz09 \n\t:-=+?#%/.,;~*!@^&()[]{|_"
TOP_CHARS = WORD_CHARS + "}'\"<>"
VALUE_CHARS = "ab Z$\\`'\"{}()\n:-=+?#~*"

names = st.sampled_from(NAMES)
word_text = st.text(WORD_CHARS, min_size=1, max_size=6)
top_text = st.text(TOP_CHARS, min_size=1, max_size=8)


def _ref(name: str, braced: bool) -> str:
    return f"${{{name}}}" if braced else f"${name}"


refs = st.builds(_ref, names, st.booleans())


def _expansion(word: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda n, op, w: f"${{{n}{op}{w}}}", names, st.sampled_from(OPS), word)


words = st.recursive(
    st.one_of(st.just(""), word_text, refs),
    lambda inner: st.lists(st.one_of(word_text, refs, _expansion(inner)), max_size=4).map("".join),
    max_leaves=8,
)
templates = st.lists(st.one_of(top_text, refs, _expansion(words)), max_size=8).map("".join)
values = st.one_of(st.none(), st.just(""), st.text(VALUE_CHARS, max_size=6))
environments = st.fixed_dictionaries({n: values for n in NAMES}).map(
    lambda d: {k: v for k, v in d.items() if v is not None}
)
cases = st.lists(st.tuples(templates, environments), min_size=1, max_size=12)


def _script(batch: list[tuple[str, dict[str, str]]]) -> str:
    parts = []
    for template, env in batch:
        assigns = "".join(f"{k}={shlex.quote(v)}; " for k, v in env.items())
        parts.append(f"( {assigns}cat <<{DELIM}\n{template}\n{DELIM}\n); printf '\\0'\n")
    return "".join(parts)


def bash_render(batch: list[tuple[str, dict[str, str]]]) -> list[str]:
    assert BASH is not None
    proc = subprocess.run(
        [BASH, "--norc", "--noprofile", "-s"],
        input=_script(batch).encode(),
        env={},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    outputs = proc.stdout.decode().split("\0")
    assert outputs[-1] == "" and len(outputs) == len(batch) + 1
    # the here-document adds the newline that ends its last line
    assert all(o.endswith("\n") for o in outputs[:-1])
    return [o[:-1] for o in outputs[:-1]]


def test_bash_oracle_sanity() -> None:
    batch = [("${A:-x}|${B:=$A}$B|${FOO+'$A'}", {"A": "a", "FOO": ""}), ("$B", {})]
    assert bash_render(batch) == ["a|aa|'a'", ""]


@settings(max_examples=300, deadline=None)
@given(cases)
def test_matches_bash(batch: list[tuple[str, dict[str, str]]]) -> None:
    expected = bash_render(batch)
    for (template, env), bash_out in zip(batch, expected, strict=True):
        assert render_shell(template, env) == bash_out, (template, env)


# -- `${` forms bash refuses ("bad substitution") are errors, and only those ----------------------
#
# Templates here are whatever follows `${`: names, digits, special parameters, operators, blanks,
# newlines, braces, punctuation.  Excluded: what would run or expand differently in bash for other
# reasons (`(` and backquote: command substitution; `[`: `$[...]` arithmetic; quotes and backslash:
# quoting inside `${...}` of a here-document).  The verdicts compared: bash prints "bad substitution"
# exactly when our parser reports a bad substitution or an unterminated `${`.

AFTER_BRACE = "AB1_ \n:-=+?#%/^,@Q!*{}.;|éx$"
BAD_CASES = [
    "${PORT\nmore", "${PORT\nmore}", "${A B}", "${A!}", "${1x}", "${}", "${A:}", "${ A}", "${A }", "${é}",
    "${{A}}", "${A@}", "${A@z}", "${A.b}", "${A|x}", "${A;}", "${A*}", "${A[}", "${A-b", "${#A x}",
    "${!A x}", "${!@^}", "${!$:1}", "${!1*}", "${?^}", "${-,}", "${#^x}", "${#%}", "${#:}",
    "${A:-x", "${$A}", "${1A}", "${C:-${B C}}", "${A}x${B D}",
]
GOOD_CASES = [
    "${A}", "${A: }", "${A:1}", "${A::}", "${A:x}", "${#A}", "${#}", "${A#x}", "${A%x}", "${A/x/y}",
    "${A^^}", "${A,}", "${A@Q}", "${A@U}", "${!A}", "${!A*}", "${!A@}", "${A[0]}", "${#A[0]}", "${10}",
    "${1}", "${@}", "${$}", "${-}", "${!}", "${A:-x\ny}", "${A/x\ny}", "$A B}", "${A-${B-x}}",
    "${!@:1}", "${!#-x}", "${!?:1}", "${!*@Q}", "${##}", "${#%x}", "${#:x}", "${#@Q}", "${!A@Q}",
]


def bash_verdicts(templates: list[str]) -> list[str]:
    """Per template: "bad" (bad substitution), "error" (another expansion error) or "ok"."""
    assert BASH is not None
    script = "".join(f"( A=aa; B=bb; set -- p1; cat <<{DELIM}\n{t}\n{DELIM}\n) 2>&1; printf '\\0'\n"
                     for t in templates)
    proc = subprocess.run([BASH, "--norc", "--noprofile", "-s"], input=script.encode(), env={},
                          capture_output=True, timeout=30, check=False)
    outputs = proc.stdout.decode(errors="replace").split("\0")
    assert len(outputs) == len(templates) + 1, proc.stderr
    return ["bad" if "bad substitution" in out else "error" if "bash: line " in out else "ok"
            for out in outputs[:-1]]


def bash_says_bad_substitution(templates: list[str]) -> list[bool]:
    return [verdict == "bad" for verdict in bash_verdicts(templates)]


def _outermost(template: str, line: int | None, column: int | None) -> bool:
    """Whether the ``${`` at LINE:COL is not inside another ``${...}`` (bash may never expand those)."""
    if line is None or column is None:
        return True
    offset = sum(len(row) + 1 for row in template.split("\n")[: line - 1]) + column - 1
    depth, i = 0, 0
    while i < offset:  # bash's matching: inside ${...}, `$${` is `$` + a nested `${`
        if template[i] == "}":
            depth, i = max(depth - 1, 0), i + 1
        elif template.startswith("${", i):
            depth, i = depth + 1, i + 2
        elif template.startswith("$$", i) and depth == 0:
            i += 2
        else:
            i += 1
    return depth == 0


def we_say_bad_substitution(template: str) -> bool:
    """Our parser reports a bad substitution (or an unterminated ``${``) outside any other ``${``."""
    try:
        render_shell(template, {"A": "aa", "B": "bb"})
    except TemplateErrors as exc:
        return any(e.message.startswith(("bad substitution", "unterminated ${"))
                   and _outermost(template, e.line, e.column) for e in exc.errors)
    return False


def test_bash_oracle_for_bad_substitutions() -> None:
    assert bash_says_bad_substitution(BAD_CASES) == [True] * len(BAD_CASES)
    assert bash_says_bad_substitution(GOOD_CASES) == [False] * len(GOOD_CASES)


@pytest.mark.parametrize("template", BAD_CASES)
def test_bad_substitution_is_an_error(template: str) -> None:
    with pytest.raises(TemplateErrors):
        render_shell(template, {"A": "aa"})


@pytest.mark.parametrize("template", GOOD_CASES)
def test_what_bash_accepts_is_no_bad_substitution(template: str) -> None:
    assert not we_say_bad_substitution(template)


# `${` + an optional `#`/`!` + a parameter that is set (bash checks some forms only for set
# parameters: `${X@}` passes when X is unset) + what follows, starting with a character that
# cannot extend the name.
PARAMETERS = ["A", "B", "1", "@", "*", "#", "?", "-", "$", "0", ""]
NOT_NAME = "".join(c for c in AFTER_BRACE if not (c.isalnum() or c == "_"))
# bash's `${!@...`, `${!#...`, `${!$...` corner depends on what $@, $# point at when it runs
# (`${!@@}` passes, `${!@Q}` does not, `${!#@1}` only when $1 is set), and so does `${!X@...}`
# (`${!A@Q1}` passes, `${!A@A1}` does not): left to the fixed cases; we copy `${!X@...}` as GNU does.
brace_body = st.one_of(
    st.builds(lambda prefix, param, head, rest: prefix + param + head + rest,
              st.sampled_from(["", "#"]), st.sampled_from(PARAMETERS),
              st.text(NOT_NAME, min_size=1, max_size=1), st.text(AFTER_BRACE, max_size=5)),
    st.builds(lambda param, head, rest: "!" + param + head + rest,
              st.sampled_from(["A", "B", "1", "0"]),
              st.text(NOT_NAME.replace("@", ""), min_size=1, max_size=1), st.text(AFTER_BRACE, max_size=5)),
    st.builds(lambda head, rest: "!" + head + rest,
              st.text(NOT_NAME.translate({ord(c): None for c in "@$!#?*"}), min_size=1, max_size=1),
              st.text(AFTER_BRACE, max_size=5)),
)
brace_forms = st.lists(
    st.tuples(brace_body, st.booleans(), st.text("ab \n}", max_size=3)),
    min_size=1, max_size=4,
).map(lambda parts: "".join(f"${{{body}{'}' if close else ''}{tail}" for body, close, tail in parts))


@settings(max_examples=300, deadline=None)
@given(st.lists(brace_forms, min_size=1, max_size=20))
def test_bad_substitutions_match_bash(batch: list[str]) -> None:
    verdicts = bash_verdicts(batch)
    for template, verdict in zip(batch, verdicts, strict=True):
        if verdict == "bad":  # bash refuses it: so do we (as a bad substitution, or another error)
            with pytest.raises(TemplateErrors):
                render_shell(template, {"A": "aa", "B": "bb"})
        elif verdict == "ok":  # bash takes it: we never call it a bad substitution
            assert not we_say_bad_substitution(template), template
        # "error": bash failed otherwise first (``${!B:`` with B unset: invalid indirect expansion)
