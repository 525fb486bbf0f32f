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
