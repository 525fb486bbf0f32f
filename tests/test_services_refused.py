"""``run`` refuses a broken ``--services-dir`` before anything starts: exit 78, one line a problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint.errors import EX_CONFIG
from tests.pid1_helpers import base_env, needs_ns, run_ns, start_markers
from tests.services_helpers import service

pytestmark = [needs_ns, pytest.mark.timeout(60)]

RUN = "touch {mark}\nexec sleep 60\n"


def _bad(root: Path, case: str, mark: Path) -> str:
    """One broken service directory; returns the FILE the problem names."""
    run = RUN.format(mark=mark)
    if case == "no-run":
        (root / "svc").mkdir(parents=True)
        return "svc/run"
    if case == "run-not-executable":
        service(root, "svc", run)
        (root / "svc" / "run").chmod(0o644)
        return "svc/run"
    files = {"unknown-dependency": {"dependencies": "nope\n"},
             "bad-ready": {"ready": "gopher://x\n"},
             "fd-and-ready": {"notification_fd": "3\n", "ready": "tcp://127.0.0.1:1\n"},
             "bad-fd": {"notification_fd": "1\n"},
             "bad-down-signal": {"down_signal": "NOPE\n"},
             "bad-timeout-up": {"timeout_up": "soon\n"},
             "bad-restart": {"restart": "sometimes\n"}}[case]
    service(root, "svc", run, **files)
    return "svc/" + list(files)[-1].replace("_", "-")


CASES = ["no-run", "run-not-executable", "unknown-dependency", "bad-ready", "fd-and-ready", "bad-fd",
         "bad-down-signal", "bad-timeout-up", "bad-restart"]


@pytest.mark.parametrize("case", CASES)
def test_a_broken_service_directory_starts_nothing(tmp_path: Path, case: str) -> None:
    services, mark = tmp_path / "s", tmp_path / "service-ran"
    named = _bad(services, case, mark)
    service(services, "good", RUN.format(mark=mark))
    options, dest, hook_mark = start_markers(tmp_path)
    app_mark = tmp_path / "app-ran"
    done = run_ns([*options, "--services-dir", str(services), "--", "touch", str(app_mark)])
    assert done.returncode == EX_CONFIG, done.stderr
    assert f"{services}/{named}".encode() in done.stderr
    assert not dest.exists() and not hook_mark.exists() and not mark.exists() and not app_mark.exists()


def test_every_problem_is_one_line_and_a_cycle_names_its_services(tmp_path: Path) -> None:
    services, mark = tmp_path / "s", tmp_path / "ran"
    service(services, "a", RUN.format(mark=mark), dependencies="b\n")
    service(services, "b", RUN.format(mark=mark), dependencies="a\n")
    service(services, "c", RUN.format(mark=mark), restart="maybe\n")
    done = run_ns(["--", "true"], env=base_env(ENTRYPOINT_SERVICES_DIR=str(services)))
    assert done.returncode == EX_CONFIG
    errors = [line for line in done.stderr.splitlines() if b"error" in line]
    assert len(errors) == 2, done.stderr  # the cycle, once; c's restart
    assert any(b"a" in line and b"b" in line and b"cycle" in line for line in errors)
    assert not mark.exists()


def test_a_user_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    services, mark = tmp_path / "s", tmp_path / "ran"
    service(services, "svc", RUN.format(mark=mark), user="no-such-user-here\n")
    done = run_ns(["--services-dir", str(services), "--", "true"])
    assert done.returncode == EX_CONFIG
    assert f"{services}/svc/user".encode() in done.stderr
    assert not mark.exists()
