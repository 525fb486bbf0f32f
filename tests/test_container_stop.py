"""The stop delay in a real container engine: `podman stop -t 10` on the reference app with
`--stop-delay 2` (as ENTRYPOINT_STOP_DELAY, the way an image or a Marathon app sets it).

The app keeps answering HTTP for about 2 s after podman sent SIGTERM (a load balancer drains
the task meanwhile), then gets the signal, finishes cleanly and the container exits 0 — well
before podman's 10 s SIGKILL.  Reuses the image build and helpers of tests/test_container.py.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest

from tests.container_support import Podman
from tests.test_container import Container, free_port, podman  # noqa: F401  (podman is a fixture)

pytestmark = [pytest.mark.container, pytest.mark.timeout(400)]

STOP_DELAY = 2.0


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_podman_stop_keeps_serving_for_the_stop_delay(podman: Podman) -> None:  # noqa: F811
    ctr = Container(podman, free_port(), "-e", f"ENTRYPOINT_STOP_DELAY={STOP_DELAY:g}",
                    "-e", "ENTRYPOINT_VERBOSE=1")
    try:
        ctr.wait_http()
        sent = time.monotonic()
        stopper = subprocess.Popen(podman.argv("stop", "-t", "10", ctr.name), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        last_answer = sent
        try:
            while stopper.poll() is None and time.monotonic() - sent < 30:
                if answers(ctr.port):
                    last_answer = time.monotonic()
                time.sleep(0.05)
            stopper.wait(30)
        finally:
            if stopper.poll() is None:
                stopper.kill()
        stopped = time.monotonic()
        code = int(podman("inspect", ctr.name, "--format", "{{.State.ExitCode}}").stdout.strip())
        logs = ctr.logs()
        podman.timings["stop-delay 2: last HTTP answer after stop"] = round(last_answer - sent, 2)
        podman.timings["stop-delay 2: podman stop -t 10 took"] = round(stopped - sent, 2)
        assert code == 0, logs  # not 137: the app stopped on its own, inside podman's window
        assert last_answer - sent >= STOP_DELAY - 0.3, f"stopped answering after {last_answer - sent:.2f}s"
        assert stopped - sent < 10, f"podman stop took {stopped - sent:.2f}s (SIGKILL at 10 s)"
        assert "[app] SIGTERM: finishing in-flight requests" in logs
        assert "[app] stopped" in logs
    finally:
        ctr.remove()
