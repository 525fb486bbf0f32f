"""Real s6 as the oracle of the service directories' overlapping meanings.

The SAME service directory is run twice: under ``entrypoint run --services-dir``
(PID 1 of a fresh PID namespace, tests/pid1_helpers.py) and under Debian's
``s6-supervise`` (2.11).  What is compared:

- what ``finish`` receives, its first two arguments, for a ``run`` that exits 0,
  exits 3, is killed by SIGTERM, is killed by SIGKILL (s6: the exit code or 256,
  the signal number or 0; s6 2.11 adds a third, the service directory, which is
  not part of our contract);
- when a ``notification-fd`` service counts as ready: s6-svstat's ready flag
  against the state PID 1 publishes (``services[].state == "ready"``, polled from
  the state file, then confirmed by ``status --format json`` inside the namespace)
  and the start of a dependant, for a service that writes its newline late, one that
  writes it in pieces, one that closes the fd without a newline.

The scripts block on a FIFO (``$GATE``) between their steps: the test's
non-blocking open of the FIFO succeeds only once the script waits on it, so
every observation is taken at a known point of the script, without sleeps.
Outputs go where ``$OUT`` says, so one directory serves both runners.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.pid1_helpers import Runtime, base_env, descendants, needs_ns, wait_until

S6_SUPERVISE = shutil.which("s6-supervise")
pytestmark = [
    needs_ns,
    pytest.mark.timeout(120),
    pytest.mark.skipif(S6_SUPERVISE is None, reason="s6 not installed (apt-get install s6)"),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)"),
]

SLEEP = ["sleep", "3601"]  # the services' long-running process, told apart from anything else by its argument
FINISH = '#!/bin/sh\nprintf "%s %s\\n" "$1" "$2" >> "$OUT/finish"\n'


def write_script(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(0o755)


def service(root: Path, name: str, run: str, **files: str) -> Path:
    """A service directory: ``run`` (a shell body), ``finish`` and any other file given."""
    directory = root / name
    directory.mkdir(parents=True)
    write_script(directory / "run", "#!/bin/sh\n" + run)
    for filename, text in files.items():
        target = directory / filename.replace("_", "-")
        if filename == "finish":
            write_script(target, text)
        else:
            target.write_text(text)
    return directory


def sleepers(root_pid: int) -> list[int]:
    """The services' ``sleep 3601`` processes below ``root_pid``."""
    found = []
    for pid in descendants(root_pid):
        try:
            if psutil.Process(pid).cmdline() == SLEEP:
                found.append(pid)
        except psutil.NoSuchProcess:
            pass
    return found


def finish_lines(out: Path) -> list[str]:
    try:
        return (out / "finish").read_text().splitlines()
    except FileNotFoundError:
        return []


# --- the two runners --------------------------------------------------------------------------


