"""Differential tests: our envsubst engine and CLI against the real GNU envsubst.

Random templates (an alphabet dense in ``$ { } _`` letters, digits, operators,
newline, NUL and invalid UTF-8), random byte environments and random
SHELL-FORMATs go to both implementations; every output byte must agree.  The
engine runs in-process for speed, GNU as a subprocess with exactly the same
environment.  Tiny chunk sizes prove that streaming never changes a result.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.render.envsubst import (
    collect_names,
    iter_substituted,
    list_references,
    substitute_bytes,
    substitute_stream,
)
from entrypoint.render.model import EVERYTHING, Selection

GNU = "/usr/bin/envsubst"
pytestmark = pytest.mark.skipif(not os.path.exists(GNU), reason="GNU envsubst not installed")

# Single bytes ($ three times: it is the interesting one) plus a few multi-byte tokens.
TOKENS = [bytes([c]) for c in b"$$${}_ABaZ01:-=+?#\n\r\x00\xff \\'\""] + [
    b"\xc3\xa9",
    b"FOO",
    b"BAR",
    b"FOO_BAR",
    b"${",
    b"$$",
    b"}}",
    b"A1",
    b"_x",
]
NAMES = [b"A", b"B", b"a", b"Z", b"_", b"__", b"_x", b"FOO", b"BAR", b"FOO_BAR", b"A1", b"AB", b"FOOBAR"]

name_st = st.one_of(st.sampled_from(NAMES), st.from_regex(rb"\A[A-Za-z_][A-Za-z0-9_]{0,6}\Z"))
# Environment names need only lack NUL and '='; include some GNU never matches.
odd_name_st = st.binary(min_size=1, max_size=4).filter(lambda b: b"\x00" not in b and b"=" not in b)
value_st = st.one_of(
    st.sampled_from([b"", b"v", b"$A", b"${B}", b"\xff\xfe", b"line1\nline2", b"\xc3\xa9"]),
    st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"")),
)
env_st = st.dictionaries(st.one_of(name_st, odd_name_st), value_st, max_size=8)
template_st = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)
# argv strings cannot hold NUL.
FMT_TOKENS = [t for t in TOKENS if b"\x00" not in t] + [b"$FOO", b"${A}", b"$_x", b" "]
fmt_st = st.lists(st.sampled_from(FMT_TOKENS), max_size=12).map(b"".join)

SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)


def gnu(args: list[bytes], data: bytes, env: dict[bytes, bytes]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [b"envsubst", *args], executable=GNU, input=data, env=env, capture_output=True, timeout=30
    )


def fmt_selection(fmt: bytes) -> Selection:
    return Selection(names=frozenset(n.decode("ascii") for n in collect_names(fmt)))


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@SETTINGS
@given(template=template_st, env=env_st)
def test_engine_matches_gnu(template: bytes, env: dict[bytes, bytes]) -> None:
    assert substitute_bytes(template, env) == gnu([], template, env).stdout


@SETTINGS
@given(template=template_st, env=env_st, fmt=fmt_st)
def test_shell_format_matches_gnu(template: bytes, env: dict[bytes, bytes], fmt: bytes) -> None:
    expected = gnu([b"--", fmt], template, env).stdout
    assert substitute_bytes(template, env, fmt_selection(fmt)) == expected


@settings(max_examples=150, deadline=None)
@given(fmt=fmt_st)
def test_variables_matches_gnu(fmt: bytes) -> None:
    listed = b"".join(n + b"\n" for n in collect_names(fmt))
    assert listed == gnu([b"-v", b"--", fmt], b"", {}).stdout


@settings(max_examples=300, deadline=None)
@given(template=template_st, env=env_st, fmt=st.one_of(st.none(), fmt_st))
def test_streaming_tiny_chunks(template: bytes, env: dict[bytes, bytes], fmt: bytes | None) -> None:
    selection = EVERYTHING if fmt is None else fmt_selection(fmt)
    whole = substitute_bytes(template, env, selection)
    for size in (1, 2, 3, 7):
        assert b"".join(iter_substituted(chunked(template, size), env, selection)) == whole
        out = io.BytesIO()
        substitute_stream(io.BytesIO(template), out, env, selection, chunk_size=size)
        assert out.getvalue() == whole


@settings(max_examples=100, deadline=None)
@given(template=template_st)
def test_list_references_agrees_with_positions(template: bytes) -> None:
    refs = list_references(template)
    assert [name for name, *_ in refs] == collect_names(template)
    lines = template.split(b"\n")
    for name, line, column, braced in refs:
        text = lines[line - 1][column - 1 :]
        assert text.startswith(b"${" + name + b"}" if braced else b"$" + name)


@settings(max_examples=25, deadline=None)
@given(
    template=template_st,
    env=env_st,
    args=st.one_of(st.just([]), fmt_st.map(lambda f: [b"--", f]), fmt_st.map(lambda f: [b"-v", b"--", f])),
)
def test_cli_matches_gnu(template: bytes, env: dict[bytes, bytes], args: list[bytes]) -> None:
    ours = subprocess.run(
        [sys.executable.encode(), b"-m", b"entrypoint", b"envsubst", *args],
        input=template,
        env=env,
        capture_output=True,
        timeout=60,
    )
    theirs = gnu(args, template, env)
    assert (ours.stdout, ours.returncode, ours.stderr) == (theirs.stdout, theirs.returncode, theirs.stderr)


LONG = b"N" * 100_000  # an environment string must stay under 128 KiB
HUGE = b"H" * (3 << 20)  # unset: longer than any environment name can be


@pytest.mark.parametrize(
    "template",
    [
        b"x $" + LONG + b" y\n",  # bare name over many read chunks
        b"x ${" + LONG + b"} y\n",  # braced and closed
        b"x ${" + LONG + b" y\n",  # braced, never closed: verbatim
        b"x ${" + LONG,  # ends inside the name
        b"x $" + HUGE + b"|${" + HUGE + b"}|${" + HUGE + b"\n",
        b"$" + LONG[:-1] + b"$" * 70000 + b"${A}" * 20000,
    ],
    ids=["bare", "braced", "unclosed", "eof", "huge", "mixed"],
)
@pytest.mark.parametrize("chunk_size", [4096, 1 << 16])
def test_long_names_across_chunks_match_gnu(template: bytes, chunk_size: int) -> None:
    env = {LONG: b"long-name-value", LONG[:-1]: b"shorter", b"A": b"a"}
    expected = gnu([], template, env).stdout
    out = io.BytesIO()
    substitute_stream(io.BytesIO(template), out, env, chunk_size=chunk_size)
    assert out.getvalue() == expected
