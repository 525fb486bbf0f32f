"""`run --termination-log PATH`: why a start failed, where Kubernetes looks.

As PID 1 of a real PID namespace.  Each failure class (78 from PID 1, from
the exec'd render child, from a forked step; 69; 126/127) must leave its
error lines there, at most 4096 bytes; success, and the app's own exit
codes, leave the file alone.  The default path is tested in a private
``/dev`` (a tmpfs mounted in the runtime's own mount namespace).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.mounts import small_tmpfs
from tests.pid1_helpers import Runtime, base_env, entrypoint_cmd, needs_ns, run_ns, wait_until

pytestmark = [needs_ns, pytest.mark.timeout(60)]


def _fail(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    """Run; return (code, error lines on stderr without the prefix, the termination log)."""
    log = tmp_path / "termination-log"
    done = run_ns(["--termination-log", str(log), "--hooks-dir", str(tmp_path / "no-hooks"), *args],
                  env=env or base_env())
    errors = [line.removeprefix("[entrypoint] error: ") for line in done.stderr.decode().splitlines()
              if line.startswith("[entrypoint] error: ")]
    return done.returncode, errors, log.read_text() if log.exists() else "<absent>"


def test_unknown_user_from_pid1(tmp_path: Path) -> None:
    code, errors, kept = _fail(tmp_path, "--user", "nosuch-user", "--", "true")
    assert code == 78
    assert kept == "--user nosuch-user: no user 'nosuch-user' in /etc/passwd\n"
    assert kept.splitlines() == errors


def test_template_errors_from_the_render_child(tmp_path: Path) -> None:
    template = tmp_path / "app.conf.template"
    template.write_text("port=${PORT0:?set PORT0}\nhost=${HOST:?}\n")
    code, errors, kept = _fail(tmp_path, "--template", f"{template}:{tmp_path / 'app.conf'}", "--", "true")
    assert code == 78
    assert kept.splitlines() == errors == [f"{template}:1:6: PORT0: set PORT0",
                                           f"{template}:2:6: HOST: parameter null or not set"]


def test_argument_errors_from_the_expansion_fork(tmp_path: Path) -> None:
    code, _errors, kept = _fail(tmp_path, "--expand-args", "--", "/bin/echo", "--port", "$PORT0")
    assert code == 78
    assert kept == "argument 2 ('$PORT0'), column 1: PORT0: not set\n"


def test_failing_hook_from_the_hooks_fork(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-fail.sh").write_text("#!/bin/sh\nexit 3\n")
    (hooks / "10-fail.sh").chmod(0o755)
    code, errors, kept = _fail(tmp_path, "--hooks-dir", str(hooks), "--", "true")
    assert code == 78
    assert errors and kept.splitlines() == errors and "10-fail.sh" in kept


def test_wait_timeout_is_69(tmp_path: Path) -> None:
    code, errors, kept = _fail(tmp_path, "--wait", f"file://{tmp_path}/never", "--wait-timeout", "0.2",
                               "--", "true")
    assert code == 69
    assert errors and kept.splitlines() == errors and "never" in kept


@pytest.mark.parametrize(("command", "code"), [("/no/such/program", 127), ("/etc/passwd", 126)])
def test_exec_failures(tmp_path: Path, command: str, code: int) -> None:
    got, _errors, kept = _fail(tmp_path, "--", command)
    assert got == code
    assert kept.startswith(f"cannot execute {command!r}: ")


def test_at_most_4096_bytes_of_whole_lines(tmp_path: Path) -> None:
    template = tmp_path / "big.template"
    template.write_text("".join(f"v{i}=${{VARIABLE_NUMBER_{i}:?is needed by the app}}\n" for i in range(400)))
    code, errors, kept = _fail(tmp_path, "--template", f"{template}:{tmp_path / 'out'}", "--", "true")
    assert code == 78 and len(errors) == 400
    data = kept.encode()
    assert 4000 < len(data) <= 4096 and data.endswith(b"\n")
    assert kept.splitlines() == errors[: len(kept.splitlines())]  # the first lines: the first causes


@pytest.mark.parametrize("command", [["true"], ["sh", "-c", "exit 78"], ["sh", "-c", "exit 127"]])
def test_a_started_app_never_writes_it(tmp_path: Path, command: list[str]) -> None:
    """The app's own codes (78, 127 included) are the app's; the file stays absent."""
    _, errors, kept = _fail(tmp_path, "--", *command)
    assert kept == "<absent>" and errors == []


def test_what_the_app_writes_there_itself_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    done = run_ns(["--termination-log", str(log), "--", "sh", "-c", f'echo "app: disk full" > {log}; exit 1'],
                  env=base_env())
    assert done.returncode == 1
    assert log.read_text() == "app: disk full\n"


def test_a_stop_during_the_start_is_not_a_failed_start(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-slow.sh").write_text(f"#!/bin/sh\ntouch {tmp_path}/hook-started\nexec sleep 30\n")
    (hooks / "10-slow.sh").chmod(0o755)
    with Runtime(["--termination-log", str(log), "--hooks-dir", str(hooks), "--", "true"]) as rt:
        wait_until(lambda: (tmp_path / "hook-started").exists(), 15, "the hook")
        rt.signal(signal.SIGTERM)
        assert rt.wait(15) == 128 + signal.SIGTERM
    assert not log.exists()


# -- bad paths: one line, exit 78, nothing started ------------------------------------------

@pytest.mark.parametrize(("where", "message"), [
    ("missing-dir/log", "--termination-log {p}: directory '{d}/missing-dir' does not exist"),
    (".", "--termination-log {p}: is a directory"),
])
def test_unwritable_explicit_path_is_78_before_anything_starts(tmp_path: Path, where: str,
                                                               message: str) -> None:
    path = str(tmp_path / where) if where != "." else str(tmp_path)
    ran = tmp_path / "ran"
    done = run_ns(["--termination-log", path, "--", "touch", str(ran)], env=base_env())
    assert done.returncode == 78
    assert done.stderr.decode().splitlines() == ["[entrypoint] error: " + message.format(p=path, d=tmp_path)]
    assert not ran.exists()


def test_read_only_filesystem_is_78(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path, "64k") as mnt:
        (mnt / "termination-log").write_text("")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        ran = tmp_path / "ran"
        for path in (mnt / "termination-log", mnt / "new-log"):
            done = run_ns(["--termination-log", str(path), "--", "touch", str(ran)], env=base_env())
            assert done.returncode == 78
            line, = done.stderr.decode().splitlines()
            assert line.startswith(f"[entrypoint] error: --termination-log {path}: ") and "read-only" in line
        assert not ran.exists()


def test_a_fifo_nobody_reads_does_not_hang_the_exit(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = run_ns(["--termination-log", str(fifo), "--user", "nosuch-user", "--", "true"], env=base_env())
    assert done.returncode == 78
    assert done.stderr.decode().splitlines()[-1] == (
        f"[entrypoint] warning: --termination-log {fifo}: No such device or address")


def test_empty_means_off(tmp_path: Path) -> None:
    done = run_ns(["--user", "nosuch-user", "--", "true"], env=base_env(ENTRYPOINT_TERMINATION_LOG=""))
    assert done.returncode == 78


# -- the default: /dev/termination-log when it exists and is writable -------------------------

# A private /dev for the runtime: a tmpfs over /dev in its own mount namespace, with /dev/null
# bound back in.  The runtime is not exec'd (it is not PID 1 here) so the shell can print the log.
PRIVATE_DEV = """
set -e
mkdir -p "$OLD" && mount --rbind /dev "$OLD"
mount -t tmpfs tmpfs /dev && touch /dev/null && mount --bind "$OLD/null" /dev/null
[ "$MODE" = none ] || : > /dev/termination-log
[ "$MODE" = ro ] && mount -o remount,ro /dev
set +e
"$@"; echo "rc=$?"
cat /dev/termination-log 2>/dev/null || echo "<absent>"
"""


@pytest.mark.parametrize(("mode", "output"), [
    ("rw", ["rc=78", "--user nosuch-user: no user 'nosuch-user' in /etc/passwd"]),
    ("ro", ["rc=78"]),       # exists but not writable: not used, no complaint (nothing in the file)
    ("none", ["rc=78", "<absent>"]),
])
def test_default_path(tmp_path: Path, mode: str, output: list[str]) -> None:
    host_had_one = Path("/dev/termination-log").exists()
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", PRIVATE_DEV, "sh",
           *entrypoint_cmd("--user", "nosuch-user", "--", "true")]
    done = subprocess.run(cmd, capture_output=True, timeout=30,
                          env=base_env(OLD=str(tmp_path / "old-dev"), MODE=mode))
    assert done.stdout.decode().splitlines() == output, done.stderr
    lines = done.stderr.decode().splitlines()
    assert lines == ["[entrypoint] error: --user nosuch-user: no user 'nosuch-user' in /etc/passwd"]
    assert Path("/dev/termination-log").exists() == host_had_one  # the private /dev stayed private
