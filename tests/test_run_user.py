"""`run --user USER[:GROUP]` as PID 1 of a real PID namespace, signalled from outside.

Each runtime gets its own mount namespace too (``unshare --mount-proc``
implies one, with private propagation), where test ``/etc/passwd`` and
``/etc/group`` files are bind-mounted over the real ones: the host's user
database is never touched, and the lookups go through NSS as in a container.
The app side runs ``/bin/sh`` or the system ``/usr/bin/python3``, which a
non-root user can execute (the test interpreter may live under ``/root``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pid1_helpers import (
    REPO,
    Runtime,
    alive,
    base_env,
    children_of,
    entrypoint_cmd,
    needs_ns,
    start_markers,
    wait_until,
)

pytestmark = [needs_ns, pytest.mark.timeout(60)]

SYSTEM_PY = "/usr/bin/python3"
needs_system_python = pytest.mark.skipif(not os.access(SYSTEM_PY, os.X_OK), reason="no /usr/bin/python3")

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
alice:x:2001:2001:Alice:/home/alice:/bin/sh
bob:x:2002:3000::/srv/bob:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
alice:x:2001:
staff:x:3000:alice
extra:x:3001:alice,bob
nogroup:x:65534:
"""
#: what the app reports about itself, as one JSON line
REPORT = ("import json, os; print(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(), "
          "'groups': sorted(os.getgroups()), 'home': os.environ.get('HOME')}), flush=True)")
# Mount the test user database, then become the runtime (exec: it stays PID 1).
WRAP = 'mount --bind "$EP_PASSWD" /etc/passwd && mount --bind "$EP_GROUP" /etc/group && exec "$@"'


@pytest.fixture()
def userdb(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "group").write_text(GROUP)
    return {"EP_PASSWD": str(tmp_path / "passwd"), "EP_GROUP": str(tmp_path / "group")}


class UserRuntime(Runtime):
    """``entrypoint run`` as PID 1 with the test user database mounted (see module docstring)."""

    def __init__(self, args: list[str], userdb: dict[str, str], env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = (), **kw: Any) -> None:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", WRAP, "sh", *prefix,
               *entrypoint_cmd(*args)]
        self.namespace = True
        self._pid = None
        self.proc = subprocess.Popen(cmd, stdout=kw.get("stdout", subprocess.PIPE),
                                     stderr=kw.get("stderr", subprocess.PIPE), stdin=subprocess.DEVNULL,
                                     env={**(env or base_env()), **userdb})


