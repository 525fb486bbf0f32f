"""Property-based fuzzing of every template parser (issue 8, "Hostile and broken input").

The property: any input gives output or a clean ConfigError (TemplateError /
TemplateErrors carrying FILE:LINE:COL), never another exception, in bounded
time and memory.  Rows of docs/reliability.md name these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.errors import ConfigError, TemplateError, TemplateErrors
from entrypoint.render.engine import list_template_variables, render_template
from entrypoint.render.envsubst import iter_substituted, substitute_bytes
from entrypoint.render.jinja import render_jinja
from entrypoint.render.model import Selection, Syntax
from entrypoint.render.shell import list_variables, render_shell
from tests.streaming import stream_envsubst

PER_EXAMPLE_SECONDS = 5.0  # generous: a single example takes milliseconds
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

# Fragments that hit every branch of the shell/envsubst grammar and of Jinja's lexer.
SHELL_TOKENS = st.sampled_from([
    "$", "{", "}", "${", "$$", "$A", "${A}", "${A:-", "${A-", "${A:=", "${A=", "${A:+", "${A+", "${A:?",
    "${A?", "${#A}", "${A[0]:-", "${1:-", "${!A:-", "$(", ")", "`", "$1", "$?", "$[", ":", "-", "=", "+",
    "?", "#", "!", "@", "*", "[", "]", "\n", " ", "a", "Z", "_", "0", "é", "\u2028", "\r", "\\", "'", '"',
])
JINJA_TOKENS = st.sampled_from([
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "\n", "env", ".", "A", "[", "]", "(", ")", "'", '"', "|",
    "int", "bool", "json", "split", "default", "if", "endif", "for", "in", "endfor", "set", "=", "x",
    "macro", "endmacro", "call", "endcall", "raw", "endraw", "getenv", "orchestrator", "ports", "0",
    "1", "+", "-", "*", "/", "~", ",", ":", "is", "defined", "not", "and", "none", "-%}", "{%-", "é",
    "[1]", "[5]", "'k\nq'", "{}", "'a'",
])
# Valid text around the bad byte: the first NUL (else the first invalid byte) is what gets reported.
TEXT_NO_NUL = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=30)
VALUES = st.dictionaries(st.sampled_from(["A", "B", "X", "PORT0"]), st.text(max_size=8), max_size=4)


def shell_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.lists(SHELL_TOKENS, max_size=40).map("".join), st.text(max_size=60))


def jinja_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.lists(JINJA_TOKENS, max_size=30).map("".join), st.text(max_size=60))


def assert_positioned(exc: ConfigError, filename: str = "t") -> None:
    """Every reported problem names the file and a line (and a column)."""
    errors = exc.errors if isinstance(exc, TemplateErrors) else [exc]
    assert errors, exc
    for error in errors:
        assert isinstance(error, TemplateError), repr(error)
        assert error.filename.endswith(filename), error
        assert error.line is not None and error.line >= 1, error
        assert error.column is not None and error.column >= 1, error
        assert "\n" not in error.location_message(), error


def clean_outcome(call: Callable[[], object], filename: str = "t") -> object:
    """Run ``call``: a result, or a positioned ConfigError; anything else fails the test."""
    started = time.monotonic()
    try:
        return call()
    except ConfigError as exc:
        assert_positioned(exc, filename)
        return exc
    finally:
        assert time.monotonic() - started < PER_EXAMPLE_SECONDS


# --------------------------------------------------------------------------- shell


@FUZZ
@given(shell_texts(), VALUES, st.booleans(), st.booleans())
def test_shell_parser_any_text_renders_or_fails_with_position(text: str, env: dict[str, str],
                                                             strict: bool, braced: bool) -> None:
    selection = Selection(braced_only=braced)
    clean_outcome(lambda: render_shell(text, env, filename="t", strict=strict, selection=selection))
    uses = clean_outcome(lambda: list_variables(text, filename="t"))
    if isinstance(uses, list):
        assert all(use.line >= 1 and use.column >= 1 for use in uses)


# --------------------------------------------------------------------------- envsubst


@FUZZ
@given(st.binary(max_size=200) | st.lists(SHELL_TOKENS, max_size=40).map(lambda t: "".join(t).encode()),
       st.integers(1, 9))
def test_envsubst_engine_any_bytes_never_fails(data: bytes, chunk: int) -> None:
    env = {b"A": b"v$A", b"X": b""}
    whole = substitute_bytes(data, env)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert b"".join(iter_substituted(pieces, env)) == whole


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_engine_envsubst_syntax_any_bytes(data: bytes, strict: bool) -> None:
    out = clean_outcome(lambda: render_template(data, filename="t", syntax=Syntax.ENVSUBST, env={"A": "1"},
                                                strict=strict))
    if not strict:
        assert isinstance(out, bytes)


# --------------------------------------------------------------------------- jinja


@FUZZ
@given(jinja_texts(), VALUES, st.booleans())
def test_jinja_front_end_any_text_renders_or_fails_with_position(text: str, env: dict[str, str],
                                                                 strict: bool) -> None:
    env = {**env, "MARATHON_APP_ID": "/app"}
    clean_outcome(lambda: render_jinja(text, env, filename="t.j2", strict=strict), "t.j2")
    clean_outcome(lambda: list_template_variables(text.encode(), filename="t.j2", syntax=Syntax.JINJA),
                  "t.j2")


# --------------------------------------------------------------------------- bytes that are not text


@FUZZ
@given(TEXT_NO_NUL, st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe9t\xe9"]),
       TEXT_NO_NUL, st.sampled_from([Syntax.SHELL, Syntax.JINJA]))
def test_nul_and_invalid_utf8_are_refused_at_their_line_and_column(prefix: str, bad: bytes, suffix: str,
                                                                   syntax: Syntax) -> None:
    data = prefix.encode() + bad + suffix.encode()
    with pytest.raises(TemplateError) as info:
        render_template(data, filename="t", syntax=syntax, env={})
    err = info.value
    offset = len(prefix.encode())
    assert err.line == prefix.count("\n") + 1
    assert err.column == offset - (prefix.encode().rfind(b"\n") + 1) + 1
    assert ("NUL" in err.message) == (bad == b"\x00")
    with pytest.raises(TemplateError):
        list_template_variables(data, filename="t", syntax=syntax)
    # the envsubst syntax passes the same bytes through untouched
    assert render_template(data, filename="t", syntax=Syntax.ENVSUBST, env={}) == substitute_bytes(data, {})


def test_nul_and_invalid_utf8_pass_through_envsubst_byte_for_byte() -> None:
    data = b"\x00$A\xff\xfe${A}\xc3(\r\n\xed\xa0\x80$B"
    out = render_template(data, filename="t", syntax=Syntax.ENVSUBST, env={"A": "v", "B": "\udcff"})
    assert out == b"\x00v\xff\xfev\xc3(\r\n\xed\xa0\x80\xff"


# --------------------------------------------------------------------------- pathological sizes


def _nested(depth: int) -> str:
    return "".join(f"${{V{i}:-" for i in range(depth)) + "bottom" + "}" * depth


@pytest.mark.timeout(120)
def test_shell_nesting_20000_levels_in_bounded_time_and_memory() -> None:
    """Render, list and the unterminated error at 20,000 levels (5,000 is in test_shell_syntax).

    list_variables used to copy every nested word whole: quadratic, 2 GB at
    20,000 levels and the OOM killer at 100,000.  Words are now cut at
    MAX_DEFAULT_SHOWN characters.
    """
    depth = 20_000
    text = _nested(depth)
    tracemalloc.start()
    try:
        started = time.monotonic()
        assert render_shell(text, {}) == "bottom"
        assert render_shell(text, {f"V{depth - 1}": "deep"}) == "deep"
        uses = list_variables(text)
        with pytest.raises(TemplateErrors) as info:
            render_shell(text[:-1], {})
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(uses) == depth
    assert uses[0].default is not None and uses[0].default.endswith("...") and len(uses[0].default) == 203
    assert uses[-1].default == "bottom"
    (err,) = info.value.errors
    assert (err.line, err.column, err.message) == (1, 1, "unterminated ${")
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert elapsed < 60


@pytest.mark.timeout(120)
def test_shell_nesting_100000_levels_through_the_cli(tmp_path: Path) -> None:
    """`render --variables` and `render` on 100,000 levels: bounded RSS, one line per use."""
    (tmp_path / "deep.template").write_text(_nested(100_000))
    listing = run_measured(["render", "--clean-env", "--variables", "deep.template"], tmp_path)
    assert listing.returncode == 0, listing.stderr[-300:]
    assert listing.stdout.count(b"\n") == 100_000
    render = run_measured(["render", "--clean-env", "deep.template"], tmp_path)
    assert (render.returncode, render.stdout) == (0, b"bottom")
    assert max(listing.peak_kib, render.peak_kib) < 400 * 1024


@pytest.mark.parametrize(
    "text",
    [
        "{{ " + "(" * 10_000 + "1" + ")" * 10_000 + " }}",
        "{% if true %}" * 10_000 + "x" + "{% endif %}" * 10_000,
        "{{ " + "[" * 10_000 + "]" * 10_000 + " }}",
        "{{ 1" + "+1" * 10_000 + " }}",
        "{{ env" + ".a" * 10_000 + " }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ],
    ids=["parens", "ifs", "lists", "sum", "attributes", "recursive-macro"],
)
def test_jinja_deep_nesting_is_a_positioned_error(text: str) -> None:
    """Jinja's parser recurses in Python; 10,000 levels used to escape list_jinja_variables raw."""
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render_jinja(text, {}, filename="t.j2")
    assert "nested too deeply" in info.value.message and info.value.line == 1
    data = text.encode()
    clean_outcome(lambda: list_template_variables(data, filename="t.j2", syntax=Syntax.JINJA), "t.j2")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("expression", ["[1][5]", "'a' ~ [1][5]", "[1][5] ~ 'a'"])