class S6:
    """``s6-supervise DIR`` as a plain child: its service state comes from ``s6-svstat``."""

    def __init__(self, directory: Path, out: Path, gate: Path) -> None:
        self.directory = directory
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OUT": str(out), "GATE": str(gate),
               "GATE2": str(second_gate(gate))}
        assert S6_SUPERVISE is not None
        self.proc = subprocess.Popen([S6_SUPERVISE, str(directory)], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def svstat(self) -> dict[str, str]:
        fields = ["up", "ready", "pid"]
        done = subprocess.run(["s6-svstat", "-o", ",".join(fields), str(self.directory)],
                              capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        if done.returncode != 0:  # not up yet: s6-supervise has not created supervise/ so far
            return {}
        return dict(zip(fields, done.stdout.split(), strict=True))

    def ready(self) -> bool:
        return self.svstat().get("ready") == "true"

    def close(self) -> None:
        if self.proc.poll() is None:
            subprocess.run(["s6-svc", "-dx", str(self.directory)], timeout=10, check=False,
                           stdin=subprocess.DEVNULL, capture_output=True)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                for pid in [*descendants(self.proc.pid), self.proc.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


class Entrypoint:
    """``entrypoint run --services-dir DIR`` (no COMMAND) as PID 1; service state from ``status``."""

    def __init__(self, services: Path, out: Path, gate: Path, state: Path) -> None:
        self.state = state
        self.stderr = state.with_name("run.stderr")
        with self.stderr.open("wb") as stderr:  # the services' prefixed output and run's own lines
            self.rt = Runtime(["--state-file", str(state), "--services-dir", str(services)],
                              env=base_env(OUT=str(out), GATE=str(gate), GATE2=str(second_gate(gate))),
                              stdout=stderr, stderr=stderr)

    @property
    def pid(self) -> int:
        return self.rt.pid

    def published(self) -> dict[str, dict[str, Any]]:
        """The services PID 1 publishes in its state file, by name ({} before the first write)."""
        try:
            doc = json.loads(self.state.read_text())
        except (OSError, ValueError):
            return {}
        return {row["name"]: row for row in doc.get("services") or []}

    def status(self) -> dict[str, dict[str, Any]]:
        """``docker exec CTR entrypoint status --format json``'s services, by name."""
        done = subprocess.run(["nsenter", "-t", str(self.rt.pid), "-p", "-m", sys.executable, "-m",
                               "entrypoint", "status", "--format", "json"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                              env=base_env(ENTRYPOINT_STATE_FILE=str(self.state)))
        doc = json.loads(done.stdout)
        assert "services" in doc, f"status --format json lists no services: {sorted(doc)}"
        return {row["name"]: row for row in doc["services"]}

    def state_of(self, name: str) -> str | None:
        row = self.published().get(name)
        return None if row is None else str(row["state"])

    def close(self) -> int | None:
        """SIGTERM, as `docker stop` would: with no COMMAND, `run` exits 0 after a stop signal."""
        code = None
        if self.rt.proc.poll() is None and self.rt._pid is not None:
            try:
                self.rt.signal(signal.SIGTERM)
            except ProcessLookupError:  # PID 1 has just ended on its own; unshare follows
                pass
            code = self.rt.wait(30)
        self.rt.__exit__()
        # shown by pytest when the test fails: what run and the services said
        print(f"--- entrypoint run's output:\n{self.stderr.read_text(errors='replace')}")
        return code


@contextmanager
def s6(directory: Path, out: Path, gate: Path) -> Iterator[S6]:
    runner = S6(directory, out, gate)
    try:
        yield runner
    finally:
        runner.close()


@contextmanager
def entrypoint(services: Path, out: Path, gate: Path, state: Path) -> Iterator[Entrypoint]:
    runner = Entrypoint(services, out, gate, state)
    try:
        yield runner
    finally:
        code = runner.close()
    assert code in (None, 0), f"entrypoint run exited {code} after SIGTERM with no COMMAND"


# --- (a) what finish receives -----------------------------------------------------------------

FINISH_CASES: dict[str, tuple[str, int | None, str]] = {
    # case: (run's body, the signal the test kills it with or None, what s6 passes finish)
    "exit 0": ("exit 0\n", None, "0 0"),
    "exit 3": ("exit 3\n", None, "3 0"),
    "SIGTERM": (f"exec {' '.join(SLEEP)}\n", signal.SIGTERM, "256 15"),
    "SIGKILL": (f"exec {' '.join(SLEEP)}\n", signal.SIGKILL, "256 9"),
}


def first_finish(out: Path, supervisor_pid: int, kill_with: int | None) -> str:
    """Kill the service (if the case says so), then the first line its ``finish`` wrote."""
    if kill_with is not None:
        pids = wait_until(lambda: sleepers(supervisor_pid), 10, "the service to run")
        os.kill(pids[0], kill_with)
    lines = wait_until(lambda: finish_lines(out), 10, "finish to run")
    return str(lines[0])


@pytest.mark.parametrize("case", list(FINISH_CASES))
def test_finish_arguments_match_s6(tmp_path: Path, case: str) -> None:
    body, kill_with, expected = FINISH_CASES[case]
    services = tmp_path / "services"
    # `restart` is ours (s6-supervise ignores the file): one end, one finish, no restart loop
    probe = service(services, "probe", body, finish=FINISH, restart="no\n")
    gate = tmp_path / "gate"  # unused here; both runners get the same environment shape
    ours_out, s6_out = tmp_path / "ours", tmp_path / "s6"
    ours_out.mkdir()
    s6_out.mkdir()

    with entrypoint(services, ours_out, gate, tmp_path / "state.json") as ep:
        ours = first_finish(ours_out, ep.pid, kill_with)
    with s6(probe, s6_out, gate) as sup:
        theirs = first_finish(s6_out, sup.pid, kill_with)

    assert theirs == expected, f"s6 itself passed finish {theirs!r}"
    assert ours == theirs, f"finish got {ours!r} under entrypoint, {theirs!r} under s6-supervise"


# --- (b) when a notification-fd service counts as ready -----------------------------------------


def second_gate(gate: Path) -> Path:
    """The script's second FIFO: reopening the first could meet the first read's open still there."""
    return gate.with_name(gate.name + "2")


def open_gate(gate: Path, timeout: float = 10) -> int:
    """The FIFO's write end, once the script is blocked reading it (ENXIO while nobody reads)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"the service never reached its gate {gate.name}")
        time.sleep(0.01)


def release(fd: int) -> None:
    os.write(fd, b"go\n")
    os.close(fd)


def notify_pipe(service_pid: int) -> str:
    """``pipe:[INODE]`` of the service's notification fd (3)."""
    return os.readlink(f"/proc/{service_pid}/fd/3")


def unread_bytes(service_pid: int) -> int:
    """Bytes the service wrote to fd 3 that its supervisor has not read yet (FIONREAD on the pipe,
    opened through /proc: a new read end of the same pipe, nothing is consumed)."""
    fd = os.open(f"/proc/{service_pid}/fd/3", os.O_RDONLY | os.O_NONBLOCK)
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    finally:
        os.close(fd)
    count: int = struct.unpack("i", raw)[0]
    return count


def holders(pipe: str, root_pid: int) -> list[int]:
    """Processes of the supervisor's tree that still hold ``pipe`` open."""
    found = []
    for pid in [root_pid, *descendants(root_pid)]:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if pipe in links:
            found.append(pid)
    return found


def service_pid(root_pid: int) -> int:
    """The notify service's process: the one holding fd 3 on a pipe below the supervisor."""

    def find() -> int | None:
        for pid in descendants(root_pid):
            try:
                if os.readlink(f"/proc/{pid}/fd/3").startswith("pipe:") and \
                        psutil.Process(pid).cmdline()[:1] == ["/bin/sh"]:
                    return pid
            except (OSError, psutil.NoSuchProcess):
                continue
        return None

    found: int = wait_until(find, 10, "the notify service to start")
    return found


READY_CASES: dict[str, str] = {
    # the newline comes only after the gate
    "late newline": 'read go < "$GATE"\necho >&3\nexec sleep 3601\n',
    # "rea" before the gate, "dy\n" after it
    "in pieces": 'printf rea >&3\nread go < "$GATE"\nprintf "dy\\n" >&3\nexec sleep 3601\n',
    # something but no newline, then the fd closed: never ready
    "closed without newline":
        'printf rea >&3\nread go < "$GATE"\nexec 3>&-\nread go < "$GATE2"\nexec sleep 3601\n',
}
EXPECTED_READY = {"late newline": [False, True], "in pieces": [False, True],
                  "closed without newline": [False, False]}


def observe(case: str, supervisor_pid: int, gate: Path, ready: Callable[[], bool],
            eventually: Callable[[], bool]) -> list[bool]:
    """[ready before the newline could have come, ready at the end] for one runner.

    The first observation is taken once the supervisor has read every byte the service wrote so
    far (or, for the closed fd, once it has seen the end of the pipe), so a supervisor that took a
    piece or an EOF for readiness has had the chance to show it.
    """
    pid = service_pid(supervisor_pid)
    pipe = notify_pipe(pid)
    first = open_gate(gate)
    wait_until(lambda: unread_bytes(pid) == 0, 10, "the supervisor to read the service's first bytes")
    if case == "closed without newline":
        release(first)
        second = open_gate(second_gate(gate))  # the service has closed fd 3 and waits again
        wait_until(lambda: not holders(pipe, supervisor_pid), 10, "the supervisor to close its end")
        before = ready()
        release(second)
        wait_until(lambda: sleepers(supervisor_pid), 10, "the service to go on")
        return [before, ready()]
    before = ready()
    release(first)
    return [before, eventually()]


def poll_true(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("case", list(READY_CASES))
def test_notification_fd_readiness_matches_s6(tmp_path: Path, case: str) -> None:
    services = tmp_path / "services"
    notify = service(services, "notify", READY_CASES[case], notification_fd="3\n")
    # the dependant: ours starts it only once `notify` is ready (s6-supervise knows no dependencies)
    started = tmp_path / "after-started"
    service(services, "after", f"touch {started}\nexec sleep 3601\n", dependencies="notify\n")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    os.mkfifo(second_gate(gate))
    out = tmp_path / "out"
    out.mkdir()

    with entrypoint(services, out, gate, tmp_path / "state.json") as ep:
        def ours_ready() -> bool:
            state = ep.state_of("notify")
            assert state in (None, "starting", "ready"), f"notify is {state!r}"
            return state == "ready"

        ours = observe(case, ep.pid, gate, lambda: ours_ready() or started.exists(),
                       lambda: poll_true(ours_ready))
        if ours[1]:
            wait_until(started.exists, 10, "the dependant to start once notify is ready")
            wait_until(lambda: ep.state_of("after") == "ready", 10, "the dependant to be ready")
        else:
            assert not started.exists(), "the dependant started though notify never became ready"
        # what `docker exec CTR entrypoint status` shows is what PID 1 published
        assert ep.status()["notify"]["state"] == ("ready" if ours[1] else "starting")

    with s6(notify, out, gate) as sup:
        wait_until(lambda: sup.svstat().get("up") == "true", 10, "s6 to start the service")
        theirs = observe(case, sup.pid, gate, sup.ready, lambda: poll_true(sup.ready))

    assert theirs == EXPECTED_READY[case], f"s6 itself: {theirs}"
    assert ours == theirs, f"ready [before, after] under entrypoint {ours}, under s6-supervise {theirs}"
