"""The 56 golden GNU envsubst vectors, through the real CLI and the engine.

Each vector was produced by GNU envsubst 0.21 with exactly its ``env`` and
nothing inherited, so the child gets exactly that environment too: the
interpreter is started by absolute path and needs no variable, and nothing
of ours (PATH, PYTHONPATH, ``_``) can leak into the substitution.  stderr is
compared byte for byte: the vectors were recorded with argv[0] ``envsubst``,
which is the program name our messages always use.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest

from entrypoint.render.envsubst import collect_names, iter_substituted, substitute_bytes
from entrypoint.render.model import Selection
from tests.reference import DATA

VECTORS = DATA / "gnu-envsubst-vectors.jsonl"


def _load() -> list[dict[str, Any]]:
    if not VECTORS.exists():
        return []
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


RECORDS = _load()
pytestmark = pytest.mark.skipif(not RECORDS, reason="GNU envsubst vectors not available")


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _env(record: dict[str, Any]) -> dict[bytes, bytes]:
    return {_b(k): _b(v) for k, v in record["env"].items()}


def test_all_56_vectors_present() -> None:
    assert len(RECORDS) == 56


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_vector_through_cli(record: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoint", "envsubst", *record["args"]],
        input=base64.b64decode(record["template_b64"]),
        env=_env(record),
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout == base64.b64decode(record["expected_b64"])
    assert proc.returncode == record["exit_code"]
    assert proc.stderr == _b(record["stderr"])


def _engine_cases() -> list[dict[str, Any]]:
    """Vectors that are plain substitutions (no -v, no operand error)."""
    cases = []
    for record in RECORDS:
        args = [a for a in record["args"] if a != "--"]
        if record["exit_code"] == 0 and not {"-v", "--variables"} & set(args):
            cases.append(record)
    return cases


def _selection(record: dict[str, Any]) -> Selection:
    args = [a for a in record["args"] if a != "--"]
    if not args:
        return Selection()
    return Selection(names=frozenset(n.decode("ascii") for n in collect_names(_b(args[0]))))


@pytest.mark.parametrize("record", _engine_cases(), ids=[r["id"] for r in _engine_cases()])
def test_vector_through_engine(record: dict[str, Any]) -> None:
    template = base64.b64decode(record["template_b64"])
    expected = base64.b64decode(record["expected_b64"])
    env, selection = _env(record), _selection(record)
    assert substitute_bytes(template, env, selection) == expected
    for size in (1, 2, 3, 7, 64):
        chunks = [template[i : i + size] for i in range(0, len(template), size)]
        assert b"".join(iter_substituted(chunks, env, selection)) == expected


def test_variables_vectors_through_engine() -> None:
    for record in RECORDS:
        args = record["args"]
        if record["exit_code"] == 0 and args and args[0] in ("-v", "--variables"):
            listed = b"".join(n + b"\n" for n in collect_names(_b(args[1])))
            assert listed == base64.b64decode(record["expected_b64"]), record["id"]
