"""The bundle in real images (podman): Dockerfile.bundle, and a FROM-scratch image with only the
bundle and a static busybox serving a page the entrypoint rendered (examples/bundle-busybox).

Skipped without podman (on CI, CI=true, it must run: see tests/test_container.py's rules).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.container_support import (
    BUNDLE_IMAGE,
    BUSYBOX_IMAGE,
    JVM_BUNDLE_IMAGE,
    REFERENCE_BUNDLE_IMAGE,
    NoAnswer,
    Podman,
    Unavailable,
    check_tools,
    container_logs,
    ensure_bundle_images,
    env_flags,
    image_size_mb,
    memory_cgroup,
    mesos_env,
    read_cgroup_int,
    run_flags,
    wait_http,
)
from tests.pid1_helpers import REPO, free_port
from tests.test_container import unavailable

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(900)]



@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    try:
        check_tools()
        engine = Podman()
        ensure_bundle_images(engine)
    except (Unavailable, RuntimeError, OSError) as exc:
        unavailable(exc)
    yield engine
    engine("image", "prune", "--force", timeout=120, check=False)


def test_the_bundle_image_holds_only_the_tree(podman: Podman) -> None:
    out = podman("run", "--rm", *run_flags(), BUNDLE_IMAGE, "--version", timeout=60).stdout
    assert out.startswith("entrypoint ") and "(bundle, CPython 3." in out
    assert image_size_mb(podman, BUNDLE_IMAGE) < 40
    layers = podman("image", "inspect", BUNDLE_IMAGE, "--format", "{{len .RootFS.Layers}}").stdout.strip()
    assert layers == "1"  # FROM scratch + one COPY: nothing of the builder


def test_from_scratch_busybox_serves_the_rendered_page(podman: Podman) -> None:
    port, name = free_port(), f"entrypoint-bundle-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--net", "host", *run_flags(), "-e", f"PORT={port}",
           "-e", "GREETING=Grüß dich", BUSYBOX_IMAGE, timeout=60)
    try:
        try:
            body = wait_http(podman, name, port, timeout=30)
        except NoAnswer as exc:
            pytest.fail(str(exc))
        assert "<h1>Grüß dich from a FROM-scratch image</h1>" in body
        assert f"port {port}," in body
        # PID 1 is the bundle's interpreter, httpd its direct child
        stats = podman("exec", name, "/bin/busybox", "sh", "-c", "cat /proc/[0-9]*/stat", timeout=30).stdout
        procs = {}  # pid -> (comm, ppid)
        for line in stats.splitlines():
            pid, _, rest = line.partition(" (")
            comm, _, tail = rest.rpartition(") ")
            procs[int(pid)] = (comm, tail.split()[1])
        assert procs[1][0] == "entrypoint", stats
        assert ("busybox", "1") in procs.values(), stats  # httpd
        sent = time.monotonic()
        podman("kill", "--signal", "TERM", name, timeout=30)
        code = podman("wait", name, timeout=30).stdout.strip()
        assert code in ("0", "143"), container_logs(podman, name)
        assert time.monotonic() - sent < 10
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


def test_reference_deployment_on_the_bundle_in_32_mib(podman: Podman) -> None:
    """The app on the image's own python3, the entrypoint on the bundle's: starts, answers, stops 0
    within Marathon's 32 MiB (the peak against the pip install's: bench/bench_container_memory.py)."""
    port, name = free_port(), f"entrypoint-bundle-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--net", "host", *run_flags(), "--memory", "32m",
           "--memory-swap", "32m", *env_flags(mesos_env(port)), REFERENCE_BUNDLE_IMAGE, timeout=60)
    try:
        try:
            wait_http(podman, name, port, timeout=30)
        except NoAnswer as exc:
            pytest.fail(str(exc))
        cg = memory_cgroup(podman, name)
        assert read_cgroup_int(cg, "memory.limit_in_bytes") == 32 * 2**20
        oom = (cg / "memory.oom_control").read_text()
        assert "oom_kill 0" in oom or "oom_kill" not in oom
        podman("kill", "--signal", "TERM", name, timeout=30)
        assert podman("wait", name, timeout=30).stdout.strip() == "0", container_logs(podman, name)
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


def test_jvm_example_on_a_jre_without_python(podman: Podman) -> None:
    """examples/jvm as an image: Debian's JRE and the bundle, no python3; java reads the argfile
    the entrypoint rendered from the task's memory and CPUs (1024 MiB -> -Xmx768m)."""
    done = subprocess.run([sys.executable, "-m", "entrypoint", "env", "--clean-env", "--marathon-app",
                           str(REPO / "examples/jvm/app.json"), "--ports", "31200", "--format", "json"],
                          capture_output=True, text=True, timeout=30, check=True, cwd=REPO)
    env = json.loads(done.stdout)
    no_python = podman("run", "--rm", *run_flags(), *env_flags(env), JVM_BUNDLE_IMAGE,
                       "sh", "-c", "command -v python3 python || echo none", timeout=60).stdout
    assert no_python == "none\n"
    out = podman("run", "--rm", *run_flags(), *env_flags(env), JVM_BUNDLE_IMAGE,
                 "java", "@/etc/app/jvm.options", "-XX:+PrintFlagsFinal", "-XshowSettings:properties",
                 "-version", timeout=120)
    text = out.stdout + out.stderr
    heap = [line.split() for line in text.splitlines() if " MaxHeapSize " in line]
    assert heap and heap[0][3] == str(768 * 2**20), text  # size_t MaxHeapSize = 805306368 {product}
    assert "server.port = 31200" in text, text
