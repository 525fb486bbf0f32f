"""``run --services-dir``: restart policies with a backoff per service, essential services."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, needs_ns, run_ns, wait_until
from tests.services_helpers import events, service, service_state, state, wait_event, wait_service

pytestmark = [needs_ns, pytest.mark.timeout(60)]

BACKOFF = ["--restart-delay", "0.05", "--restart-delay-max", "0.1", "--restart-max", "2"]


def test_each_service_has_its_own_policy_and_backoff(tmp_path: Path) -> None:
    log, st, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "s"
    service(services, "flaky", f"echo flaky >> {log}\nexit 1\n", restart="on-failure\n")
    service(services, "done", f"echo done >> {log}\nexit 0\n", restart="on-failure\n")
    service(services, "loop", f"echo loop >> {log}\nexit 0\n")  # restart always (the default)
    service(services, "single", f"echo single >> {log}\nexit 1\n", restart="no\n")
    service(services, "steady", f"echo steady >> {log}\nexec sleep 60\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st), *BACKOFF, "--",
                  "sleep", "60"]) as rt:
        flaky = wait_service(st, "flaky", "down")
        loop = wait_service(st, "loop", "down")
        assert (flaky["restarts"], flaky["last_exit_code"]) == (2, 1)  # --restart-max 2, then given up
        assert (loop["restarts"], loop["last_exit_code"]) == (2, 0)
        assert service_state(st, "done")["restarts"] == 0
        assert service_state(st, "single")["restarts"] == 0
        steady = service_state(st, "steady")
        assert (steady["state"], steady["restarts"]) == ("ready", 0)
        assert state(st)["phase"] == "running" and state(st)["app"]["pid"] is not None
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    lines = events(log)
    assert [lines.count(n) for n in ("flaky", "loop", "done", "single", "steady")] == [3, 3, 1, 1, 1]


def test_a_dependant_keeps_running_while_its_dependency_restarts(tmp_path: Path) -> None:
    log, st, go, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "go", tmp_path / "s"
    marker = tmp_path / "db-ran"
    service(services, "db", f"echo db >> {log}\nif [ ! -e {marker} ]; then touch {marker}\n"
            f"  while [ ! -e {go} ]; do sleep 0.02; done; exit 1\nfi\nexec sleep 60\n")
    service(services, "web", f"echo web >> {log}\nexec sleep 60\n", dependencies="db\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st), *BACKOFF, "--",
                  "/bin/sh", "-c", f"echo app >> {log}; exec sleep 60"]) as rt:
        wait_event(log, "app")
        web = wait_service(st, "web", "ready")
        go.touch()
        wait_until(lambda: service_state(st, "db").get("restarts") == 1
                   and service_state(st, "db")["state"] == "ready", 15, "db restarted and ready")
        assert service_state(st, "web") == web  # same pid, never restarted
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert events(log).count("web") == 1 and events(log).count("app") == 1
    assert events(log).count("db") == 2


def test_an_essential_service_ending_stops_the_container_with_its_code(tmp_path: Path) -> None:
    log, go, services = tmp_path / "log", tmp_path / "go", tmp_path / "s"
    service(services, "core", f"while [ ! -e {go} ]; do sleep 0.02; done\nexit 7\n", essential="",
            restart="no\n")
    service(services, "side", f"trap 'echo side-term >> {log}; exit 0' TERM\n"
            "while :; do sleep 0.05; done\n")
    with Runtime(["--services-dir", str(services), "--", "/bin/sh", "-c",
                  f"trap 'echo app-term >> {log}; exit 0' TERM; echo app >> {log}; "
                  "while :; do sleep 0.05; done"]) as rt:
        wait_event(log, "app")
        go.touch()
        assert rt.wait() == 7
    assert events(log) == ["app", "app-term", "side-term"]


def test_an_essential_service_that_gives_up_stops_the_container(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "core", f"echo core >> {log}\nexit 5\n", essential="", restart="on-failure\n")
    done = run_ns(["--services-dir", str(services), *BACKOFF, "--", "/bin/sh", "-c",
                   f"echo app >> {log}; exec sleep 60"])
    assert done.returncode == 5, done.stderr
    assert events(log).count("core") == 3
    assert b"service core exited with 5; giving up after 2 restart(s)" in done.stderr


def test_a_service_done_after_it_was_ready_blocks_nobody(tmp_path: Path) -> None:
    """``once`` is ready, exits 0 and stays down (restart no) long before ``slow`` is ready:
    its dependant and COMMAND still start."""
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "once", f"echo once >> {log}\nexit 0\n", restart="no\n")
    service(services, "after", f"echo after >> {log}\nexec sleep 60\n", dependencies="once\n")
    service(services, "slow", f"while ! grep -q after {log}; do sleep 0.02; done\necho >&3\nexec sleep 60\n",
            notification_fd="3\n")
    done = run_ns(["--services-dir", str(services), "--", "/bin/sh", "-c", f"echo app >> {log}"])
    assert done.returncode == 0, done.stderr
    assert events(log) == ["once", "after", "app"]


def test_a_non_essential_service_ending_changes_nothing(tmp_path: Path) -> None:
    log, st, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "s"
    service(services, "side", f"echo side >> {log}\nexit 4\n", restart="no\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st), "--",
                  "/bin/sh", "-c", f"echo app >> {log}; exec sleep 60"]) as rt:
        side = wait_service(st, "side", "down")
        assert (side["pid"], side["last_exit_code"]) == (None, 4)
        assert state(st)["phase"] == "running"
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_the_app_ending_stops_the_services_with_its_code(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "side", f"trap 'echo side-term >> {log}; exit 0' TERM\n"
            "echo side >> {log}\nwhile :; do sleep 0.05; done\n".replace("{log}", str(log)))
    done = run_ns(["--services-dir", str(services), "--", "/bin/sh", "-c",
                   f"while ! grep -q side {log} 2>/dev/null; do sleep 0.02; done; exit 3"])
    assert done.returncode == 3, done.stderr
    assert events(log) == ["side", "side-term"]


def test_the_app_restarts_by_restart_while_services_keep_running(tmp_path: Path) -> None:
    log, st, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "s"
    service(services, "side", f"echo side >> {log}\nexec sleep 60\n")
    done = run_ns(["--services-dir", str(services), "--state-file", str(st), "--restart", "on-failure",
                   *BACKOFF, "--", "/bin/sh", "-c", f"echo app >> {log}; exit 9"])
    assert done.returncode == 9, done.stderr
    assert events(log).count("app") == 3 and events(log).count("side") == 1
    assert state(st)["app"]["restarts"] == 2


def test_services_only_all_down_for_good_runs_on_until_a_stop_signal(tmp_path: Path) -> None:
    """cli.md: without COMMAND, `run` runs until a stop signal or an essential service's end; a
    non-essential service that ends for good (even failing) is neither. PID 1 is shown to be alive
    after the end by a line it copies from a --log-file written only then."""
    st, services, applog = tmp_path / "state.json", tmp_path / "s", tmp_path / "app.log"
    service(services, "once", "exit 3\n", restart="no\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st), "--log-file", str(applog)]) as rt:
        assert wait_service(st, "once", "down")["last_exit_code"] == 3
        assert state(st)["phase"] == "running"
        applog.write_text("still supervising\n")
        rt.signal(signal.SIGTERM)
        out, err = rt.communicate()
        assert rt.proc.returncode == 0, err
    assert b"still supervising\n" in out
