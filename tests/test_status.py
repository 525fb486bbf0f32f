"""`entrypoint status`: state file reading, the live checks, the process tree, exit codes.

Against a stand-in runtime (tests/progs/fake_runtime.py, a real process
tree with a real zombie) and hand-written state files; the real `run` in a
PID namespace entered as `docker exec` does is in tests/test_status_pid1.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from entrypoint.errors import StatusUnavailable
from entrypoint.options import RunOptions
from entrypoint.status.statefile import read_state, state_file_path
from entrypoint.supervise.parts.state import DEFAULT_STATE_FILE
from tests.pid1_helpers import PROGS, base_env, state_of, wait_until

pytestmark = pytest.mark.timeout(60)

GOOD = {"version": 1, "runtime_pid": 1, "phase": "running",
        "app": {"pid": 7, "restarts": 0, "last_exit_code": None, "command": ["nginx", "-g", "daemon off;"]},
        "changed_at": 1764581000.25}


def status(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", "status", "--interval", "0.05", *args],
                          capture_output=True, text=True, timeout=30, env=env or base_env(),
                          stdin=subprocess.DEVNULL)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


@dataclass
class Fake:
    proc: subprocess.Popen[str]
    state: Path
    pid: int
    app: int
    zombie: int


@pytest.fixture
def fake(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fake]:
    phase, mode = getattr(request, "param", ("running", "alive"))
    script = tmp_path / "bin" / "entrypoint"
    script.parent.mkdir()
    shutil.copy(PROGS / "fake_runtime.py", script)
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, str(script), str(state), phase, mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=base_env())
    assert proc.stdout is not None and proc.stdin is not None
    try:
        words = proc.stdout.readline().split()
        assert words[0] == "ready", words
        pid, app, zombie = map(int, words[1:])
        wait_until(lambda: state_of(zombie) == "zombie", 10, "the unreaped child to be a zombie")
        yield Fake(proc, state, pid, app, zombie)
    finally:
        proc.stdin.close()
        proc.wait(10)


# --- healthy, and every reason it is not ---------------------------------------


def test_running_app_is_exit_0_with_the_tree_in_json(fake: Fake) -> None:
    done = status("--state-file", str(fake.state), "--format", "json")
    assert done.returncode == 0, done
    doc = json.loads(done.stdout)
    assert doc["phase"] == "running" and doc["healthy"] is True and doc["runtime_pid"] == fake.pid
    assert doc["app"] == {"pid": fake.app, "alive": True, "restarts": 2, "last_exit_code": 3,
                          "command": ["sleep", "120"]}
    rows = {row["pid"]: row for row in doc["processes"]}
    assert doc["processes"][0]["pid"] == fake.pid
    assert set(rows) >= {fake.pid, fake.app, fake.zombie}
    for row in doc["processes"]:
        assert set(row) >= {"pid", "ppid", "user", "status", "rss_bytes", "cpu_percent", "cmdline"}
    app = rows[fake.app]
    assert app["ppid"] == fake.pid and app["cmdline"] == ["sleep", "120"] and app["zombie"] is False
    assert app["user"] == "root" and app["rss_bytes"] > 0 and app["cpu_percent"] >= 0
    assert app["status"] in ("sleeping", "running")
    zombie = rows[fake.zombie]
    assert zombie["status"] == "zombie" and zombie["zombie"] is True and zombie["rss_bytes"] is None
    assert set(doc["memory"]) >= {"limit_bytes", "usage_bytes"}
    assert doc["memory"]["usage_bytes"] > 0  # this machine has a memory cgroup


def test_text_lists_the_tree_and_flags_the_zombie(fake: Fake) -> None:
    done = status("--state-file", str(fake.state))
    assert done.returncode == 0, done
    out = done.stdout
    assert out.startswith("phase: running since ")
    assert f"app: pid {fake.app} alive, restarts 2, last exit code 3: sleep 120" in out
    assert "memory: " in out and "cgroup v" in out
    app_line = next(line for line in out.splitlines() if line.split()[:1] == [str(fake.app)])
    assert "sleep 120" in app_line and "root" in app_line
    zombie_line = next(line for line in out.splitlines() if line.split()[:1] == [str(fake.zombie)])
    assert "zombie" in zombie_line and "ZOMBIE" in zombie_line
    assert "1 zombie process(es)" in out and out.rstrip().endswith("healthy: the app is running")


@pytest.mark.parametrize("fake", [("stopping", "alive"), ("restarting", "alive"), ("finishing", "alive"),
                                  ("rendering", "alive")], indirect=True)
def test_any_phase_but_running_is_exit_1(fake: Fake) -> None:
    done = status("--state-file", str(fake.state), "--format", "json")
    assert done.returncode == 1, done
    doc = json.loads(done.stdout)
    assert doc["healthy"] is False and doc["phase"] != "running" and doc["app"]["alive"] is True


@pytest.mark.parametrize("fake", [("running", "dead")], indirect=True)
def test_running_phase_with_a_dead_app_is_exit_1(fake: Fake) -> None:
    done = status("--state-file", str(fake.state))
    assert done.returncode == 1, done
    assert "NOT RUNNING" in done.stdout and "unhealthy: the app is not alive" in done.stdout


def test_zombie_app_is_not_alive(fake: Fake, tmp_path: Path) -> None:
    doc = json.loads(fake.state.read_text())
    doc["app"]["pid"] = fake.zombie
    other = tmp_path / "zombie.json"
    other.write_text(json.dumps(doc))
    done = status("--state-file", str(other), "--format", "json")
    assert done.returncode == 1 and json.loads(done.stdout)["app"]["alive"] is False


def test_environment_variable_names_the_state_file(fake: Fake) -> None:
    done = status(env=base_env(ENTRYPOINT_STATE_FILE=str(fake.state)))
    assert done.returncode == 0, done


# --- not entrypoint, no state, bad state: one line, exit 1 ----------------------


def test_no_state_file_is_one_line(tmp_path: Path) -> None:
    line = one_line(status("--state-file", str(tmp_path / "missing.json")))
    assert line.startswith("entrypoint status: no state file at ") and "not entrypoint" in line
    doc = json.loads(one_line(status("--state-file", str(tmp_path / "missing.json"), "--format", "json")))
    assert doc["phase"] is None and doc["healthy"] is False and "no state file" in doc["error"]


def test_default_path_is_the_one_run_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENTRYPOINT_STATE_FILE", raising=False)
    assert state_file_path(None) == DEFAULT_STATE_FILE == RunOptions().state_file
    assert DEFAULT_STATE_FILE == "/run/entrypoint/state.json"
    monkeypatch.setenv("ENTRYPOINT_STATE_FILE", "/elsewhere.json")
    assert state_file_path(None) == "/elsewhere.json" and state_file_path("/opt.json") == "/opt.json"


def test_runtime_pid_that_is_not_entrypoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**GOOD, "runtime_pid": os.getpid()}))  # pytest: alive, not ours
    line = one_line(status("--state-file", str(path)))
    assert "stale state file" in line and f"pid {os.getpid()} is not entrypoint" in line


def test_runtime_pid_that_is_gone(tmp_path: Path) -> None:
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**GOOD, "runtime_pid": int(gone.stdout)}))
    line = one_line(status("--state-file", str(path)))
    assert "is not running, so PID 1 is not entrypoint" in line


def test_state_older_than_its_runtime_is_stale(fake: Fake, tmp_path: Path) -> None:
    doc = json.loads(fake.state.read_text())
    doc["changed_at"] -= 3600
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    assert "written before pid" in one_line(status("--state-file", str(old)))


GARBAGE = {
    "empty": b"",
    "blank": b"\n  \n",
    "binary": bytes(range(256)),
    "not json": b"phase=running\n",
    "a list": b"[1, 2]\n",
    "version 2": json.dumps({**GOOD, "version": 2}).encode(),
    "no version": json.dumps({k: v for k, v in GOOD.items() if k != "version"}).encode(),
    "bad phase": json.dumps({**GOOD, "phase": "dancing"}).encode(),
    "pid a string": json.dumps({**GOOD, "runtime_pid": "1"}).encode(),
    "pid true": json.dumps({**GOOD, "runtime_pid": True}).encode(),
    "app missing": json.dumps({k: v for k, v in GOOD.items() if k != "app"}).encode(),
    "restarts negative": json.dumps({**GOOD, "app": {**GOOD["app"], "restarts": -1}}).encode(),  # type: ignore[dict-item]
    "command a string": json.dumps({**GOOD, "app": {**GOOD["app"], "command": "nginx"}}).encode(),  # type: ignore[dict-item]
    "changed_at NaN": json.dumps({**GOOD, "changed_at": float("nan")}).encode(),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_state_file_is_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(GARBAGE[name])
    line = one_line(status("--state-file", str(path)))
    assert line.startswith(f"entrypoint status: state file {path} "), line


def test_every_truncation_of_a_state_file_is_reported(tmp_path: Path) -> None:
    """A reader racing a non-atomic writer, or a full disk: each prefix is one StatusUnavailable."""
    data = (json.dumps(GOOD) + "\n").encode()
    path = tmp_path / "state.json"
    for size in range(len(data.rstrip())):
        path.write_bytes(data[:size])
        with pytest.raises(StatusUnavailable) as caught:
            read_state(str(path))
        assert str(caught.value).startswith(f"state file {path} "), (size, caught.value)
    path.write_bytes(data[:30])
    assert "not valid JSON (truncated)" in one_line(status("--state-file", str(path)))


def test_state_file_that_is_a_directory(tmp_path: Path) -> None:
    assert "is a directory" in one_line(status("--state-file", str(tmp_path)))


def test_missing_psutil_names_the_extra(fake: Fake) -> None:
    code = ("import sys; sys.modules['psutil'] = None; from entrypoint.cli import main; "
            f"sys.exit(main(['status', '--state-file', {str(fake.state)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env=base_env())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "entrypoint status needs psutil, which is not installed: pip install 'entrypoint[status]'" \
        in done.stderr
