"""`entrypoint run` as PID 1 of a fresh PID namespace, signalled from outside."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import (
    Runtime,
    alive,
    base_env,
    children_of,
    needs_ns,
    prog,
    read_lines,
    run_ns,
    vm_rss_kib,
    wait_until,
)

pytestmark = [needs_ns, pytest.mark.timeout(60)]

SH = "/bin/sh"


def started_output(path: Path, line: str = "ready") -> None:
    wait_until(lambda: line in read_lines(path), 15, f"{line!r} in {path.name}")


# -- exit codes ------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 2, 3, 42, 64, 100, 125, 126, 127, 128, 129, 143, 200, 254, 255])
def test_exit_code_passes_through(code: int) -> None:
    done = run_ns(["--", SH, "-c", f"exit {code}"])
    assert done.returncode == code, done.stderr


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT, signal.SIGKILL, signal.SIGUSR1,
                                    signal.SIGALRM, signal.SIGTERM, signal.SIGRTMIN + 3])
def test_death_by_signal_is_128_plus_n(signum: int) -> None:
    code = f"import os; os.kill(os.getpid(), {int(signum)})"
    done = run_ns(["--", sys.executable, "-c", code])
    assert done.returncode == 128 + signum, done.stderr


def test_remap_exit() -> None:
    assert run_ns(["--remap-exit", "3", "--remap-exit=143", "--", SH, "-c", "exit 3"]).returncode == 0
    assert run_ns(["--remap-exit", "3", "--", SH, "-c", "exit 4"]).returncode == 4
    env = base_env(ENTRYPOINT_REMAP_EXIT="7 143")
    assert run_ns(["--", SH, "-c", "kill -TERM $$"], env=env).returncode == 0


def test_command_not_found_is_127_and_named() -> None:
    done = run_ns(["--", "/no/such/program", "x"])
    assert done.returncode == 127
    assert b"[entrypoint] error: cannot execute '/no/such/program'" in done.stderr
    done = run_ns(["no-such-program-in-path"])
    assert done.returncode == 127
    assert b"'no-such-program-in-path'" in done.stderr


def test_not_executable_is_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    done = run_ns(["--", str(script)])
    assert done.returncode == 126
    assert f"cannot execute '{script}'".encode() in done.stderr
    assert run_ns(["--", str(tmp_path)]).returncode == 126


# -- the child's start -----------------------------------------------------------

def test_child_has_a_clean_signal_mask() -> None:
    done = run_ns(["--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().split("\n")
    assert "SigBlk:\t0000000000000000" in lines
    assert "SigIgn:\t0000000000000000" in lines


def test_argv_env_cwd_stdio_pass_through(tmp_path: Path) -> None:
    argv = ["a b", "", "*", "x\ny", "--", "-v", "ünï"]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parent.parent),
           "WEIRD": "a=b c\nd", "EMPTY": "", "ENTRYPOINT_GRACE_PERIOD": "3",
           "ENTRYPOINT_STATE_FILE": ""}  # passed through like any variable; here: no host state file
    stdin = tmp_path / "in.txt"
    stdin.write_bytes(b"line one\nline two\n")
    with stdin.open("rb") as f:
        done = run_ns(["--", *prog("echo_all.py"), *argv], env=env, cwd=tmp_path, stdin=f)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["argv"][2:] == argv
    assert sorted(report["environ"]) == sorted(f"{k}={v}" for k, v in env.items())
    assert report["cwd"] == str(tmp_path)
    assert report["stdin"] == "line one\nline two\n"
    assert report["pgid_is_pid"] is True
    assert done.stderr == b"to-stderr\n"


# -- signals -----------------------------------------------------------------------

FORWARDED = [s for s in range(1, 32) if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD,
                                                   signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)]
FORWARDED += [signal.SIGRTMIN, signal.SIGRTMIN + 6, signal.SIGRTMAX]


def test_every_catchable_signal_is_forwarded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("wb") as f, Runtime(["--grace-period", "30", "--", *prog("print_signals.py"),
                                       "--exit-on", str(int(signal.SIGQUIT))], stdout=f) as rt:
        started_output(out)
        # The stop signals last: each one is forwarded too, and QUIT ends the helper.
        for signum in [*FORWARDED, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]:
            rt.signal(signum)
            started_output(out, str(int(signum)))
        assert rt.wait() == 0
    assert read_lines(out)[1:] == [str(int(s)) for s in [*FORWARDED, 2, 15, 3]]


def test_term_from_outside_gives_143() -> None:
    with Runtime(["--", "sleep", "1000"]) as rt:
        wait_until(lambda: children_of(rt.pid), 10, "the child to start")
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143


def test_rewrite_and_drop(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--rewrite-signal", "USR1:USR2", "--rewrite-signal=HUP:0", "--rewrite-signal", "TERM:QUIT",
            "--", *prog("print_signals.py"), "--exit-on", str(int(signal.SIGQUIT))]
    with out.open("wb") as f, Runtime(args, stdout=f) as rt:
        started_output(out)
        rt.signal(signal.SIGHUP)  # dropped
        rt.signal(signal.SIGUSR1)
        started_output(out, str(int(signal.SIGUSR2)))
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
    assert read_lines(out) == ["ready", str(int(signal.SIGUSR2)), str(int(signal.SIGQUIT))]


def test_group_forwarding(tmp_path: Path) -> None:
    """The helper ignores USR1, its child does not: only --signal-group reaches the child."""
    out = tmp_path / "out"
    with out.open("wb") as f, Runtime(["--signal-group", "--", *prog("tree.py"), "group"], stdout=f) as rt:
        started_output(out)
        rt.signal(signal.SIGUSR1)
        assert rt.wait() == 0
    assert read_lines(out) == ["ready", f"child -{int(signal.SIGUSR1)}"]

    out2 = tmp_path / "out2"
    with out2.open("wb") as f, Runtime(["--", *prog("tree.py"), "group"], stdout=f) as rt:
        started_output(out2)
        rt.signal(signal.SIGUSR1)
        # Not delivered to the group: nothing happens; TERM then ends the helper, the
        # leftover sleep is terminated by the runtime.
        time.sleep(0.3)
        assert rt.proc.poll() is None
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert read_lines(out2) == ["ready"]


def test_signal_storm_does_not_wedge(tmp_path: Path) -> None:
    out = tmp_path / "out"
    kinds = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGWINCH, signal.SIGRTMIN + 1]
    with out.open("wb") as f, Runtime(["--", *prog("print_signals.py"), "--exit-on",
                                       str(int(signal.SIGTERM))], stdout=f) as rt:
        started_output(out)
        for i in range(2000):
            rt.signal(kinds[i % len(kinds)])
        # Real-time signals queue, so every one of the 400 must come through (standard
        # ones may coalesce).  The kernel hands out lower numbers first, so wait for
        # them before sending anything else.
        rtsig = str(int(signal.SIGRTMIN + 1))
        wait_until(lambda: read_lines(out).count(rtsig) == 400, 20, "400 real-time signals forwarded")
        rt.signal(signal.SIGALRM)
        started_output(out, str(int(signal.SIGALRM)))
        assert alive(rt.pid)
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 0
    assert read_lines(out)[-1] == str(int(signal.SIGTERM))


# -- reaping and stopping ----------------------------------------------------------------

def test_500_orphans_are_reaped() -> None:
    done = run_ns(["--", *prog("orphans.py"), "500"], timeout=40)
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"clean after 500 orphans" in done.stdout


def test_grace_escalation_kills_a_term_ignoring_tree(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    with Runtime(["--grace-period", "1", "--", *prog("tree.py"), "stubborn", str(pids)]) as rt:
        started_output(pids)
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 128 + signal.SIGKILL
        assert time.monotonic() - begin < 1 + 2


def test_leftovers_are_terminated_when_the_main_child_exits(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    begin = time.monotonic()
    done = run_ns(["--grace-period", "30", "--", *prog("tree.py"), "leftover", str(pids)])
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - begin < 10  # the sleep got TERM: no wait for the 30 s grace


def test_rss_while_supervising_is_bounded() -> None:
    with Runtime(["--", "sleep", "1000"]) as rt:
        wait_until(lambda: children_of(rt.pid), 10, "the child to start")
        rss = vm_rss_kib(rt.pid)
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
    assert rss < 12 * 1024, f"VmRSS {rss} KiB"


# -- restart ---------------------------------------------------------------------------

def restart_runs(tmp_path: Path, policy: str, code: int, *extra: str) -> tuple[int, int]:
    counter = tmp_path / f"runs-{policy}-{code}"
    done = run_ns(["--restart", policy, "--restart-delay", "0.01", "--restart-delay-max", "0.05", *extra,
                   "--", *prog("restart_counter.py"), str(counter), str(code)], timeout=30)
    return done.returncode, len(read_lines(counter))


def test_restart_policies_and_give_up(tmp_path: Path) -> None:
    assert restart_runs(tmp_path, "no", 3) == (3, 1)
    assert restart_runs(tmp_path, "on-failure", 0) == (0, 1)
    assert restart_runs(tmp_path, "on-failure", 3, "--restart-max", "3") == (3, 4)
    assert restart_runs(tmp_path, "always", 0, "--restart-max", "2") == (0, 3)
    # A remapped code counts as success.
    assert restart_runs(tmp_path, "on-failure", 5, "--remap-exit", "5") == (0, 1)


def test_stop_during_backoff_ends_at_once(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    args = ["--restart", "always", "--restart-delay", "600", "--",
            *prog("restart_counter.py"), str(counter), "9"]
    with Runtime(args) as rt:
        wait_until(lambda: read_lines(counter) and not children_of(rt.pid), 10, "the first run to end")
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=10) == 9
    assert len(read_lines(counter)) == 1


# -- start-up steps --------------------------------------------------------------------

def test_templates_are_rendered_before_the_start(tmp_path: Path) -> None:
    src = tmp_path / "app.conf.tmpl"
    dest = tmp_path / "app.conf"
    src.write_text("port = ${PORT0}\n")
    env = base_env(PORT0="31000")
    done = run_ns(["--template", f"{src}:{dest}", "--", "cat", str(dest)], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"port = 31000\n"


def test_template_error_exits_78_and_starts_nothing(tmp_path: Path) -> None:
    src = tmp_path / "bad.j2"
    src.write_text("{{ unclosed\n")
    marker = tmp_path / "started"
    done = run_ns(["--template", f"{src}:{tmp_path / 'out'}", "--", "touch", str(marker)])
    assert done.returncode == 78, done.stderr
    assert not marker.exists()


def test_a_killed_render_is_exit_78_with_a_clear_message_and_no_file_changed(tmp_path: Path) -> None:
    """SIGKILL of the render fork (what the OOM killer does), here from its own --check-cmd."""
    src, dest, marker = tmp_path / "app.conf.tmpl", tmp_path / "app.conf", tmp_path / "started"
    src.write_text("port = ${PORT0}\n")
    dest.write_text("old\n")
    done = run_ns(["--template", f"{src}:{dest}", "--check-cmd", "kill -9 $PPID", "--", "touch", str(marker)],
                  env=base_env(PORT0="31000"))
    assert done.returncode == 78, done.stderr
    assert b"rendering the templates was killed by SIGKILL (out of memory?" in done.stderr
    assert b"Traceback" not in done.stderr
    assert dest.read_text() == "old\n" and not marker.exists()


def test_no_templates_means_no_render_child(tmp_path: Path) -> None:
    env = base_env(ENTRYPOINT_TEMPLATES_DIR=str(tmp_path / "missing"),
                   ENTRYPOINT_HOOKS_DIR=str(tmp_path / "no"))
    done = run_ns(["-v", "--", "true"], env=env)
    assert done.returncode == 0
    assert b"rendering" not in done.stderr


def test_hooks_run_before_the_start_and_export_env(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    envsh = hooks / "10-env.envsh"
    envsh.write_text("export FROM_HOOK=yes\n")
    envsh.chmod(0o755)
    failing = hooks / "20-fail.sh"
    done = run_ns(["--hooks-dir", str(hooks), "--", SH, "-c", 'echo "$FROM_HOOK"'])
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"yes\n"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    done = run_ns(["--hooks-dir", str(hooks), "--", "echo", "started"])
    assert done.returncode == 78
    assert b"started" not in done.stdout


def test_wait_timeout_exits_69_and_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    done = run_ns(["--wait", f"file://{tmp_path}/never", "--wait-timeout", "0.3", "--",
                   "touch", str(marker)])
    assert done.returncode == 69, done.stderr
    assert b"never" in done.stderr
    assert not marker.exists()


def test_stop_during_a_start_up_step_ends_it(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    args = ["--signal-group", "--grace-period", "30", "--wait", f"file://{tmp_path}/never",
            "--wait-timeout", "300", "--", "touch", str(marker)]
    with Runtime(args) as rt:
        wait_until(lambda: children_of(rt.pid), 10, "the wait step to start")
        begin = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait() == 143
        assert time.monotonic() - begin < 10
    assert not marker.exists()