def run_user(args: list[str], userdb: dict[str, str], env: dict[str, str] | None = None,
             prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    with UserRuntime(args, userdb, env, prefix) as rt:
        out, err = rt.communicate(20)
        return subprocess.CompletedProcess(args, rt.proc.returncode, out, err)


def report_as(spec: str, userdb: dict[str, str], **env: str) -> dict[str, Any]:
    done = run_user(["--user", spec, "--", SYSTEM_PY, "-c", REPORT], userdb, base_env(**env))
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- who the app is ----------------------------------------------------------------

@needs_system_python
@pytest.mark.parametrize(("spec", "uid", "gid", "groups", "home"), [
    ("alice", 2001, 2001, [2001, 3000, 3001], "/home/alice"),      # primary + supplementary from /etc/group
    ("2001", 2001, 2001, [2001, 3000, 3001], "/home/alice"),       # a uid with an entry is that user
    ("bob", 2002, 3000, [3000, 3001], "/srv/bob"),                 # primary group from passwd
    ("alice:staff", 2001, 3000, [3000, 3001], "/home/alice"),      # GROUP by name replaces the primary
    ("alice:5555", 2001, 5555, [3000, 3001, 5555], "/home/alice"),  # ... or by number, in no group file
    ("4242", 4242, 0, [0], "/"),                                   # no passwd entry: gid 0, HOME /
    ("4242:3001", 4242, 3001, [3001], "/"),
    ("nobody", 65534, 65534, [65534], "/nonexistent"),
])
def test_the_app_runs_as_user(userdb: dict[str, str], spec: str, uid: int, gid: int, groups: list[int],
                              home: str) -> None:
    seen = report_as(spec, userdb)
    assert (seen["uid"], seen["euid"], seen["gid"]) == (uid, uid, gid)
    assert seen["groups"] == groups
    assert seen["home"] == home


@needs_system_python
def test_home_from_passwd_only_when_the_app_has_none_of_its_own(userdb: dict[str, str]) -> None:
    assert report_as("alice", userdb, HOME="/srv/data")["home"] == "/srv/data"
    # The engine's HOME for the container's user (root: /root) is not the app's own.
    assert report_as("alice", userdb, HOME="/root")["home"] == "/home/alice"


@needs_system_python
def test_already_that_user_is_a_no_op(userdb: dict[str, str]) -> None:
    seen = report_as("root", userdb, HOME="/root")
    assert (seen["uid"], seen["gid"], seen["home"]) == (0, 0, "/root")
    assert report_as("0:0", userdb)["uid"] == 0


@needs_system_python
def test_env_variable_sets_it(userdb: dict[str, str]) -> None:
    done = run_user(["--", SYSTEM_PY, "-c", REPORT], userdb, base_env(ENTRYPOINT_USER="bob"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uid"] == 2002
    # Empty is off (an image's ENV ENTRYPOINT_USER= overridden at run time), and the CLI wins.
    done = run_user(["--", SYSTEM_PY, "-c", REPORT], userdb, base_env(ENTRYPOINT_USER=""))
    assert json.loads(done.stdout)["uid"] == 0, done.stderr
    done = run_user(["--user", "alice", "--", SYSTEM_PY, "-c", REPORT], userdb,
                    base_env(ENTRYPOINT_USER="bob"))
    assert json.loads(done.stdout)["uid"] == 2001, done.stderr


# -- PID 1 stays root; signals, restarts, the tree ----------------------------------

@needs_system_python
def test_pid1_stays_root_and_stops_the_users_tree(userdb: dict[str, str], tmp_path: Path) -> None:
    """The app (as alice) and a TERM-ignoring grandchild: TERM from outside, SIGKILL after the grace."""
    out = tmp_path / "out"
    app = ("import os, signal, subprocess, sys, time\n"
           "subprocess.Popen(['/bin/sh', '-c', 'trap \"\" TERM; while :; do sleep 1; done'])\n"
           "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
           "print('ready', os.getuid(), flush=True)\n"
           "while True: time.sleep(1)\n")
    args = ["--user", "alice", "--grace-period", "1", "--", SYSTEM_PY, "-c", app]
    with out.open("wb") as f, UserRuntime(args, userdb, stdout=f) as rt:
        wait_until(lambda: out.read_text().startswith("ready"), 15, "the app to start")
        assert out.read_text().split() == ["ready", "2001"]
        assert _uids(rt.pid) == [0, 0, 0, 0]          # PID 1: root, untouched
        tree = _descendants(rt.pid)
        assert len(tree) == 3 and {_uids(p)[0] for p in tree} == {2001}
        rt.signal(signal.SIGTERM)
        assert rt.wait(15) == 7
        assert not any(alive(p) for p in tree)


@needs_system_python
def test_every_restart_runs_as_user(userdb: dict[str, str]) -> None:
    done = run_user(["--user", "bob", "--restart", "always", "--restart-max", "2", "--restart-delay", "0.01",
                     "--", "/bin/sh", "-c", "id -u; exit 3"], userdb)
    assert done.returncode == 3, done.stderr
    assert done.stdout.decode().split() == ["2002", "2002", "2002"]


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(pid)


def _descendants(pid: int) -> list[int]:
    found, stack = [], children_of(pid)
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children_of(p))
    return found


# -- bad input: one line, exit 78, nothing started -----------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    ("nosuch", "--user nosuch: no user 'nosuch' in /etc/passwd"),
    ("alice:nogroup2", "--user alice:nogroup2: no group 'nogroup2' in /etc/group"),
    ("4242:nosuch", "--user 4242:nosuch: no group 'nosuch' in /etc/group"),
    (":staff", "--user ':staff': expected USER[:GROUP]"),
    ("alice:", "--user 'alice:': expected USER[:GROUP]"),
])
def test_unknown_user_or_group_is_78_before_anything_starts(userdb: dict[str, str], tmp_path: Path,
                                                            spec: str, message: str) -> None:
    start, dest, marker = start_markers(tmp_path)
    env = base_env()
    done = run_user([*start, "--user", spec, "--", "/bin/sh", "-c", f"touch {tmp_path}/app-ran"], userdb, env)
    assert done.returncode == 78, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"[entrypoint] error: {message}"), lines
    assert not dest.exists() and not marker.exists() and not (tmp_path / "app-ran").exists()


@needs_system_python
def test_not_root_asking_for_another_user_is_78(userdb: dict[str, str], tmp_path: Path) -> None:
    """The runtime itself started as alice (the system interpreter, the repo on PYTHONPATH)."""
    drop = ("setpriv", "--reuid=2001", "--regid=2001", "--init-groups")
    cmd = [SYSTEM_PY, "-m", "entrypoint", "run"]
    env = base_env(PYTHONPATH=str(REPO), ENTRYPOINT_HOOKS_DIR="/nonexistent",
                   ENTRYPOINT_TEMPLATES_DIR="/nonexistent")
    wrap = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", WRAP, "sh", *drop, *cmd]
    done = subprocess.run([*wrap, "--user", "bob", "--", "/bin/sh", "-c", "echo started"],
                          capture_output=True, env={**env, **userdb}, timeout=30)
    assert done.returncode == 78, done.stderr
    assert done.stdout == b""
    assert b"--user bob: running as uid 2001, not root" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    # Asking for who we already are is fine.
    done = subprocess.run([*wrap, "--user", "alice", "--", "/bin/sh", "-c", "id -u"],
                          capture_output=True, env={**env, **userdb}, timeout=30)
    assert (done.returncode, done.stdout) == (0, b"2001\n"), done.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_a_switch_the_kernel_refuses_is_78_and_named(userdb: dict[str, str]) -> None:
    """Root without CAP_SETUID (a hardened container): the child cannot setuid; nothing ran."""
    done = run_user(["--user", "alice", "--", "/bin/sh", "-c", "echo started"], userdb,
                    prefix=("setpriv", "--bounding-set=-setuid", "--inh-caps=-setuid"))
    assert done.returncode == 78, done.stderr
    assert done.stdout == b""
    expected = b"[entrypoint] error: cannot start '/bin/sh' as --user alice: Operation not permitted"
    assert expected in done.stderr


def test_resolution_does_not_load_into_pid1_without_the_option() -> None:
    """pwd/grp and the user module are imported only for --user."""
    code = ("import sys; from entrypoint.options import parse_run_args; "
            "parse_run_args(['--', 'true'], {}); import entrypoint.commands.run; "
            "print('entrypoint.supervise.parts.user' in sys.modules, 'grp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env=base_env())
    assert done.stdout.split() == ["False", "False"], done.stderr
