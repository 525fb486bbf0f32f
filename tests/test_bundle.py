"""The self-contained bundle (docs/bundle.md): every command as from the pip install, and the isolation.

The tree is built once per session by ``scripts/bundle`` (tests/bundle_support.py).  In the session
temporary directory it is *not* at /opt/entrypoint: those runs prove the relocated start (through
the tree's own dynamic loader); the chroot tests put it at /opt/entrypoint, in a root holding
nothing else but a static busybox, read-only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.bundle_support import HOME, REPO, build, busybox, scratch_root
from tests.pid1_helpers import needs_ns, wait_until

pytestmark = pytest.mark.timeout(120)

JVM = REPO / "examples/jvm"
REF = REPO / "examples/reference-deployment"
PIP = [sys.executable, "-m", "entrypoint"]
SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # chroot, mount: the root's tools


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def exe(tree: Path) -> list[str]:
    return [str(tree / "bin/entrypoint")]


def clean_env(**extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "ENTRYPOINT_STATE_FILE": "", "PYTHONPATH": str(REPO)}
    env.update(extra)
    return env


def run(head: list[str], args: list[str], cwd: Path, env: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*head, *args], cwd=cwd, env=env or clean_env(), input=stdin, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "a.conf.template").write_text("a=${A:-1}\nb=$B\n")
    (tmp_path / "b.j2").write_text("{{ env.get('B', 2) }} {{ getenv('C', 'c') }}\n")
    (tmp_path / "bad.j2").write_text("{% if %}\n")
    (tmp_path / "app.env").write_text("B=from-file\n")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-say.sh").write_text("#!/bin/sh\necho hook ran\n")
    (hooks / "10-say.sh").chmod(0o755)
    (hooks / "20-set.envsh").write_text("export FROM_HOOK=yes\n")
    services = tmp_path / "services"
    for name, body in (("db", "echo db up >&2\necho >&3\nexec sleep 100\n"),
                       ("web", "echo web up >&2\nexec sleep 100\n")):
        (services / name).mkdir(parents=True)
        (services / name / "run").write_text(f"#!/bin/sh\n{body}")
        (services / name / "run").chmod(0o755)
    (services / "db" / "notification-fd").write_text("3\n")
    (services / "web" / "dependencies").write_text("db\n")
    broken = tmp_path / "broken-services"
    (broken / "a").mkdir(parents=True)
    (broken / "a" / "dependencies").write_text("ghost\n")
    (broken / "a" / "down-signal").write_text("NOPE\n")
    (tmp_path / "state.json").write_text(json.dumps(
        {"version": 1, "runtime_pid": os.getpid(), "phase": "running",
         "app": {"pid": None, "restarts": 0, "last_exit_code": None, "command": []}, "changed_at": 0}))
    return tmp_path


def marathon(app: Path, port: str) -> list[str]:
    return ["--clean-env", "--marathon-app", str(app), "--ports", port, "--task-id", "app.t-1",
            "--host", "agent-1"]


CASES: dict[str, list[str]] = {
    "help": ["--help"],
    "no-args": [],
    "jinja-typed-views": ["render", *marathon(JVM / "app.json", "31200"),
                          *(str(REPO / "templates" / t) for t in ("json/task.json.j2", "java/jvm.options.j2",
                                                                  "env/app.env.j2"))],
    "jvm-example": ["render", *marathon(JVM / "app.json", "31200"),
                    str(JVM / "templates/etc/app/jvm.options.j2")],
    "envsubst-template": ["render", *marathon(REF / "app.json", "31000"), "--marathon-version", "1.4",
                          str(REF / "templates/etc/app/server.properties.template")],
    "render-env-file": ["render", "--env-file", "app.env", "a.conf.template", "b.j2"],
    "render-strict-error": ["render", "--clean-env", "--strict", "a.conf.template"],
    "render-syntax-error": ["render", "bad.j2"],
    "check-ok": ["check", *marathon(REF / "app.json", "31000"), str(REF / "templates")],
    "check-broken": ["check", "--clean-env", str(REPO / "examples/ci-validation/broken")],
    "env-json": ["env", *marathon(REF / "app.json", "31000")],
    "env-dotenv": ["env", *marathon(REF / "app.json", "31000"), "--mesos-env", "--format", "dotenv"],
    "env-shell": ["env", "--clean-env", "--set", "X=it's", "--format", "shell"],
    "envsubst-v": ["envsubst", "-v", "$A ${B} $$C"],
    "envsubst-help": ["envsubst", "--help"],
    "status-no-state": ["status", "--state-file", "nonexistent.json"],
    "status-not-entrypoint": ["status", "--state-file", "state.json"],
    "status-json": ["status", "--json", "--state-file", "state.json"],
    "run-exit-code": ["run", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
    "run-template-hooks": ["run", "--template", "b.j2:b.out", "--hooks-dir", "hooks", "--env-file", "app.env",
                           "--", "sh", "-c", "cat b.out; echo $FROM_HOOK"],
    "run-bad-option": ["run", "--restart", "sometimes", "--", "true"],
    "run-help": ["run", "--help"],
    "run-file-wait": ["run", "--wait", "file:///nonexistent", "--wait-timeout", "0.2", "--", "true"],
    "run-https-wait": ["run", "--wait", "https://127.0.0.1:9/", "--wait-timeout", "0.2", "--", "true"],
    "run-expand-args": ["run", "--expand-args", "--", "echo", "${A:-dflt}", "$$"],
    "run-services": ["run", "--services-dir", "services", "--", "sh", "-c", "echo app after both"],
    "run-services-broken": ["run", "--services-dir", "broken-services", "--", "true"],
    "check-services": ["check", "--services-dir", "services"],
    "check-services-broken": ["check", "--services-dir", "broken-services", "--format", "json"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_as_from_the_pip_install(case: str, exe: list[str], work: Path) -> None:
    ours = run(exe, CASES[case], work, stdin="A=$A\n")
    theirs = run(PIP, CASES[case], work, stdin="A=$A\n")
    assert "Traceback" not in ours.stderr, ours.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


def test_envsubst_reads_stdin_as_the_pip_install(exe: list[str], work: Path) -> None:
    text = "a=$A b=${B:-x} ünïcode=$U\n"
    env = clean_env(A="1", U="ü")
    ours, theirs = run(exe, ["envsubst"], work, env, text), run(PIP, ["envsubst"], work, env, text)
    expected = (0, "a=1 b=${B:-x} ünïcode=ü\n")  # GNU envsubst has no defaults
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == expected


def test_version_names_the_bundle_and_its_interpreter(exe: list[str], work: Path) -> None:
    import entrypoint

    ours = run(exe, ["--version"], work)
    version = ".".join(map(str, sys.version_info[:3]))
    assert ours.stdout == f"entrypoint {entrypoint.__version__} (bundle, CPython {version})\n"
    assert run(PIP, ["--version"], work).stdout == f"entrypoint {entrypoint.__version__}\n"


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "sock"))
    unix.listen()
    (tmp_path / "ready").write_text("")
    try:
        yield {"http": f"http://127.0.0.1:{http.server_address[1]}/", "tcp": f"tcp://127.0.0.1:{tcp.getsockname()[1]}",
               "unix": f"unix://{tmp_path / 'sock'}", "file": f"file://{tmp_path / 'ready'}"}
    finally:
        http.shutdown()
        tcp.close()
        unix.close()


def test_every_wait_kind_from_the_bundle(exe: list[str], servers: dict[str, str], tmp_path: Path) -> None:
    waits = [arg for url in servers.values() for arg in ("--wait", url)]
    done = run(exe, ["run", *waits, "--wait-timeout", "20", "--", "echo", "all up"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "all up\n"), done.stderr


def test_isolated_from_python_and_loader_variables(exe: list[str], work: Path, tmp_path: Path) -> None:
    """PYTHONHOME/PYTHONPATH/LD_LIBRARY_PATH of the image change nothing; the app gets them as they were."""
    bogus = tmp_path / "bogus"
    (bogus / "entrypoint").mkdir(parents=True)
    (bogus / "entrypoint/__init__.py").write_text("raise SystemExit('the image PYTHONPATH was read')\n")
    (bogus / "encodings").mkdir()
    (bogus / "encodings/__init__.py").write_text("raise SystemExit('the image PYTHONPATH was read')\n")
    for name in ("libc.so.6", "libm.so.6", "libpython3.11.so.1.0", "libssl.so.3", "libz.so.1"):
        (bogus / name).write_bytes(b"\x7fELF not a library\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONHOME": str(bogus), "PYTHONPATH": str(bogus),
           "LD_LIBRARY_PATH": str(bogus), "PYTHONSTARTUP": str(bogus / "x.py"), "PYTHONINSPECT": "1",
           "PYTHONUTF8": "0", "ENTRYPOINT_STATE_FILE": ""}
    rendered = run(exe, ["render", "--env-file", "app.env", "b.j2"], work, env)
    assert (rendered.returncode, rendered.stdout) == (0, "from-file c\n"), rendered.stderr
    shown = run(exe, ["run", "--", str(busybox()), "env"], work, env)  # static: the bogus libc is no matter
    assert shown.returncode == 0, shown.stderr
    assert dict(line.split("=", 1) for line in shown.stdout.splitlines()) == env


def test_the_app_environment_is_exactly_the_containers(exe: list[str], work: Path) -> None:
    """Nothing added, nothing removed, even with no locale set (no PEP 538 LC_CTYPE coercion)."""
    env = {"PATH": "/usr/bin:/bin", "ENTRYPOINT_STATE_FILE": "", "A": "1", "EMPTY": "", "ODD": "x=y\tz ü"}
    for extra in ({}, {"LANG": "C"}, {"LC_ALL": "C.UTF-8"}):
        full = {**env, **extra}
        done = run(exe, ["run", "--", str(busybox()), "env"], work, full)
        assert dict(line.split("=", 1) for line in done.stdout.splitlines()) == full


@needs_ns
def test_the_app_is_pid_1s_direct_child(exe: list[str], tmp_path: Path) -> None:
    show = "echo $PPID; tr '\\0' ' ' < /proc/1/cmdline"
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", *exe, "run", "--", "sh", "-c", show],
                          env=clean_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    ppid, cmdline = done.stdout.splitlines()
    assert (done.returncode, ppid) == (0, "1"), done.stderr
    assert f"{HOME}/libexec/entrypoint run --" in cmdline  # PID 1 is the interpreter, not a launcher


def test_started_from_elsewhere_it_still_works(tree: Path, tmp_path: Path) -> None:
    """Relocated: the tree copied anywhere runs through its own dynamic loader."""
    copy = tmp_path / "some/other/place"
    shutil.copytree(tree, copy, symlinks=True)
    done = run([str(copy / "bin/entrypoint")], ["run", "--", "echo", "moved"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "moved\n"), done.stderr


def test_an_incomplete_copy_fails_with_one_clear_line(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "half/bin").mkdir(parents=True)
    shutil.copy2(tree / "bin/entrypoint", tmp_path / "half/bin/entrypoint")
    done = run([str(tmp_path / "half/bin/entrypoint")], ["--version"], tmp_path)
    assert done.returncode == 127
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"entrypoint: cannot start the bundle's interpreter {tmp_path}/half/lib/")
    assert f"/{HOME}" in done.stderr


def test_the_tree_ships_no_sources_tests_or_caches(tree: Path) -> None:
    names = [p.name for p in tree.rglob("*")]
    assert not [n for n in names if n.endswith((".py", ".h", ".a", ".pc"))
                or n in ("__pycache__", "test", "tests")]
    left_out = ("tkinter", "idlelib", "ensurepip", "lib2to3", "distutils", "pydoc_data", "sqlite3",
                "_sqlite3", "curses", "_curses")
    assert not [n for n in names if n.split(".")[0] in left_out]


@needs_ns
def test_from_scratch_read_only_root_with_only_busybox(tree: Path, tmp_path: Path) -> None:
    """The tree at /opt/entrypoint of a read-only root that holds nothing else than a static busybox:
    PID 1 of a new namespace renders a Jinja template (to a tmpfs), runs the app as its child."""
    root = scratch_root(tree, tmp_path)
    (root / "etc/app.conf.j2").write_text("port={{ env.PORT | int + 1 }} {{ getenv('MISSING', 'dflt') }}\n")
    setup = (f"mount --bind {root} {root} && mount -o remount,bind,ro {root}"
             f" && mount -t tmpfs tmpfs {root}/tmp && mount -t proc proc {root}/proc"
             f" && exec chroot {root} /{HOME}/bin/entrypoint run"
             " --template /etc/app.conf.j2:/tmp/app.conf -- sh -c"
             " 'cat /tmp/app.conf; echo ppid=$PPID; touch /opt/entrypoint/x 2>/tmp/err || echo read-only'")
    done = subprocess.run(["unshare", "--mount", "--pid", "--fork", "sh", "-c", setup], capture_output=True,
                          text=True, timeout=60, env={"PATH": SBIN_PATH, "PORT": "8079"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "port=8080 dflt\nppid=1\nread-only\n"
    assert done.stderr == ""


def test_in_a_chroot_without_proc(tree: Path, tmp_path: Path) -> None:
    """No /proc at all: the launcher and the loader fall back to /opt/entrypoint."""
    root = scratch_root(tree, tmp_path)
    chroot = shutil.which("chroot", path=SBIN_PATH) or "chroot"
    done = subprocess.run([chroot, str(root), f"/{HOME}/bin/entrypoint", "run", "--", "echo", "no proc"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/bin"})
    assert (done.returncode, done.stdout) == (0, "no proc\n"), done.stderr


def _poll_text(path: Path, text: str) -> bool:
    try:
        return path.read_text() == text
    except FileNotFoundError:
        return False


def _edit_until(template: Path, text: str, out: Path, expected: str, what: str) -> None:
    """Write the template again on each poll until the output shows it: the first write may come
    before the watcher is up, and a later one is an event it cannot miss."""
    def edited() -> bool:
        if not _poll_text(out, expected):
            template.write_text(text)
            return False
        return True
    wait_until(edited, 30, what, interval=0.3)


def test_run_watch_rerenders_and_signals_the_app(exe: list[str], tmp_path: Path) -> None:
    tpl, out, hups = tmp_path / "app.j2", tmp_path / "app.conf", tmp_path / "hups"
    tpl.write_text("v=1\n")
    app = f"trap 'echo hup >> {hups}' HUP; while :; do sleep 0.05; done"
    proc = subprocess.Popen([*exe, "run", "--watch", "--watch-quiet", "0.05", "--template", f"{tpl}:{out}",
                             "--", "sh", "-c", app], env=clean_env(), cwd=tmp_path)
    try:
        wait_until(lambda: _poll_text(out, "v=1\n"), 30, "the first render")
        _edit_until(tpl, "v=2\n", out, "v=2\n", "the re-render")
        wait_until(lambda: hups.exists(), 30, "the reload signal")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, 143)
    finally:
        proc.kill()
        proc.wait(10)


def test_render_watch_from_the_bundle(exe: list[str], tmp_path: Path) -> None:
    tpl, out = tmp_path / "a.j2", tmp_path / "out"
    tpl.write_text("{{ 1 + 1 }}\n")
    proc = subprocess.Popen([*exe, "render", "--watch", f"{tpl}:{out}"], env=clean_env(), cwd=tmp_path,
                            stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _poll_text(out, "2\n"), 30, "the first render")
        _edit_until(tpl, "{{ 2 + 2 }}\n", out, "4\n", "the re-render (watchdog)")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(10)
