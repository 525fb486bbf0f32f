"""The marathon-args example in a real container engine (podman), as Marathon runs it.

The image's ENTRYPOINT is ``entrypoint run -- python3 /opt/app/server.py``
and the app definition's ``args`` (``--port $PORT0 ...``) are passed as the
container's command, without a shell, exactly as Mesos' docker containerizer
does.  Proven here: the args are expanded (``--expand-args``), the app runs
as the image's non-root ``app`` user (uid 10001) while PID 1 is root
(``--user``), the hook (as root) hands a root-owned volume to the app, and
``podman stop`` ends it cleanly (exit 0, well within the kill window).  Bad
input stops the container with 78 before anything starts, and the reason
lands in ``/dev/termination-log`` when the engine provides one.

Skips (with the reason) only where podman or the base rootfs cannot be had,
as tests/test_container.py does (it shares tests/container_support.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container_support import (
    ENTRYPOINT_IMAGE,
    ROOT,
    Podman,
    Unavailable,
    build_example,
    check_tools,
    ensure_images,
    env_flags,
    run_flags,
)
from tests.pid1_helpers import free_port, get_json
from tests.test_container import unavailable

pytestmark = [pytest.mark.container, pytest.mark.timeout(400)]

EXAMPLE = ROOT / "examples" / "marathon-args"
IMAGE = "localhost/entrypoint-example-marathon-args:test"
APP_UID = 10001  # the base image's `app` user


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    try:
        check_tools()
        engine = Podman()
        engine.version = engine("version", "--format", "{{.Client.Version}}", timeout=30).stdout.strip()
        ensure_images(engine)
        build_example(engine, "marathon-args", IMAGE)
    except (Unavailable, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(exc)
    yield engine
    sys.stderr.write(f"\ncontainer_user timings: {json.dumps(engine.timings)}\n")


def marathon_env(port: int) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "entrypoint", "env", "--clean-env", "--marathon-app",
         str(EXAMPLE / "app.json"), "--mesos-env", "--host", "127.0.0.1", "--ports", str(port),
         "--format", "json"],
        capture_output=True, text=True, timeout=30, check=True, stdin=subprocess.DEVNULL)
    env: dict[str, str] = json.loads(done.stdout)
    env["BIND_ADDRESS"] = "127.0.0.1"  # loopback only: the container shares the host network
    return env


def app_args() -> list[str]:
    args: list[str] = json.loads((EXAMPLE / "app.json").read_text())["args"]
    return args


def _uids(status_text: str) -> list[int]:
    for line in status_text.splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(status_text)


def test_app_runs_as_app_user_with_marathon_args_and_stops_cleanly(podman: Podman, tmp_path: Path) -> None:
    port, name = free_port(), f"entrypoint-user-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # root-owned, as a fresh Marathon hostPath volume is
    podman("run", "-d", "--name", name, "--net", "host", *run_flags(), *env_flags(marathon_env(port)),
           "-v", f"{data}:/var/lib/app", IMAGE, *app_args(), timeout=60)
    try:
        deadline, report = time.monotonic() + 20, None
        while report is None and time.monotonic() < deadline:
            report = get_json(port)
            if report is None:
                time.sleep(0.1)
        logs = podman("logs", name, check=False)
        assert report is not None, logs.stdout + logs.stderr
        # --expand-args: "$PORT0" and "$MARATHON_APP_ID" arrived expanded.
        assert report["port"] == port and report["name"] == "/marathon-args"
        # --user: the app is `app` (uid 10001, group 0, HOME from passwd instead of the engine's /root).
        assert (report["uid"], report["gid"], report["home"]) == (APP_UID, 0, "/nonexistent")
        # PID 1 stays root; the app process below it is 10001 through and through.
        assert _uids(podman("exec", name, "cat", "/proc/1/status").stdout) == [0, 0, 0, 0]
        cmdline = podman("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
        assert "run" in cmdline and any(Path(a).name == "entrypoint" for a in cmdline[:2]), cmdline
        every_status = "for s in /proc/[0-9]*/status; do cat $s; echo; done"
        statuses = podman("exec", name, "sh", "-c", every_status).stdout
        users = {block.split("Name:")[1].split()[0]: _uids(block)[0]
                 for block in statuses.split("\n\n") if "Name:" in block and "Uid:" in block}
        assert users.get("python3") == APP_UID, users
        # The hook (root) handed the root-owned volume to the app, which wrote into it.
        assert (data / "started-by").read_text() == f"{APP_UID}\n"
        assert (data / "started-by").stat().st_uid == APP_UID and data.stat().st_uid == APP_UID

        sent = time.monotonic()
        podman("stop", "-t", "10", name, timeout=30)
        elapsed = time.monotonic() - sent
        podman.timings["marathon-args: stop → exit"] = round(elapsed, 3)
        code = int(podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip())
        logs = podman("logs", name, check=False)
        assert code == 0, logs.stdout + logs.stderr
        assert elapsed < 2.0, f"stop took {elapsed:.2f} s"
        assert "[app] stopped" in logs.stdout + logs.stderr
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


@pytest.mark.parametrize(("extra_env", "message"), [
    ({"ENTRYPOINT_USER": "nosuch"}, "--user nosuch: no user 'nosuch' in /etc/passwd"),
    ({"PORT0": None}, "argument 3 ('$PORT0'), column 1: PORT0: not set"),
])
def test_bad_input_is_78_and_reaches_the_termination_log(
        podman: Podman, tmp_path: Path, extra_env: dict[str, str | None], message: str) -> None:
    """Kubernetes mounts a writable /dev/termination-log: the reason for the failed start lands there."""
    env = marathon_env(free_port())
    for key, value in extra_env.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    log = tmp_path / "termination-log"
    log.write_text("")
    name = f"entrypoint-user-{uuid.uuid4().hex[:8]}"
    done = podman("run", "--name", name, "--net", "host", *run_flags(), *env_flags(env),
                  "-v", f"{log}:/dev/termination-log", IMAGE, *app_args(), check=False, timeout=60)
    podman("rm", "-f", name, check=False)
    assert done.returncode == 78, done.stdout + done.stderr
    assert f"[entrypoint] error: {message}" in done.stderr.splitlines()
    assert "[app]" not in done.stdout + done.stderr  # nothing started
    assert log.read_text() == message + "\n"


def test_base_image_has_the_app_user(podman: Podman) -> None:
    listing = podman("run", "--rm", *run_flags(), "--entrypoint", "id", ENTRYPOINT_IMAGE, "app").stdout
    assert listing.startswith(f"uid={APP_UID}(app) gid=0(root)")
