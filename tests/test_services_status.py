"""``entrypoint status`` with services: the ``services`` list, and its exit code."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, needs_ns, wait_until
from tests.services_helpers import service, wait_service
from tests.test_status_pid1 import exec_status

pytestmark = [needs_ns, pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter")]


def test_status_lists_services_and_is_healthy_only_while_essential_ones_are_ready(tmp_path: Path) -> None:
    st, go, services = tmp_path / "state.json", tmp_path / "go", tmp_path / "s"
    service(services, "core", f"while [ ! -e {go} ]; do sleep 0.02; done\nexit 4\n", essential="",
            restart="on-failure\n")
    service(services, "side", "exit 2\n", restart="no\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st), "--restart-delay", "30",
                  "--", "sleep", "60"]) as rt:
        wait_service(st, "side", "down")
        done = exec_status(rt, st, "--format", "json")
        assert done.returncode == 0, done
        doc = json.loads(done.stdout)
        assert doc["healthy"] is True and doc["app"]["alive"] is True
        by_name = {s["name"]: s for s in doc["services"]}
        assert by_name["side"] == {"name": "side", "state": "down", "pid": None, "restarts": 0,
                                   "last_exit_code": 2, "essential": False}  # not essential: still healthy
        assert by_name["core"]["state"] == "ready" and by_name["core"]["pid"] > 1
        text = exec_status(rt, st)
        assert text.returncode == 0
        assert "service core: ready" in text.stdout and "essential" in text.stdout
        assert "service side: down, no process, restarts 0, last exit code 2" in text.stdout
        go.touch()  # core exits 4 and waits 30 s in backoff: the app runs, but unhealthy
        wait_service(st, "core", "backoff")
        done = exec_status(rt, st)
        assert done.returncode == 1
        assert "unhealthy: essential service(s) not ready: core" in done.stdout
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_status_without_command_is_healthy_once_the_services_are_ready(tmp_path: Path) -> None:
    st, go, services = tmp_path / "state.json", tmp_path / "go", tmp_path / "s"
    service(services, "web", f"while [ ! -e {go} ]; do sleep 0.02; done\necho >&3\nexec sleep 60\n",
            notification_fd="3\n", essential="")
    with Runtime(["--services-dir", str(services), "--state-file", str(st)]) as rt:
        wait_service(st, "web", "starting")
        wait_until(lambda: wait_service(st, "web", "starting")["pid"], 10, "web started")
        starting = exec_status(rt, st)
        assert starting.returncode == 1 and "phase: starting" in starting.stdout
        go.touch()
        wait_service(st, "web", "ready")
        done = exec_status(rt, st, "--format", "json")
        assert done.returncode == 0, done
        doc = json.loads(done.stdout)
        assert doc["phase"] == "running" and doc["app"]["command"] == [] and doc["app"]["pid"] is None
        assert "app: none (services only)" in exec_status(rt, st).stdout
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
