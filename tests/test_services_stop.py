"""``run --services-dir``: the stop (order, down signals, one shared grace period) and ``finish``.

``finish`` gets s6's two arguments; real s6 (``s6-supervise``, Debian's s6
package) is the oracle where it is installed: the same service directory
under both must hand its ``finish`` the same arguments, and count as ready
(``notification-fd``) at the same point.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, needs_ns, run_ns, wait_until
from tests.services_helpers import events, service, service_state, state, wait_event

pytestmark = [needs_ns, pytest.mark.timeout(60)]


def _loop(name: str, log: Path, on_term: str = "exit 0") -> str:
    """A service that logs its start and every TERM (then ``on_term``), polling nothing else."""
    return (f"trap 'echo {name}-term >> {log}; {on_term}' TERM\necho {name} >> {log}\n"
            "while :; do sleep 0.05; done\n")


def test_the_app_stops_first_then_services_in_reverse_dependency_order(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "db", _loop("db", log))
    service(services, "api", _loop("api", log), dependencies="db\n")
    service(services, "web", _loop("web", log), dependencies="api\n")
    service(services, "cron", _loop("cron", log))
    app = f"trap 'echo app-term >> {log}; exit 0' TERM; echo app >> {log}; while :; do sleep 0.05; done"
    with Runtime(["--services-dir", str(services), "--", "/bin/sh", "-c", app]) as rt:
        wait_event(log, "app")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
    stops = [line for line in events(log) if line.endswith("-term")]
    assert stops[0] == "app-term"
    assert stops.index("web-term") < stops.index("api-term") < stops.index("db-term")
    assert sorted(stops) == ["api-term", "app-term", "cron-term", "db-term", "web-term"]


def test_the_stop_delay_keeps_everything_running_until_a_second_stop_signal(tmp_path: Path) -> None:
    log, st, services = tmp_path / "log", tmp_path / "state.json", tmp_path / "s"
    service(services, "svc", _loop("svc", log))
    with Runtime(["--services-dir", str(services), "--state-file", str(st), "--stop-delay", "300",
                  "--", "/bin/sh", "-c", _loop("app", log)]) as rt:
        wait_event(log, "app")
        rt.signal(signal.SIGTERM)
        wait_until(lambda: state(st).get("phase") == "stopping", 15, "phase stopping")
        assert service_state(st, "svc")["state"] == "ready" and "-term" not in " ".join(events(log))
        rt.signal(signal.SIGTERM)  # a second one ends the delay
        assert rt.wait() == 0
    assert [line for line in events(log) if line.endswith("-term")] == ["app-term", "svc-term"]


def test_down_signal_is_what_a_service_gets(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "hup", f"trap 'echo got-hup >> {log}; exit 0' HUP\necho hup >> {log}\n"
            "while :; do sleep 0.05; done\n", down_signal="HUP\n")
    with Runtime(["--services-dir", str(services), "--", "sleep", "60"]) as rt:
        wait_event(log, "hup")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert events(log) == ["hup", "got-hup"]


def test_one_grace_period_for_the_whole_stop(tmp_path: Path) -> None:
    """``deaf`` ignores its signal: at the end of the one grace period everything is killed,
    including ``base``, which depends-wise would have been next and never got its signal."""
    log, services = tmp_path / "log", tmp_path / "s"
    finish = f'echo "$ENTRYPOINT_SERVICE finish $1 $2" >> {log}\n'
    service(services, "base", _loop("base", log), finish=finish)
    service(services, "deaf", _loop("deaf", log, on_term=":"), dependencies="base\n", finish=finish)
    with Runtime(["--services-dir", str(services), "--grace-period", "1", "--",
                  "sleep", "60"]) as rt:
        wait_event(log, "deaf")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    lines = events(log)
    assert "deaf-term" in lines and "base-term" not in lines
    assert sorted(line for line in lines if "finish" in line) == ["base finish 256 9", "deaf finish 256 9"]


def test_finish_gets_the_exit_code_or_256_and_the_signal(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    finish = f'echo "$ENTRYPOINT_SERVICE $1 $2 $(pwd)" >> {log}\n'
    service(services, "three", "exit 3\n", restart="no\n", finish=finish)
    service(services, "usr1", "kill -USR1 $$\n", restart="no\n", finish=finish)
    service(services, "twice", "exit 2\n", restart="on-failure\n", finish=finish)
    service(services, "run", "exec sleep 60\n", finish=finish)
    with Runtime(["--services-dir", str(services), "--restart-delay", "0.05", "--restart-max", "1",
                  "--", "sleep", "60"]) as rt:
        wait_until(lambda: len(events(log)) >= 4, 15, "four finish runs")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    lines = sorted(events(log))
    assert lines == sorted([f"three 3 0 {services / 'three'}", f"usr1 256 10 {services / 'usr1'}",
                            f"twice 2 0 {services / 'twice'}", f"twice 2 0 {services / 'twice'}",
                            f"run 256 15 {services / 'run'}"])


def test_finish_is_bounded_by_the_finish_timeout(tmp_path: Path) -> None:
    log, services = tmp_path / "log", tmp_path / "s"
    service(services, "slow", f"echo slow >> {log}\nexec sleep 60\n",
            finish=f"echo finishing >> {log}\nexec sleep 60\n")
    with Runtime(["--services-dir", str(services), "--finish-timeout", "0.3", "--",
                  "sleep", "60"]) as rt:
        wait_event(log, "slow")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
        err = rt.proc.stderr.read() if rt.proc.stderr else b""
    assert events(log) == ["slow", "finishing"]
    assert b"service slow: finish did not end within 0.3 s: killed" in err


def test_finish_hooks_run_after_the_services_finish(tmp_path: Path) -> None:
    log, services, finish_dir = tmp_path / "log", tmp_path / "s", tmp_path / "finish.d"
    finish_dir.mkdir()
    (finish_dir / "10-last.sh").write_text(f"#!/bin/sh\necho hook $ENTRYPOINT_EXIT_CODE >> {log}\n")
    (finish_dir / "10-last.sh").chmod(0o755)
    service(services, "svc", f"echo svc >> {log}\nexec sleep 60\n", finish=f"echo svc-finish >> {log}\n")
    done = run_ns(["--services-dir", str(services), "--finish-dir", str(finish_dir), "--",
                   "/bin/sh", "-c", f"while ! grep -q svc {log} 2>/dev/null; do sleep 0.02; done; exit 6"])
    assert done.returncode == 6, done.stderr
    assert events(log) == ["svc", "svc-finish", "hook 6"]


S6 = shutil.which("s6-supervise")


@pytest.mark.skipif(S6 is None, reason="s6 (s6-supervise) is not installed")
def test_finish_arguments_match_s6(tmp_path: Path) -> None:
    """The same directory under s6-supervise and under run: an exit 3, then a stop by TERM."""
    def make(root: Path, log: Path) -> Path:
        marker = root / "ran-once"
        return service(root, "svc", f"if [ ! -e {marker} ]; then touch {marker}; exit 3; fi\n"
                       f"echo up >> {log}\nexec sleep 60\n", finish=f'echo "$1 $2" >> {log}\n')

    s6_log, our_log = tmp_path / "s6.log", tmp_path / "ours.log"
    directory = make(tmp_path / "s6", s6_log)
    assert S6 is not None
    with subprocess.Popen([S6, str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as sup:
        try:
            wait_event(s6_log, "up")  # s6 waits 1 s between two starts
            subprocess.run(["s6-svc", "-dx", str(directory)], check=True, timeout=10)
            sup.wait(15)
        finally:
            sup.kill()
    make(tmp_path / "ours", our_log)
    with Runtime(["--services-dir", str(tmp_path / "ours"), "--restart-delay", "0.05", "--",
                  "sleep", "60"]) as rt:
        wait_event(our_log, "up")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert events(s6_log) == ["3 0", "up", "256 15"]
    assert events(our_log) == events(s6_log)


def test_watch_reloads_the_app_and_leaves_the_services_alone(tmp_path: Path) -> None:
    log, services, template, out = tmp_path / "log", tmp_path / "s", tmp_path / "t.tmpl", tmp_path / "out"
    template.write_text("v=1\n")
    service(services, "svc", f"trap 'echo svc-hup >> {log}' HUP\necho svc >> {log}\n"
            "while :; do sleep 0.05; done\n")
    app = f"trap 'echo app-hup >> {log}' HUP; echo app >> {log}; while :; do sleep 0.05; done"
    with Runtime(["--services-dir", str(services), "--watch", "--watch-quiet", "0.05",
                  "--template", f"{template}:{out}", "--", "/bin/sh", "-c", app]) as rt:
        wait_event(log, "app")
        wait_event(log, "svc")
        template.write_text("v=2\n")
        wait_event(log, "app-hup")
        assert out.read_text() == "v=2\n"
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert "svc-hup" not in events(log)


def _svstat(directory: Path) -> str:
    done = subprocess.run(["s6-svstat", "-o", "up,ready", str(directory)], capture_output=True, text=True,
                          timeout=10)
    return done.stdout.strip()


@pytest.mark.skipif(S6 is None, reason="s6 (s6-supervise) is not installed")
@pytest.mark.parametrize("then", ["echo >&3", "exec 3>&-"])
def test_notification_fd_readiness_matches_s6(tmp_path: Path, then: str) -> None:
    """Data without a newline is not ready under either; the newline makes it ready under both,
    the fd closed without one leaves it not ready under both."""
    def make(root: Path, log: Path, go: Path) -> Path:
        return service(root, "svc", f"printf partial >&3\necho partial >> {log}\n"
                       f"while [ ! -e {go} ]; do sleep 0.02; done\n{then}\necho after >> {log}\n"
                       "exec sleep 60\n", notification_fd="3\n")

    verdicts: dict[str, list[bool]] = {}
    s6_log, s6_go = tmp_path / "s6.log", tmp_path / "s6.go"
    directory = make(tmp_path / "s6", s6_log, s6_go)
    assert S6 is not None
    with subprocess.Popen([S6, str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as sup:
        try:
            wait_event(s6_log, "partial")
            before = _svstat(directory) == "true true"
            s6_go.touch()
            wait_event(s6_log, "after")
            if then.startswith("echo"):
                wait_until(lambda: _svstat(directory) == "true true", 10, "s6: ready")
            verdicts["s6"] = [before, _svstat(directory) == "true true"]
            subprocess.run(["s6-svc", "-dx", str(directory)], check=True, timeout=10)
            sup.wait(15)
        finally:
            sup.kill()
    log, go, st = tmp_path / "ours.log", tmp_path / "ours.go", tmp_path / "state.json"
    make(tmp_path / "ours", log, go)
    with Runtime(["--services-dir", str(tmp_path / "ours"), "--state-file", str(st)]) as rt:
        wait_event(log, "partial")
        before = service_state(st, "svc").get("state") == "ready"
        go.touch()
        wait_event(log, "after")
        if then.startswith("echo"):
            wait_until(lambda: service_state(st, "svc").get("state") == "ready", 10, "ours: ready")
        verdicts["ours"] = [before, service_state(st, "svc").get("state") == "ready"]
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
    assert verdicts["s6"] == [False, then.startswith("echo")]
    assert verdicts["ours"] == verdicts["s6"]
