"""`entrypoint status` against a real `entrypoint run` as PID 1 of a PID namespace.

The runtime runs under ``unshare --pid --fork --mount-proc`` (tests/pid1_helpers.py)
and ``status`` enters its PID and mount namespaces with ``nsenter -t PID -p -m``,
as ``docker exec`` does: inside, the runtime is pid 1 and /proc is the
namespace's own.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pid1_helpers import Runtime, base_env, needs_ns, wait_until

pytestmark = [needs_ns, pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter")]


def exec_status(rt: Runtime, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker exec CTR entrypoint status ...``: the namespace's view, PID 1 = the runtime.

    The state file is named by ENTRYPOINT_STATE_FILE, as an image would set it for both.
    """
    return subprocess.run(["nsenter", "-t", str(rt.pid), "-p", "-m", sys.executable, "-m", "entrypoint",
                           "status", "--interval", "0.05", *args],
                          capture_output=True, text=True, timeout=30,
                          env=base_env(ENTRYPOINT_STATE_FILE=str(state)), stdin=subprocess.DEVNULL)


def published(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc


def test_running_app_in_the_namespace(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # `true &` then exec: the app inherits an unreaped child, a zombie below PID 1's child
    with Runtime(["--state-file", str(state), "--", "sh", "-c", "true & exec sleep 60"]) as rt:
        wait_until(lambda: published(state).get("phase") == "running", 10, "phase running")
        done = exec_status(rt, state, "--format", "json")
        assert done.returncode == 0, done
        doc = json.loads(done.stdout)
        assert doc["phase"] == "running" and doc["healthy"] is True and doc["runtime_pid"] == 1
        app_pid = doc["app"]["pid"]
        assert doc["app"]["alive"] is True and doc["app"]["restarts"] == 0
        assert doc["app"]["last_exit_code"] is None
        assert doc["app"]["command"] == ["sh", "-c", "true & exec sleep 60"]
        rows = {row["pid"]: row for row in doc["processes"]}
        assert doc["processes"][0]["pid"] == 1 and rows[1]["cmdline"][1:4] == ["-m", "entrypoint", "run"]
        assert rows[1]["rss_bytes"] > 1 << 20 and rows[1]["user"] == "root"
        assert rows[app_pid]["ppid"] == 1 and rows[app_pid]["cmdline"] == ["sleep", "60"]

        def processes() -> list[dict[str, Any]]:
            listing: list[dict[str, Any]] = json.loads(exec_status(rt, state, "--format", "json").stdout)[
                "processes"]
            return listing

        wait_until(lambda: any(r["zombie"] for r in processes()), 10, "the zombie to show")
        rows = {r["pid"]: r for r in processes()}
        zombies = [r for r in rows.values() if r["zombie"]]
        assert zombies[0]["ppid"] == app_pid and zombies[0]["status"] == "zombie"
        assert set(doc["memory"]) >= {"limit_bytes", "usage_bytes"} and doc["memory"]["usage_bytes"] > 0

        text = exec_status(rt, state)
        assert text.returncode == 0 and text.stdout.startswith("phase: running since "), text
        assert "runtime pid 1" in text.stdout and "ZOMBIE" in text.stdout
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_stopping_is_unhealthy_while_the_app_still_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Runtime(["--state-file", str(state), "--stop-delay", "20", "--", "sleep", "60"]) as rt:
        wait_until(lambda: published(state).get("phase") == "running", 10, "phase running")
        assert exec_status(rt, state).returncode == 0
        rt.signal(signal.SIGTERM)  # the stop delay keeps the app up: the load balancer drains it
        wait_until(lambda: published(state).get("phase") == "stopping", 10, "phase stopping")
        done = exec_status(rt, state, "--format", "json")
        assert done.returncode == 1, done
        doc = json.loads(done.stdout)
        assert doc["phase"] == "stopping" and doc["app"]["alive"] is True and doc["healthy"] is False
        rt.signal(signal.SIGTERM)  # a second stop signal forwards at once
        assert rt.wait() == 143


def test_restarting_after_a_crash_is_unhealthy(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Runtime(["--state-file", str(state), "--restart", "on-failure", "--restart-delay", "30",
                  "--", "sh", "-c", "exit 3"]) as rt:
        wait_until(lambda: published(state).get("phase") == "restarting", 10, "phase restarting")
        done = exec_status(rt, state)
        assert done.returncode == 1, done
        assert "phase: restarting" in done.stdout and "restarts 1, last exit code 3" in done.stdout
        assert "unhealthy: phase restarting" in done.stdout
        rt.signal(signal.SIGTERM)
        rt.wait()


def test_from_outside_the_namespace_pid_1_is_not_entrypoint(tmp_path: Path) -> None:
    """The same state file read from the host: pid 1 there is the host's init, so: one line, exit 1."""
    state = tmp_path / "state.json"
    with Runtime(["--state-file", str(state), "--", "sleep", "60"]) as rt:
        wait_until(lambda: published(state).get("phase") == "running", 10, "phase running")
        done = subprocess.run([sys.executable, "-m", "entrypoint", "status", "--state-file", str(state)],
                              capture_output=True, text=True, timeout=30, env=base_env())
        assert done.returncode == 1 and done.stderr == ""
        assert done.stdout.count("\n") == 1 and "pid 1 is not entrypoint" in done.stdout, done.stdout
        rt.signal(signal.SIGTERM)
        rt.wait()


def test_runtime_without_a_state_file(tmp_path: Path) -> None:
    with Runtime(["--state-file", "", "--", "sleep", "60"]) as rt:
        wait_until(lambda: rt.pid, 10, "the runtime")
        done = exec_status(rt, tmp_path / "none.json")
        assert done.returncode == 1 and done.stdout.startswith("entrypoint status: no state file at ")
        rt.signal(signal.SIGTERM)
        rt.wait()
