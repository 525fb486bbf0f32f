"""``run --watch`` end to end: real files, real render children, a real app counting its signals.

Each case runs twice when possible: against a small driver that mimics the
PID-1 loop (signals blocked, ``sigtimedwait`` on the watcher's signal with
its deadline) and against the real ``entrypoint run --watch`` once that
supports ``--watch`` (the ``run`` variants skip until then).  Both run as
PID 1 of a fresh PID namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from entrypoint.supervise.parts.watch import Watcher, watch_paths_from_env
from entrypoint.supervise.steps.results import write_records
from tests.pid1_helpers import children_of, ctx_switches, vm_rss_kib

REPO = Path(__file__).resolve().parent.parent
UNSHARE = shutil.which("unshare")
QUIET = 0.1

# The PID-1 loop in miniature: exactly what commands/run.py is meant to do with a Watcher.
DRIVER = r'''
import os, sys, time
sys.path.insert(0, os.environ["EP_REPO"])
import _signal
from entrypoint import log
from entrypoint.supervise.steps.results import write_records
from entrypoint.supervise.parts.watch import Watcher, watch_paths_from_env

def main(argv):
    reload_sig, quiet, max_wait, templates, check, app = "HUP", 0.2, 2.0, [], None, []
    while argv:
        opt = argv.pop(0)
        if opt == "--": app = argv; break
        elif opt == "-v": log.set_level(log.VERBOSE)
        elif opt == "--watch": pass
        elif opt == "--reload-signal": reload_sig = argv.pop(0)
        elif opt == "--watch-quiet": quiet = float(argv.pop(0))
        elif opt == "--watch-max-wait": max_wait = float(argv.pop(0))
        elif opt == "--template": templates.append(argv.pop(0))
        elif opt == "--check-cmd": check = argv.pop(0)
    everything = _signal.valid_signals()
    _signal.pthread_sigmask(_signal.SIG_BLOCK, everything)
    from entrypoint.options import parse_run_args
    from entrypoint.supervise.parts.spawn import finish_child
    from entrypoint.supervise.steps.forks import render_work
    opts_argv = [a for t in templates for a in ("--template", t)] + (["--check-cmd", check] if check else [])
    render = render_work(parse_run_args([*opts_argv, "--", "true"], dict(os.environ)), dict(os.environ))
    paths = watch_paths_from_env(os.environ, templates)
    deflt = [s for s in everything if s not in (9, 19)]
    first = os.fork()
    if first == 0:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, set())
        fd = os.memfd_create("first", os.MFD_CLOEXEC)
        finish_child("render", lambda: render(fd))
    _, status = os.waitpid(first, 0)
    if status != 0:
        return 78
    w = Watcher(paths, render=render, quiet_period=quiet, max_wait=max_wait)
    def spawn():
        return os.posix_spawn(app[0], app, os.environ, setsigmask=(), setsigdef=deflt)
    child = spawn()
    while True:
        due = w.deadline()
        if due is not None and time.monotonic() >= due:
            if w.rerender():
                if reload_sig == "restart":
                    os.kill(child, 15); os.waitpid(child, 0); child = spawn()
                else:
                    os.kill(child, getattr(_signal, "SIG" + reload_sig))
            continue
        if due is None:
            info = _signal.sigwaitinfo(everything)
        else:
            info = _signal.sigtimedwait(everything, max(0.0, due - time.monotonic()))
        if info is None:
            continue
        if info.si_signo == w.signum:
            w.drain()
        elif info.si_signo == _signal.SIGCHLD:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == child:
                    return os.waitstatus_to_exitcode(status) % 256
        else:
            os.kill(child, info.si_signo)

sys.exit(main(sys.argv[1:]))
'''

# The app: records its start (with the config it sees) and every HUP it receives.
APP = r'''
import os, signal, sys, time
log, conf = sys.argv[1], sys.argv[2]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def note(kind):
    with open(conf) as fh:
        text = fh.read().strip().replace("\n", "|")
    os.write(fd, f"{kind} {time.monotonic():.6f} {os.getpid()} {text}\n".encode())
signal.signal(signal.SIGHUP, lambda *_: note("HUP"))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
note("START")
while True:
    signal.pause()
'''


def run_supports_watch() -> bool:
    out = subprocess.run([sys.executable, "-m", "entrypoint", "run", "--help"], capture_output=True,
                         text=True, timeout=30, cwd=REPO)
    return "--watch-quiet" in out.stdout + out.stderr


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


class Rig:
    """One supervised app with --watch over templates in a temp dir, as PID 1 of a namespace."""

    def __init__(self, tmp: Path, runtime: str) -> None:
        self.tmp = tmp
        self.runtime = runtime
        self.log = tmp / "app.log"
        self.stderr_path = tmp / "pid1.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        (tmp / "app.py").write_text(APP)
        (tmp / "driver.py").write_text(DRIVER)
        self.env = {"PATH": "/usr/bin:/bin", "EP_REPO": str(REPO), "PORT": "8080",
                    "ENTRYPOINT_TEMPLATES_DIR": str(tmp / "no-templates-dir"),
                    "ENTRYPOINT_STATE_FILE": ""}  # not the host's /run/entrypoint

    def start(self, templates: list[str], conf: Path, *extra: str) -> None:
        if self.runtime == "driver":
            head = [sys.executable, str(self.tmp / "driver.py")]
        else:
            head = [sys.executable, "-m", "entrypoint", "run"]
        argv = [*head, "-v", "--watch", "--watch-quiet", str(QUIET), *extra]
        for template in templates:
            argv += ["--template", template]
        argv += ["--", sys.executable, str(self.tmp / "app.py"), str(self.log), str(conf)]
        assert UNSHARE is not None
        self.proc = subprocess.Popen([UNSHARE, "--pid", "--fork", "--mount-proc", *argv], env=self.env,
                                     stderr=self.stderr_path.open("wb"), cwd=REPO)
        wait_for(lambda: self.count("START") == 1, 15, "the app to start")

    def lines(self, kind: str) -> list[list[str]]:
        if not self.log.exists():
            return []
        rows = [line.split(" ", 3) for line in self.log.read_text().splitlines()]
        return [row for row in rows if row[0] == kind]

    def count(self, kind: str) -> int:
        return len(self.lines(kind))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stderr_count(self, text: str) -> int:
        return self.stderr().count(text)

    def pid1(self) -> int:
        """Host pid of the namespace's PID 1 (the child of unshare)."""
        assert self.proc is not None
        proc = self.proc
        wait_for(lambda: children_of(proc.pid), 5, "unshare's child")
        return children_of(proc.pid)[0]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.kill(self.pid1(), 15)
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, AssertionError, ProcessLookupError):
            self.proc.kill()
            self.proc.wait(timeout=10)