def test_jinja_constant_and_integer_keys_are_positioned(expression: str) -> None:
    """``[1][5]`` is folded at compile time and ``ports[0]`` has an int name: both lost their position."""
    with pytest.raises(TemplateError) as info:
        render_jinja("a\n{{ " + expression + " }}", {}, filename="t.j2")
    assert (info.value.line, info.value.message) == (2, "list object has no element 5")
    with pytest.raises(TemplateError) as info:
        render_jinja("a\n{{ env['x\ny'] }}", {}, filename="t.j2")
    assert info.value.message == "undefined variable 'x\\ny'" and info.value.variable == "x\ny"
    with pytest.raises(TemplateError) as info:
        render_jinja("a\n{{ orchestrator.ports[0] }}", {"MARATHON_APP_ID": "/a"}, filename="t.j2")
    assert info.value.line == 2 and info.value.variable == "0"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("syntax", [Syntax.SHELL, Syntax.ENVSUBST, Syntax.JINJA])
def test_one_megabyte_name_and_ten_megabyte_value(syntax: Syntax) -> None:
    name = "N" * (1 << 20)
    value = "v" * (10 << 20)
    template = {
        Syntax.SHELL: f"${{{name}}}|${name}|${{{name}:-x}}|${{M:-${name}}}",
        Syntax.ENVSUBST: f"${{{name}}}|${name}|${{{name}",
        Syntax.JINJA: f"{{{{ env['{name}'] }}}}|{{{{ getenv('{name}') }}}}|{{{{ env.{name} }}}}",
    }[syntax]
    expected = {
        Syntax.SHELL: f"{value}|{value}|{value}|{value}",
        Syntax.ENVSUBST: f"{value}|{value}|${{{name}",
        Syntax.JINJA: f"{value}|{value}|{value}",
    }[syntax]
    started = time.monotonic()
    out = render_template(template.encode(), filename="t", syntax=syntax, env={name: value})
    assert out == expected.encode()
    with pytest.raises(TemplateError if syntax is Syntax.JINJA else TemplateErrors) as info:
        render_template(template.encode(), filename="t", syntax=syntax, env={}, strict=True)
    assert_positioned(info.value)
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------- 100 MB through the CLI


