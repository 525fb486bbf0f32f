"""examples/nginx-app in a real container: nginx in front of a Python app, two services, one PID 1.

podman builds Dockerfile.base and the example from the locally made Debian base
(tests/container_support.py), runs it with the variables Marathon passes, and checks
what a user copies it for: a GET on ``PORT0`` goes through nginx to the app,
``entrypoint status`` inside lists both services ready, the app is essential (killing it
stops the container with its code), and ``podman stop`` ends both gracefully (nginx by its
down-signal QUIT), exit 0, without podman's SIGKILL.

The offline checks of the example (its templates against app.json, its services directory)
need no engine and run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.container_support import (
    Podman,
    Unavailable,
    build_example,
    check_tools,
    container_logs,
    ensure_images,
    env_flags,
    run_flags,
    wait_http,
)
from tests.pid1_helpers import free_port
from tests.test_container import unavailable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "nginx-app"
IMAGE = "localhost/entrypoint-example-nginx-app:test"
STOP_TIMEOUT = 10  # podman stop -t: past it podman sends SIGKILL and the code would be 137


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)


# --- offline: what CI can check without an engine ------------------------------------------------


def test_example_templates_check_against_the_app_definition() -> None:
    done = cli("check", "--clean-env", "--marathon-app", EXAMPLE / "app.json", "--braced-only",
               EXAMPLE / "templates")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_example_services_directory_is_valid() -> None:
    done = cli("check", "--services-dir", EXAMPLE / "services")
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_nginx_config_renders_the_marathon_port(tmp_path: Path) -> None:
    template = EXAMPLE / "templates/etc/nginx/conf.d/default.conf.template"
    dest = tmp_path / "default.conf"
    done = cli("render", "--clean-env", "--marathon-app", EXAMPLE / "app.json", "--host", "web-7.example.com",
               "--ports", "31005", "--braced-only", f"{template}:{dest}")
    assert done.returncode == 0, done.stderr
    conf = dest.read_text()
    assert "listen 31005;" in conf and "server_name web-7.example.com;" in conf
    assert "proxy_set_header Host $host;" in conf  # nginx's own variables survive


# --- in podman -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    try:
        check_tools()
        engine = Podman()
        engine("version", "--format", "{{.Client.Version}}", timeout=30)
        ensure_images(engine)
        build_example(engine, "nginx-app", IMAGE)
    except (Unavailable, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(exc)
    yield engine
    engine("image", "prune", "--force", timeout=120, check=False)


class App:
    """One detached container of the example, on the host network at a free PORT0; always removed."""

    def __init__(self, podman: Podman) -> None:
        self.podman, self.port = podman, free_port()
        self.name = f"entrypoint-nginx-app-{uuid.uuid4().hex[:8]}"
        self.task = f"web_nginx-app.{uuid.uuid4().hex[:6]}"
        env = {"PORT0": str(self.port), "PORT": str(self.port), "PORTS": str(self.port),
               "HOST": "127.0.0.1", "MESOS_TASK_ID": self.task}
        podman("run", "-d", "--name", self.name, "--net", "host", *run_flags(), *env_flags(env), IMAGE,
               timeout=60)

    def get(self) -> dict[str, Any]:
        """The app's JSON answer, through nginx on PORT0."""
        body = wait_http(self.podman, self.name, self.port, timeout=30)
        doc: dict[str, Any] = json.loads(body)
        return doc

    def status(self) -> tuple[int, dict[str, Any]]:
        done = self.podman("exec", self.name, "entrypoint", "status", "--format", "json", check=False,
                           timeout=30)
        try:
            doc: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            doc = {}
        return done.returncode, doc

    def services(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in self.status()[1].get("services") or []}

    def wait_ready(self, timeout: float = 30) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            services = self.services()
            if services and all(row["state"] == "ready" for row in services.values()):
                return services
            if time.monotonic() > deadline:
                pytest.fail(f"services not all ready: {services}\n{self.logs()}")
            time.sleep(0.2)

    def exit_code(self) -> int:
        return int(self.podman("wait", self.name, timeout=60).stdout.strip())

    def logs(self) -> str:
        return container_logs(self.podman, self.name)

    def remove(self) -> None:
        self.podman("rm", "-f", "-t", "0", self.name, check=False, timeout=60)


@pytest.fixture
def app(podman: Podman) -> Iterator[App]:
    ctr = App(podman)
    yield ctr
    ctr.remove()


@pytest.mark.container
@pytest.mark.timeout(400)
def test_nginx_in_front_of_the_app(app: App) -> None:
    answer = app.get()
    assert answer["app"] == "entrypoint nginx-app example", answer
    assert answer["served_by"] == app.task and answer["service"] == "app"  # the container's env + NAME
    assert answer["forwarded_for"] == "127.0.0.1"  # it came through nginx

    services = app.wait_ready()
    assert set(services) == {"app", "nginx"}, services
    code, doc = app.status()
    assert code == 0, doc  # every essential service ready, no COMMAND
    assert all(isinstance(row["pid"], int) and row["restarts"] == 0 for row in services.values()), services
    conf = app.podman("exec", app.name, "cat", "/etc/nginx/conf.d/default.conf").stdout
    assert f"listen {app.port};" in conf and "proxy_set_header Host $host;" in conf

    app.podman("stop", "-t", str(STOP_TIMEOUT), app.name, timeout=STOP_TIMEOUT + 30)
    logs = app.logs()
    assert app.exit_code() == 0, logs  # a stop signal and no COMMAND: 0, and no SIGKILL from podman
    assert "signal 3 (SIGQUIT) received" in logs, logs  # nginx's down-signal: its graceful stop
    assert "app | SIGTERM: stopping" in logs, logs
    assert "app ended: exit code 0, signal 0" in logs, logs  # the app's finish, s6's two arguments


@pytest.mark.container
@pytest.mark.timeout(400)
def test_the_app_is_essential(app: App) -> None:
    """The app's end stops the container with the app's code (its restart is `no`: Marathon restarts)."""
    app.get()
    pid = app.wait_ready()["app"]["pid"]
    app.podman("exec", app.name, "sh", "-c", f"kill -KILL {pid}", timeout=30)
    code = app.exit_code()
    logs = app.logs()
    assert code == 128 + 9, logs  # died of SIGKILL, reported as a shell would
    assert "app ended: exit code 256, signal 9" in logs, logs
    assert "signal 3 (SIGQUIT) received" in logs, logs  # nginx was still stopped gracefully