RUNTIMES = ["driver", pytest.param("run", marks=pytest.mark.skipif(
    not run_supports_watch(), reason="entrypoint run has no --watch yet"))]


@pytest.fixture(params=RUNTIMES)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if UNSHARE is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a PID namespace")
    r = Rig(tmp_path, request.param)
    yield r
    r.stop()


def simple(rig: Rig, text: str = "port=${PORT}\n", *extra: str) -> tuple[Path, Path]:
    src, dest = rig.tmp / "app.conf.template", rig.tmp / "app.conf"
    src.write_text(text)
    rig.start([f"{src}:{dest}"], dest, *extra)
    return src, dest


def renders_done(rig: Rig) -> int:
    """Finished re-renders, as logged by the watcher with -v or on failure."""
    return sum(rig.stderr_count(m) for m in ("configuration changed", "output unchanged", "re-render failed"))


def test_edit_gives_new_content_and_exactly_one_hup_within_a_second(rig: Rig) -> None:
    src, dest = simple(rig)
    assert dest.read_text() == "port=8080\n"
    written = time.monotonic()
    src.write_text("port=${PORT}\nname=new\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "one HUP")
    received = float(rig.lines("HUP")[0][1])
    assert received - written < 1.0
    assert rig.lines("HUP")[0][3] == "port=8080|name=new"  # the app saw the new file on HUP
    assert dest.read_text() == "port=8080\nname=new\n"
    time.sleep(QUIET * 5)  # an observation window for "no second HUP", not synchronisation
    assert rig.count("HUP") == 1


def test_burst_of_fifty_edits_is_one_reload(rig: Rig) -> None:
    src, dest = simple(rig)
    for i in range(50):
        src.write_text(f"port=${{PORT}}\nedit={i}\n")
    wait_for(lambda: rig.count("HUP") >= 1, 5, "the reload")
    assert dest.read_text() == "port=8080\nedit=49\n"
    time.sleep(QUIET * 5)
    assert rig.count("HUP") == 1


def test_broken_edit_keeps_old_files_and_app_then_a_fix_goes_through(rig: Rig) -> None:
    src, dest = simple(rig)
    src.write_text("port=${PORT}\nmissing=${NOPE:?must be set}\n")
    wait_for(lambda: rig.stderr_count("re-render failed") == 1, 5, "the failure to be logged")
    assert dest.read_text() == "port=8080\n"
    assert rig.count("HUP") == 0
    err = rig.stderr()
    assert f"{src}:2:" in err and "must be set" in err  # FILE:LINE:COL from the render child
    assert sum("error" in line for line in err.splitlines() if "re-render" in line) == 1
    src.write_text("port=${PORT}\nfixed=yes\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "the fixed edit's reload")
    assert dest.read_text() == "port=8080\nfixed=yes\n"
    assert rig.count("START") == 1


def test_identical_output_sends_no_signal(rig: Rig) -> None:
    src, dest = simple(rig)
    before = renders_done(rig)
    src.write_text("port=${PORT}\n")  # same bytes rewritten
    wait_for(lambda: renders_done(rig) > before, 5, "the re-render")
    assert rig.stderr_count("output unchanged") >= 1
    src.write_text("port=8080\n")  # different template, identical output
    wait_for(lambda: rig.stderr_count("output unchanged") >= 2, 5, "the second re-render")
    assert rig.count("HUP") == 0
    assert dest.read_text() == "port=8080\n"


def configmap_volume(root: Path, text: str) -> Path:
    """A kubelet AtomicWriter layout: ..<ts>/ dir, ..data -> ..<ts>, name -> ..data/name."""
    root.mkdir()
    (root / "..2026_a").mkdir()
    (root / "..2026_a" / "app.conf.template").write_text(text)
    (root / "..data").symlink_to("..2026_a")
    (root / "app.conf.template").symlink_to("..data/app.conf.template")
    return root / "app.conf.template"


def configmap_swap(root: Path, old: str, new: str, text: str) -> None:
    (root / new).mkdir()
    (root / new / "app.conf.template").write_text(text)
    (root / "..data_tmp").symlink_to(new)
    os.rename(root / "..data_tmp", root / "..data")  # the atomic swap
    shutil.rmtree(root / old)


def test_configmap_symlink_swap_is_seen_twice(rig: Rig) -> None:
    cm = rig.tmp / "cm"
    src = configmap_volume(cm, "v=1\n")
    dest = rig.tmp / "app.conf"
    rig.start([f"{src}:{dest}"], dest)
    assert dest.read_text() == "v=1\n"
    configmap_swap(cm, "..2026_a", "..2026_b", "v=2\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "the reload after the first swap")
    assert dest.read_text() == "v=2\n"
    configmap_swap(cm, "..2026_b", "..2026_c", "v=3\n")  # watches were re-added after the swap
    wait_for(lambda: rig.count("HUP") == 2, 5, "the reload after the second swap")
    assert dest.read_text() == "v=3\n"


def test_configmap_templates_directory_swap_is_seen(rig: Rig) -> None:
    cm = rig.tmp / "cm"
    configmap_volume(cm, "v=1\n")
    out = rig.tmp / "out"
    out.mkdir()
    rig.env["ENTRYPOINT_TEMPLATES_DIR"] = str(cm)
    rig.env["ENTRYPOINT_OUTPUT_DIR"] = str(out)
    rig.start([], out / "app.conf")
    configmap_swap(cm, "..2026_a", "..2026_b", "v=2\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "the reload")
    assert (out / "app.conf").read_text() == "v=2\n"


def test_restart_mode_restarts_the_app_with_the_new_config(rig: Rig) -> None:
    src, dest = simple(rig, "port=${PORT}\n", "--reload-signal", "restart")
    first_pid = rig.lines("START")[0][2]
    src.write_text("port=${PORT}\nmode=restarted\n")
    wait_for(lambda: rig.count("START") == 2, 10, "the restarted app")
    second = rig.lines("START")[1]
    assert second[2] != first_pid
    assert second[3] == "port=8080|mode=restarted"
    assert dest.read_text() == "port=8080\nmode=restarted\n"
    assert rig.count("HUP") == 0


def test_check_cmd_failure_keeps_old_files(rig: Rig) -> None:
    src, dest = simple(rig, "port=${PORT}\n", "--check-cmd", "! grep -q forbidden $ENTRYPOINT_STAGED")
    src.write_text("port=${PORT}\nforbidden\n")
    wait_for(lambda: rig.stderr_count("re-render failed") == 1, 5, "the check to fail")
    assert dest.read_text() == "port=8080\n"
    src.write_text("port=${PORT}\nallowed\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "the good edit's reload")
    assert dest.read_text() == "port=8080\nallowed\n"


def test_idle_pid1_does_not_wake_up(rig: Rig) -> None:
    simple(rig)
    pid = rig.pid1()

    def switches() -> int:
        return ctx_switches(pid)

    before = switches()
    time.sleep(2.0)  # the idle window being measured
    woke = switches() - before
    print(f"context switches of idle PID 1 over 2 s ({rig.runtime}): {woke}")
    assert woke <= 2


def test_rss_with_watch_stays_within_16_mib(rig: Rig) -> None:
    src, _ = simple(rig)
    src.write_text("port=${PORT}\nafter=render\n")  # the budget holds after a re-render too
    wait_for(lambda: rig.count("HUP") == 1, 5, "the reload")
    rss_kib = vm_rss_kib(rig.pid1())
    print(f"VmRSS of PID 1 with --watch ({rig.runtime}): {rss_kib} KiB")
    assert rss_kib <= 16 * 1024, f"VmRSS {rss_kib} KiB"


@pytest.mark.parametrize("rig", ["run"], indirect=True)  # --env-file is `run`'s, not the stand-in loop's
def test_env_file_edit_rerenders_and_reloads(rig: Rig) -> None:
    """`run --env-file` feeds the templates and is watched like them."""
    env_file = rig.tmp / "app.env"
    env_file.write_text("COLOR=red\n")
    _, dest = simple(rig, "color=${COLOR}\n", "--env-file", str(env_file))
    assert dest.read_text() == "color=red\n"
    env_file.write_text("COLOR=blue\n")
    wait_for(lambda: rig.count("HUP") == 1, 5, "one HUP")
    assert dest.read_text() == "color=blue\n"


def test_watch_paths_from_env_collects_templates_env_files_and_secrets(tmp_path: Path) -> None:
    env = {"DB_PASSWORD_FILE": "/run/secrets/db", "API_KEY_FILE": "/run/secrets/api", "API_KEY": "set",
           "ENTRYPOINT_ENV_FILE": "/etc/app.env", "ENTRYPOINT_TEMPLATES_DIR": str(tmp_path)}
    paths = watch_paths_from_env(env, ["/t/a.conf.template:/etc/a.conf", "/t/b.j2"])
    assert paths == ["/t/a.conf.template", "/t/b.j2", "/etc/app.env", "/run/secrets/db"]
    assert str(tmp_path) in watch_paths_from_env(env, [])


def test_edits_during_a_render_are_not_lost(rig: Rig) -> None:
    """Signals are off while PID 1 waits for the render child; what arrived is read right after."""
    go, busy = rig.tmp / "go", rig.tmp / "in-check"
    go.touch()
    src, dest = simple(rig, "port=${PORT}\n", "--check-cmd",
                       f"touch {busy}; while [ ! -e {go} ]; do sleep 0.01; done")
    go.unlink()
    busy.unlink()
    src.write_text("edit=1\n")
    wait_for(busy.exists, 5, "the first re-render to reach its check")
    src.write_text("edit=2\n")  # while PID 1 is blocked in waitpid
    go.touch()
    wait_for(lambda: rig.count("HUP") == 2, 5, "the second reload")
    assert dest.read_text() == "edit=2\n"


# -- the Watcher alone, in this process --------------------------------------------------

@pytest.fixture
def watcher_for(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    made: list[Watcher] = []

    def make(paths: list[Path], **kwargs: object) -> Watcher:
        w = Watcher([str(p) for p in paths], render=kwargs.pop("render", lambda fd: 0),  # type: ignore[arg-type]
                    **kwargs)  # type: ignore[arg-type]
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def settle(w: Watcher, timeout: float = 0.3) -> bool:
    """Drain every notification that arrives within TIMEOUT; True if any did."""
    got = False
    while signal.sigtimedwait({w.signum}, timeout) is not None:
        got = True
        w.drain()
        timeout = 0.05
    return got


def test_new_subdirectory_of_a_templates_dir_is_watched(watcher_for: Callable[..., Watcher],
                                                        tmp_path: Path) -> None:
    w = watcher_for([tmp_path])
    (tmp_path / "sub").mkdir()
    assert settle(w) and w.deadline() is not None
    w.rerender()
    assert w.deadline() is None
    (tmp_path / "sub" / "x.conf.template").write_text("x")
    assert settle(w) and w.deadline() is not None


def test_neighbours_of_a_watched_file_are_ignored(watcher_for: Callable[..., Watcher],
                                                   tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("A=1\n")
    w = watcher_for([env_file])
    (tmp_path / "other.txt").write_text("noise")
    (tmp_path / ".entrypoint-abc.tmp").write_text("our own staging file")
    settle(w, 0.2)
    assert w.deadline() is None
    env_file.write_text("A=2\n")
    assert settle(w) and w.deadline() is not None


def test_a_missing_secret_file_is_seen_when_it_appears(watcher_for: Callable[..., Watcher],
                                                        tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "db"
    w = watcher_for([secret])
    (tmp_path / "secrets").mkdir()
    settle(w)
    w.rerender()
    secret.write_text("hunter2")
    assert settle(w) and w.deadline() is not None


def test_debounce_quiet_period_and_max_wait(watcher_for: Callable[..., Watcher], tmp_path: Path) -> None:
    f = tmp_path / "t.template"
    f.write_text("0")
    w = watcher_for([f], quiet_period=0.5, max_wait=0.8)
    f.write_text("1")
    settle(w)
    first = w.deadline()
    assert first is not None and first - time.monotonic() <= 0.5
    f.write_text("2")
    settle(w)
    second = w.deadline()
    assert second is not None and second > first  # the quiet period restarted ...
    f.write_text("3")
    settle(w)
    third = w.deadline()
    assert third is not None and third - second < 0.5  # ... but max_wait caps it


def test_rerender_reports_changes_failures_and_timeouts(watcher_for: Callable[..., Watcher],
                                                         tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    def reporting(*records: tuple[str, str]) -> Callable[[int], int]:
        def step(fd: int) -> int:
            write_records(fd, records)
            return 0
        return step

    def killed(fd: int) -> int:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return 0

    def hang(fd: int) -> int:
        subprocess.run(["sleep", "30"], check=False)  # a hung --check-cmd, in the render's group
        return 0

    assert watcher_for([tmp_path], render=reporting(("changed", "/a"))).rerender() is True
    same = reporting(("unchanged", "/a"))
    assert watcher_for([tmp_path], render=same).rerender() is False
    assert watcher_for([tmp_path], render=reporting()).rerender() is False  # nothing rendered: no reload
    assert watcher_for([tmp_path], render=lambda fd: 78).rerender() is False
    assert watcher_for([tmp_path], render=killed).rerender() is False
    hung = watcher_for([tmp_path], render=hang, render_timeout=0.3)
    started = time.monotonic()
    assert hung.rerender() is False
    assert time.monotonic() - started < 5
    err = capfd.readouterr().err
    assert err.count("re-render failed (exit 78)") == 1
    assert err.count("re-render was killed by signal 9") == 1
    assert "took longer than 0.3s and was killed" in err
