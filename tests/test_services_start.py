"""``run --services-dir``: start order, readiness (fd, URL, none), timeout-up, COMMAND optional.

The runtime is PID 1 of a fresh PID namespace; services and the app write
their events to one log; the state file says where each service is.
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

import pytest

from entrypoint.errors import EX_USAGE
from tests.pid1_helpers import Runtime, free_port, needs_ns, run_ns
from tests.services_helpers import PY, events, service, state, wait_event, wait_service

pytestmark = [needs_ns, pytest.mark.timeout(60)]


def test_a_service_starts_only_when_its_slow_dependency_is_ready(tmp_path: Path) -> None:
    log, go, st, services = tmp_path / "log", tmp_path / "go", tmp_path / "state.json", tmp_path / "s"
    service(services, "db", f"echo db-started >> {log}\n"
            f"while [ ! -e {go} ]; do sleep 0.02; done\necho db-ready >> {log}\necho >&3\nexec sleep 60\n",
            notification_fd="3\n")
    service(services, "web", f"echo web-started >> {log}\nexec sleep 60\n", dependencies="db\n")
    service(services, "cron", f"echo cron-started >> {log}\nexec sleep 60\n")  # independent: at once
    with Runtime(["--services-dir", str(services), "--state-file", str(st), "--",
                  "/bin/sh", "-c", f"echo app-started >> {log}; exec sleep 60"]) as rt:
        wait_event(log, "db-started")
        wait_event(log, "cron-started")
        assert wait_service(st, "web", "starting") == {"name": "web", "state": "starting", "pid": None,
                                                       "restarts": 0, "last_exit_code": None,
                                                       "essential": False}
        assert state(st)["phase"] == "starting"
        assert "web-started" not in events(log) and "app-started" not in events(log)
        go.touch()
        wait_event(log, "app-started")
        wait_event(log, "web-started")  # web has no readiness check: ready once started, so the app
        lines = events(log)               # may write before it does
        assert lines.index("db-ready") < lines.index("web-started")
        assert lines.index("db-ready") < lines.index("app-started")
        wait_service(st, "web", "ready")
        assert state(st)["phase"] == "running"
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_ready_by_url_waits_for_the_port(tmp_path: Path) -> None:
    log, go, services, port = tmp_path / "log", tmp_path / "go", tmp_path / "s", free_port()
    server = ("import socket\ns = socket.socket()\n"
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              f"s.bind(('127.0.0.1', {port}))\ns.listen()\nopen('{log}', 'a').write('listening\\n')\n"
              "while True:\n    s.accept()[0].close()\n")
    (tmp_path / "server.py").write_text(server)
    service(services, "api", f"echo api-started >> {log}\nwhile [ ! -e {go} ]; do sleep 0.02; done\n"
            f"exec {PY} {tmp_path / 'server.py'}\n", ready=f"tcp://127.0.0.1:{port}\n")
    with Runtime(["--services-dir", str(services), "--", "/bin/sh", "-c",
                  f"echo app-started >> {log}; exec sleep 60"]) as rt:
        wait_event(log, "api-started")
        assert "app-started" not in events(log)
        go.touch()
        wait_event(log, "app-started")
        assert events(log).index("listening") < events(log).index("app-started")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_a_service_never_ready_fails_the_start_with_69(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "stuck", f"echo started >> {log}\nexec sleep 60\n", notification_fd="3\n",
            timeout_up="0.3\n", restart="on-failure\n")
    done = run_ns(["--services-dir", str(services), "--restart-delay", "0.05", "--restart-max", "1",
                   "--", "/bin/sh", "-c", f"echo app-started >> {log}"])
    assert done.returncode == 69, done.stderr
    assert events(log) == ["started", "started"]  # restarted once (on-failure), then given up
    assert b"service stuck: not ready within 0.3 s (timeout-up)" in done.stderr
    assert b"cannot start" in done.stderr


def test_notification_fd_closed_without_a_newline_is_not_ready(tmp_path: Path) -> None:
    """As s6: data without a newline, then EOF, does not count; timeout-up decides."""
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "mute", f"printf partial >&3\nexec 3>&-\necho closed >> {log}\nexec sleep 60\n",
            notification_fd="3\n", timeout_up="0.5\n", restart="no\n")
    done = run_ns(["--services-dir", str(services), "--", "/bin/sh", "-c", f"echo app >> {log}"])
    assert done.returncode == 69, done.stderr
    assert events(log) == ["closed"]


def test_the_notification_fd_is_the_number_asked_for(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "five", "echo ready >&5\nexec sleep 60\n", notification_fd="5\n")
    done = run_ns(["--services-dir", str(services), "--", "/bin/sh", "-c", f"echo app >> {log}"])
    assert done.returncode == 0, done.stderr
    assert events(log) == ["app"]


def test_environment_and_working_directory(tmp_path: Path) -> None:
    log, services, hooks = tmp_path / "log", tmp_path / "s", tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-env.envsh").write_text("export FROM_HOOK=yes\n")
    (hooks / "10-env.envsh").chmod(0o755)
    (tmp_path / "secret").write_text("s3cret")
    service(services, "probe",
            f'echo "$ENTRYPOINT_SERVICE $(pwd) $FROM_HOOK $TOKEN" >> {log}\nexec sleep 60\n')
    done = run_ns(["--services-dir", str(services), "--hooks-dir", str(hooks), "--secret", "TOKEN",
                   "--", "/bin/sh", "-c", f"while ! [ -s {log} ]; do sleep 0.02; done"],
                  env={**_env(), "TOKEN_FILE": str(tmp_path / "secret")})
    assert done.returncode == 0, done.stderr
    assert events(log) == [f"probe {services / 'probe'} yes s3cret"]


def test_no_command_runs_the_services_until_a_stop_signal_then_exits_0(tmp_path: Path) -> None:
    log, st, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "s"
    service(services, "one", f"echo one >> {log}\nexec sleep 60\n")
    with Runtime(["--services-dir", str(services), "--state-file", str(st)]) as rt:
        wait_service(st, "one", "ready")
        assert state(st)["phase"] == "running"
        assert state(st)["app"] == {"pid": None, "restarts": 0, "last_exit_code": None, "command": []}
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
    assert events(log) == ["one"]


def test_no_command_and_no_services_is_a_usage_error(tmp_path: Path) -> None:
    done = run_ns(["--services-dir", str(tmp_path / "none")])
    assert done.returncode == EX_USAGE
    assert b"no command given" in done.stderr


def test_a_stop_signal_during_the_start_ends_it_before_the_app(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "slow", f"echo slow >> {log}\nexec sleep 60\n", notification_fd="3\n")
    with Runtime(["--services-dir", str(services), "--", "/bin/sh", "-c", f"echo app >> {log}"]) as rt:
        wait_event(log, "slow")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 128 + signal.SIGTERM  # COMMAND never ran: 128+N, as before services
    assert events(log) == ["slow"]


def _env() -> dict[str, str]:
    from tests.pid1_helpers import base_env

    return base_env()


def test_a_service_user_runs_it_as_that_user_with_its_home() -> None:
    # not under tmp_path: pytest's base directory is root's alone (0700), daemon could not reach run
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        log, services = root / "log", root / "s"
        log.touch()
        log.chmod(0o666)
        service(services, "low", f'echo "$(id -u):$(id -g) $HOME" >> {log}\nexec sleep 60\n',
                user="daemon\n")
        service(services, "root", f'echo "$(id -u) $HOME" >> {log}\nexec sleep 60\n')
        done = run_ns(["--services-dir", str(services), "--", "/bin/sh", "-c",
                       f"while [ $(wc -l < {log}) -lt 2 ]; do sleep 0.02; done"],
                      env={**_env(), "HOME": "/root"})
        assert done.returncode == 0, done.stderr
        assert sorted(events(log)) == ["0 /root", "1:1 /usr/sbin"]
