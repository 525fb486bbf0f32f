"""`run --stop-delay` and the state file, as PID 1 of a fresh PID namespace, signalled from outside."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pid1_helpers import Runtime, alive, base_env, needs_ns, prog, read_lines, run_ns, wait_until

pytestmark = [needs_ns, pytest.mark.timeout(60)]

TERM = int(signal.SIGTERM)


def stamps(out: Path, signum: int) -> list[float]:
    """Receipt times (CLOCK_MONOTONIC) of ``signum`` as `print_signals.py --stamp` printed them."""
    return [float(line.split()[1]) for line in read_lines(out) if line.split()[0] == str(signum)]


def app_ready(out: Path) -> None:
    wait_until(lambda: "ready" in read_lines(out), 15, "the app to block its signals")


def state_of(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return doc


def wait_phase(path: Path, phase: str, timeout: float = 15) -> dict[str, Any]:
    doc: dict[str, Any] = wait_until(
        lambda: (d := state_of(path)) is not None and d["phase"] == phase and d, timeout, f"phase {phase}")
    return doc


def test_app_keeps_serving_during_the_delay_then_gets_the_rewritten_signal(tmp_path: Path) -> None:
    out, st = tmp_path / "out", tmp_path / "state.json"
    args = ["--stop-delay", "1.5", "--state-file", str(st), "--rewrite-signal", "TERM:USR2",
            "--", *prog("print_signals.py"), "--stamp", "--exit-on", str(int(signal.SIGUSR2))]
    with out.open("wb") as f, Runtime(args, stdout=f) as rt:
        app_ready(out)
        app_pid = wait_phase(st, "running")["app"]["pid"]
        sent = time.monotonic()
        rt.signal(signal.SIGTERM)
        doc = wait_phase(st, "stopping")
        assert doc["app"]["pid"] == app_pid  # still the app, still alive: it keeps serving
        rt.signal(signal.SIGUSR1)  # other signals still reach it meanwhile
        wait_until(lambda: stamps(out, signal.SIGUSR1), 15, "USR1 during the stop delay")
        assert rt.wait() == 0
    usr2 = stamps(out, signal.SIGUSR2)
    assert len(usr2) == 1 and not stamps(out, TERM)  # rewritten, delivered once
    assert usr2[0] - sent >= 1.5
    assert stamps(out, signal.SIGUSR1)[0] < usr2[0]


def test_a_second_stop_signal_forwards_at_once(tmp_path: Path) -> None:
    out, st = tmp_path / "out", tmp_path / "state.json"
    args = ["--stop-delay", "300", "--state-file", str(st), "--",
            *prog("print_signals.py"), "--stamp", "--exit-on", str(TERM)]
    with out.open("wb") as f, Runtime(args, stdout=f) as rt:
        wait_phase(st, "running")
        app_ready(out)  # "running" is published at the fork, before the app blocks its signals
        rt.signal(signal.SIGTERM)
        wait_phase(st, "stopping")
        assert not stamps(out, TERM)
        second = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=30) == 0
    got = stamps(out, TERM)
    assert len(got) == 1 and got[0] - second < 30  # nowhere near the 300 s delay


def test_the_grace_period_starts_at_forwarding(tmp_path: Path) -> None:
    """The app notes TERM and keeps running: SIGKILL comes a full grace period after the forward."""
    out, st = tmp_path / "out", tmp_path / "state.json"
    args = ["--stop-delay", "1", "--grace-period", "1.5", "--state-file", str(st), "--",
            *prog("print_signals.py"), "--stamp"]
    with out.open("wb") as f, Runtime(args, stdout=f) as rt:
        wait_phase(st, "running")
        app_ready(out)
        sent = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 128 + signal.SIGKILL
        ended = time.monotonic()
    forwarded = stamps(out, TERM)
    assert len(forwarded) == 1
    assert forwarded[0] - sent >= 1.0
    assert ended - forwarded[0] >= 1.5


def test_the_app_exiting_during_the_delay_ends_the_stop(tmp_path: Path) -> None:
    st = tmp_path / "state.json"
    ready = tmp_path / "go"
    script = f'while [ ! -e {ready} ]; do sleep 0.02; done; exit 7'
    with Runtime(["--stop-delay", "300", "--state-file", str(st), "--", "/bin/sh", "-c", script]) as rt:
        wait_phase(st, "running")
        rt.signal(signal.SIGTERM)
        wait_phase(st, "stopping")
        ready.touch()
        assert rt.wait(timeout=30) == 7
    doc = state_of(st)
    assert doc is not None and doc["app"]["last_exit_code"] == 7 and doc["app"]["pid"] is None


@pytest.mark.parametrize(("how", "code"), [("cli", 2), ("env", 78)])
def test_a_negative_delay_is_a_usage_error(tmp_path: Path, how: str, code: int) -> None:
    """On the command line a usage error (2); in ENTRYPOINT_* configuration (78), as in every command."""
    marker = tmp_path / "started"
    args = ["--stop-delay", "-1"] if how == "cli" else []
    env = base_env(ENTRYPOINT_STOP_DELAY="-1") if how == "env" else None
    done = run_ns([*args, "--", "touch", str(marker)], env=env)
    assert done.returncode == code
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and "stop" in lines[0].lower() and "-1" in lines[0], lines
    assert not marker.exists()


def test_warns_when_the_stop_cannot_fit_the_mesos_kill_window(tmp_path: Path) -> None:
    env = base_env(MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD="8secs")  # a 6 s kill policy
    done = run_ns(["--stop-delay", "2", "--grace-period", "4", "--", "true"], env=env)
    assert done.returncode == 0
    assert b"kill window is 6 s" in done.stderr and b"2 + --grace-period 4" in done.stderr, done.stderr
    done = run_ns(["--stop-delay", "2", "--grace-period", "3", "--", "true"], env=env)
    assert done.returncode == 0 and b"kill window" not in done.stderr, done.stderr
    done = run_ns(["--stop-delay", "20", "--", "true"])  # no variable shows the window: no guess
    assert b"kill window" not in done.stderr


# -- the state file ------------------------------------------------------------------------

def test_state_file_follows_every_phase(tmp_path: Path) -> None:
    """Each phase is held open by the test (a file it creates releases it), so none is missed."""
    st = tmp_path / "run" / "state.json"
    rel = {n: tmp_path / f"release-{n}" for n in ("render", "hook", "app", "finish")}

    def hold(name: str) -> str:
        return f"while [ ! -e {rel[name]} ]; do sleep 0.02; done"

    src, dest = tmp_path / "app.conf.tmpl", tmp_path / "app.conf"
    src.write_text("x=${X:-1}\n")
    hooks, finish = tmp_path / "hooks", tmp_path / "finish"
    hooks.mkdir()
    finish.mkdir()
    for directory, name in ((hooks, "hook"), (finish, "finish")):
        script = directory / "10-hold.sh"
        script.write_text(f"#!/bin/sh\n{hold(name)}\n")
        script.chmod(0o755)
    once = tmp_path / "once"
    app = f"[ -e {once} ] && exec sleep 1000; {hold('app')}; touch {once}; exit 3"
    args = ["--template", f"{src}:{dest}", "--check-cmd", hold("render"), "--hooks-dir", str(hooks),
            "--wait", f"file://{tmp_path}/release-wait", "--restart", "on-failure",
            "--restart-delay", "300", "--finish-dir", str(finish), "--finish-timeout", "30",
            "--state-file", str(st), "--", "/bin/sh", "-c", app]
    with Runtime(args) as rt:
        first = wait_phase(st, "rendering")
        assert first["version"] == 1 and first["runtime_pid"] == 1
        assert first["app"] == {"pid": None, "restarts": 0, "last_exit_code": None,
                                "command": ["/bin/sh", "-c", app]}
        rel["render"].touch()
        wait_phase(st, "hooks")
        rel["hook"].touch()
        wait_phase(st, "waiting")
        (tmp_path / "release-wait").touch()
        running = wait_phase(st, "running")
        assert isinstance(running["app"]["pid"], int) and running["changed_at"] >= first["changed_at"]
        rel["app"].touch()
        restarting = wait_phase(st, "restarting")
        assert restarting["app"] == {**running["app"], "pid": None, "restarts": 1, "last_exit_code": 3}
        rt.signal(signal.SIGTERM)  # ends the 300 s backoff at once
        finishing = wait_phase(st, "finishing")
        assert finishing["app"]["pid"] is None and finishing["app"]["last_exit_code"] == 3
        rt.signal(signal.SIGTERM)  # a stop during the finish hooks leaves the phase alone
        rel["finish"].touch()
        assert rt.wait() == 3
    assert (state_of(st) or {})["phase"] == "finishing"
    assert sorted(p.name for p in st.parent.iterdir()) == ["state.json"]  # no temp files left


def test_state_file_running_pid_is_the_app(tmp_path: Path) -> None:
    st = tmp_path / "state.json"
    with Runtime(["--state-file", str(st), "--", "sleep", "1000"]) as rt:
        doc = wait_phase(st, "running")
        assert doc["runtime_pid"] == 1 and doc["app"]["pid"] == 2  # PID 1 forks the app first
        assert alive(rt.pid)
        before = st.stat().st_mtime_ns
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert st.stat().st_mtime_ns >= before


def test_no_state_file_when_its_directory_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = run_ns(["-v", "--state-file", str(blocker / "state.json"), "--", "true"])
    assert done.returncode == 0
    assert b"no state file" in done.stderr
    done = run_ns(["--state-file", str(blocker / "state.json"), "--", "true"])
    assert done.returncode == 0 and done.stderr == b""
    done = run_ns(["--state-file", "", "--", "true"])
    assert done.returncode == 0


@pytest.mark.parametrize(("first", "second"), [(signal.SIGTERM, signal.SIGINT),
                                               (signal.SIGINT, signal.SIGQUIT),
                                               (signal.SIGQUIT, signal.SIGTERM)])
def test_every_stop_signal_is_held_and_any_second_one_forwards(tmp_path: Path, first: int,
                                                               second: int) -> None:
    out, st = tmp_path / "out", tmp_path / "state.json"
    args = ["--stop-delay", "300", "--state-file", str(st), "--",
            *prog("print_signals.py"), "--stamp", "--exit-on", str(int(second))]
    with out.open("wb") as f, Runtime(args, stdout=f) as rt:
        wait_phase(st, "running")
        app_ready(out)
        rt.signal(first)
        wait_phase(st, "stopping")
        rt.signal(second)
        assert rt.wait(timeout=30) == 0
    assert not stamps(out, first) and len(stamps(out, second)) == 1


def test_no_delay_for_a_start_up_step_or_a_restart_backoff(tmp_path: Path) -> None:
    st = tmp_path / "state.json"
    args = ["--stop-delay", "300", "--state-file", str(st), "--wait", f"file://{tmp_path}/never",
            "--wait-timeout", "300", "--", "true"]
    with Runtime(args) as rt:
        wait_phase(st, "waiting")
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=30) == 143
    args = ["--stop-delay", "300", "--state-file", str(st), "--restart", "always", "--restart-delay", "300",
            "--", "/bin/sh", "-c", "exit 9"]
    with Runtime(args) as rt:
        wait_phase(st, "restarting")
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=30) == 9


def test_the_0_2_features_import_nothing_heavy_into_pid_1(tmp_path: Path) -> None:
    """--stop-delay, --state-file and --log-file live in PID 1: no json/re (the state file), no
    signal/enum, no hooks module (the finish hooks' sorter loads in their fork only)."""
    env = base_env(ENTRYPOINT_TEMPLATES_DIR="/nonexistent", ENTRYPOINT_HOOKS_DIR="/nonexistent")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-X", "importtime", "-m",
            "entrypoint", "run", "--stop-delay", "1", "--state-file", str(tmp_path / "state.json"),
            "--finish-dir", str(tmp_path / "no-finish"), "--log-file", str(tmp_path / "app.log"),
            "--", "/bin/sh", "-c", f"echo hi >> {tmp_path / 'app.log'}"]
    done = subprocess.run(argv, capture_output=True, env=env, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hi\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert {"entrypoint.supervise.parts.state", "entrypoint.supervise.parts.logfollow"} <= imported
    heavy = {"json", "re", "enum", "signal", "subprocess", "argparse", "dataclasses", "pydantic", "jinja2",
             "entrypoint.supervise.steps.hooks", "entrypoint.supervise.steps.waits"}
    assert heavy & imported == set()
