"""`podman exec CTR entrypoint status` in the real base image (the way Marathon and Kubernetes call it).

Builds (layer-cached) Dockerfile.base and the reference example as
tests/test_container.py does, runs the example under `--memory 32m` with the
variables Mesos passes, and asks `entrypoint status` inside it: exit 0 and the
container's real cgroup limit while the app runs; one line and exit 1 in a
container of the same image whose PID 1 is not entrypoint.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container_support import (
    ENTRYPOINT_IMAGE,
    REFERENCE_IMAGE,
    Podman,
    Unavailable,
    check_tools,
    ensure_images,
    env_flags,
    mesos_env,
    run_flags,
)
from tests.test_container import free_port, unavailable

pytestmark = [pytest.mark.container, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def podman() -> Podman:
    try:
        check_tools()
        engine = Podman()
        ensure_images(engine)
    except (Unavailable, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(exc)
    return engine


@pytest.fixture
def names(podman: Podman) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


def start(podman: Podman, names: list[str], *args: str) -> str:
    name = f"entrypoint-status-{uuid.uuid4().hex[:8]}"
    names.append(name)
    podman("run", "-d", "--name", name, "--net", "host", *run_flags(), *args, timeout=60)
    return name


def status(podman: Podman, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return podman("exec", name, "entrypoint", "status", *args, check=False, timeout=30)


def _cgroup_v1_memory() -> bool:
    return Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()


def test_status_in_the_reference_container(podman: Podman, names: list[str]) -> None:
    port = free_port()
    memory = ["--memory", "32m", "--memory-swap", "32m"] if _cgroup_v1_memory() else []
    name = start(podman, names, *memory, *env_flags(mesos_env(port)), REFERENCE_IMAGE)

    def healthy() -> subprocess.CompletedProcess[str] | None:
        done = status(podman, name, "--format", "json")
        return done if done.returncode == 0 else None

    deadline, done = time.monotonic() + 30, None
    while done is None and time.monotonic() < deadline:
        done = healthy()
        if done is None:
            time.sleep(0.2)
    assert done is not None, status(podman, name).stdout + podman("logs", name, check=False).stderr
    doc = json.loads(done.stdout)
    assert doc["phase"] == "running" and doc["healthy"] is True and doc["runtime_pid"] == 1
    rows = {row["pid"]: row for row in doc["processes"]}
    assert rows[1]["ppid"] == 0 and "run" in rows[1]["cmdline"]
    app = rows[doc["app"]["pid"]]
    assert app["ppid"] == 1 and "/opt/app/server.py" in app["cmdline"] and app["rss_bytes"] > 0
    assert not any(row["zombie"] for row in doc["processes"])
    if memory:
        assert doc["memory"] == {"limit_bytes": 32 * 2**20, "usage_bytes": doc["memory"]["usage_bytes"],
                                 "cgroup": "v1"}
        assert 0 < doc["memory"]["usage_bytes"] < 32 * 2**20

    text = status(podman, name)
    assert text.returncode == 0 and text.stdout.startswith("phase: running since "), text.stdout
    assert "healthy: the app is running" in text.stdout
    # the `docker exec` of Marathon's Docker executor: `sh -c "..."` in the container
    assert podman("exec", name, "sh", "-c", "entrypoint status --interval 0 >/dev/null",
                  check=False, timeout=30).returncode == 0
    assert podman("logs", name, check=False).stderr.count("Killed") == 0  # no OOM kill in 32 MiB


def test_status_where_pid1_is_not_entrypoint(podman: Podman, names: list[str]) -> None:
    name = start(podman, names, "--entrypoint", "sleep", ENTRYPOINT_IMAGE, "120")
    done = status(podman, name)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stdout.startswith("entrypoint status: no state file at /run/entrypoint/state.json"), done
    assert done.stdout.count("\n") == 1
