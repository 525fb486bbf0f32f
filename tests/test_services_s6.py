"""Real s6 as the oracle for the service-directory files whose meaning we share with it.

The same directory runs under ``s6-supervise`` (Debian's ``s6``): what ``s6-svc -d`` sends for a
``down-signal`` must be what config.py reads, and a ``notification-fd`` s6 calls invalid must be one
we refuse.  Where we deliberately differ (docs/services.md, "Differences from s6"), the test says so.
Skipped where s6 is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoint.supervise.parts import signals
from entrypoint.supervise.services import config
from tests.test_services_config import service

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("s6-supervise") is None, reason="s6 is not installed")]


class Supervised:
    """One ``s6-supervise DIR`` of ours; stopped for good (``s6-svc -x``) at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proc = subprocess.Popen(["s6-supervise", str(directory)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def status(self) -> str:
        done = subprocess.run(["s6-svstat", str(self.directory)], capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    def until(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.status()
            if state.startswith(prefix):
                return state
            time.sleep(0.02)
        pytest.fail(f"s6-supervise {self.directory}: not {prefix!r} in time (last: {self.status()!r})")

    def close(self) -> str:
        subprocess.run(["s6-svc", "-xd", str(self.directory)], capture_output=True, timeout=10)
        try:
            _, err = self.proc.communicate(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return err


@pytest.fixture
def supervised() -> Iterator[list[Supervised]]:
    started: list[Supervised] = []
    yield started
    for one in started:
        if one.proc.poll() is None:
            one.close()


SPELLINGS = ["TERM", "SIGTERM", "sigterm", "15", "usr1", "SIGHUP", "2", "QUIT", "kill", "9"]


def test_down_signal_means_what_s6_sends(tmp_path: Path, supervised: list[Supervised]) -> None:
    for i, text in enumerate(SPELLINGS):
        directory = service(tmp_path, f"s{i}", down_signal=text + "\n")
        (directory / "run").write_text("#!/bin/sh\nexec sleep 100\n")
        supervised.append(Supervised(directory))
    ours = {s.name: s.down_signal for s in config.load(str(tmp_path))}
    for one in supervised:
        one.until("up")
        subprocess.run(["s6-svc", "-d", str(one.directory)], check=True, timeout=10)
    for i, (text, one) in enumerate(zip(SPELLINGS, supervised, strict=True)):
        state = one.until("down")
        assert state.startswith(f"down (signal {signals.name(ours[f's{i}'])})"), (text, state)


#: notification-fd text -> s6 calls it invalid; our verdict differs only where docs/services.md says so.
NOTIFICATION_FDS = {"3": False, "4": False, "abc": True, "-1": True, "99999999999": True, "3 x": True,
                    " 3": True, "0": False, "1": False, "2": False}
DIFFERENCES = {" 3": "we strip whitespace", "0": "we refuse 0-2", "1": "we refuse 0-2", "2": "we refuse 0-2"}


def test_notification_fd_s6_refuses_is_refused_here(tmp_path: Path, supervised: list[Supervised]) -> None:
    texts = list(NOTIFICATION_FDS)
    for i, text in enumerate(texts):
        directory = service(tmp_path, f"n{i}", notification_fd=text + "\n")
        (directory / "run").write_text("#!/bin/sh\nexec sleep 100\n")
        supervised.append(Supervised(directory))
    refused = {p.path.split("/")[-2] for p in config.problems(str(tmp_path))[1]}
    for one in supervised:
        one.until("up")
    for i, (text, one) in enumerate(zip(texts, supervised, strict=True)):
        s6_invalid = "invalid notification-fd" in one.close()
        assert s6_invalid == NOTIFICATION_FDS[text], text  # the oracle behaves as documented
        we_refuse = f"n{i}" in refused
        assert (we_refuse == s6_invalid) != (text in DIFFERENCES), (text, we_refuse, s6_invalid)
