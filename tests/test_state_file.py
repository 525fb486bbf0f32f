"""The state file writer (``supervise/parts/state.py``): format, atomicity, writes only on change."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from entrypoint.supervise.parts import state

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_dumps_is_json_dumps(value: state.Value) -> None:
    assert state.dumps(value) == json.dumps(value)


def test_dumps_lone_surrogates_like_json() -> None:
    text = os.fsdecode(b"caf\xe9-\xf0\x9f\x98\x80")  # undecodable byte + an emoji
    assert state.dumps([text]) == json.dumps([text])
    assert json.loads(state.dumps(text)) == text


def test_format_and_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    sf = state.StateFile(str(path), ["app", "--port", "ünï"])
    assert not path.exists()  # nothing until a phase is set
    assert sf.update(state.RENDERING)
    doc = json.loads(path.read_text())
    assert doc == {"version": 1, "runtime_pid": os.getpid(), "phase": "rendering",
                   "app": {"pid": None, "restarts": 0, "last_exit_code": None,
                           "command": ["app", "--port", "ünï"]},
                   "changed_at": doc["changed_at"]}
    assert isinstance(doc["changed_at"], float)
    assert not sf.update(state.RENDERING)
    assert not sf.update(pid=None, last_exit_code=None)
    assert sf.writes == 1
    assert sf.update(state.RUNNING, pid=42)
    assert sf.update(state.RESTARTING, pid=None, last_exit_code=3, restarts=1)
    doc = json.loads(path.read_text())
    assert (doc["phase"], doc["app"]["pid"], doc["app"]["last_exit_code"], doc["app"]["restarts"]) == (
        "restarting", None, 3, 1)
    assert sf.writes == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp files left


def test_uncreatable_directory_means_no_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sf = state.StateFile(str(blocker / "state.json"), ["app"])
    assert sf.path is None
    assert not sf.update(state.RUNNING, pid=1)
    sf = state.StateFile(None, ["app"])
    assert not sf.update(state.RUNNING)


def test_write_failure_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.mkdir()  # rename of a file over a directory fails
    sf = state.StateFile(str(target), ["app"])
    assert not sf.update(state.RUNNING)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