class Measured:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes, peak_kib: int) -> None:
        self.returncode, self.stdout, self.stderr, self.peak_kib = returncode, stdout, stderr, peak_kib


# Runs the CLI and then records its own VmHWM: that is per address space, so unlike
# ru_maxrss it does not include the pytest process the child was forked from.
_MEASURE = (
    "import sys; from entrypoint.cli import main; code = main(sys.argv[2:]); sys.stdout.flush(); "
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
    "open(sys.argv[1], 'w').write(hwm); sys.exit(code)"
)


def run_measured(args: list[str], cwd: Path) -> Measured:
    """Run the CLI in a child; returns its exit code, output and peak RSS in KiB."""
    report = cwd / ".peak-rss"
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(report), *args], cwd=cwd,
                            capture_output=True, timeout=120, check=False,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    peak = int(report.read_text())
    report.unlink()
    return Measured(result.returncode, result.stdout, result.stderr, peak)


@pytest.mark.timeout(180)
def test_100mb_single_line_through_entrypoint_envsubst_in_bounded_memory() -> None:
    """100 MB, one line, mixed references, through a pipe: the child's peak RSS stays under 64 MiB.

    The peak is read from /proc while the child is alive (all input written,
    all decided output received, stdin still open).
    """
    block = b"a=$A b=${B} $UNSET ${C:-x} $$ $1 text " * 1000
    block_out = substitute_bytes(block, {b"A": b"1", b"B": b"22"})
    repeats = (100 << 20) // len(block)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "A": "1", "B": "22"}
    out = stream_envsubst(block, repeats, b"end $A", len(block_out), env, timeout=120)
    expected = repeats * len(block_out)
    assert out.received == expected + len(b"end 1") and out.tail.endswith(b"text end 1")
    assert out.peak_kib < 64 * 1024, f"peak RSS {out.peak_kib} KiB"
    print(f"entrypoint envsubst, 100 MB single line: child peak RSS {out.peak_kib} KiB")


@pytest.mark.timeout(120)
def test_shell_syntax_holds_the_template_in_memory_linearly(tmp_path: Path) -> None:
    """Shell renders in memory (all or nothing): a 2 MB reference-dense single line stays under
    256 MiB peak RSS (about 40 bytes per input byte, see docs/reliability.md)."""
    block = "key=${A} $B ${C:-dflt} $$ text "
    repeats = (2 << 20) // len(block)
    (tmp_path / "big.template").write_text(block * repeats)
    result = run_measured(["render", "--clean-env", "--set", "A=a", "--set", "B=b",
                           "big.template:big.conf"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "big.conf").read_text() == "key=a b dflt $ text " * repeats
    assert result.peak_kib < 256 * 1024, f"peak RSS {result.peak_kib} KiB"
    assert b"Traceback" not in result.stderr
