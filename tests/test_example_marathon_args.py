"""examples/marathon-args, offline: the app definition's args check against Marathon's
variables, and the image's ENTRYPOINT + args run as PID 1 of a PID namespace with
--user and --expand-args (as the Dockerfile's ENTRYPOINT_* settings say), signalled
from outside.  The real image is proven by tests/test_container_user.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, base_env, children_of, free_port, get_json, needs_ns, wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "marathon-args"
APP = EXAMPLE / "app.json"
SYSTEM_PY = "/usr/bin/python3"  # runnable by nobody (the test interpreter may live under /root)

pytestmark = pytest.mark.timeout(60)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", *map(str, args)], capture_output=True,
                          text=True, timeout=30, cwd=ROOT, stdin=subprocess.DEVNULL)


def dockerfile_settings() -> tuple[dict[str, str], list[str]]:
    """The ENTRYPOINT_* ENV values and the ENTRYPOINT of the example's Dockerfile."""
    text = (EXAMPLE / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in line[4:].split())
        elif line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line[len("ENTRYPOINT "):])
    return env, entrypoint


def test_app_definition_args_check_against_marathon() -> None:
    done = cli("check", "--clean-env", "--marathon-app", APP, "--expand-args", "--templates-dir",
               EXAMPLE / "no-templates")
    assert done.returncode == 0, done.stderr
    args = json.loads(APP.read_text())["args"]
    assert args[:2] == ["--port", "$PORT0"]


def test_the_same_args_without_marathon_port_fail_the_check(tmp_path: Path) -> None:
    app = json.loads(APP.read_text())
    app["portDefinitions"] = []
    broken = tmp_path / "app.json"
    broken.write_text(json.dumps(app))
    done = cli("check", "--clean-env", "--marathon-app", broken, "--expand-args", "--templates-dir",
               tmp_path / "none")
    assert done.returncode == 78
    assert f"{broken}: args[1] ('$PORT0'), column 1: PORT0: not set" in done.stderr.splitlines()


def test_dockerfile_turns_both_options_on() -> None:
    env, entrypoint = dockerfile_settings()
    assert env["ENTRYPOINT_USER"] == "app" and env["ENTRYPOINT_EXPAND_ARGS"] == "true"
    assert entrypoint == ["entrypoint", "run", "--", "python3", "/opt/app/server.py"]


@pytest.fixture()
def data_dir() -> Iterator[Path]:
    """Writable by nobody (pytest's tmp_path is under a root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix="marathon-args-"))
    os.chown(path, 65534, 65534)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@needs_ns
@pytest.mark.skipif(not os.access(SYSTEM_PY, os.X_OK), reason="no /usr/bin/python3")
def test_runs_as_the_user_with_expanded_args_and_stops_on_term(data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    marathon = json.loads(cli("env", "--clean-env", "--marathon-app", APP, "--host", "127.0.0.1", "--ports",
                              str(port), "--format", "json").stdout)
    settings, _ = dockerfile_settings()
    env = base_env(**{**marathon, **settings, "ENTRYPOINT_USER": "nobody"}, BIND_ADDRESS="127.0.0.1",
                   ENTRYPOINT_HOOKS_DIR="/nonexistent", ENTRYPOINT_TEMPLATES_DIR="/nonexistent")
    args = [a.replace("/var/lib/app", str(data_dir)) for a in json.loads(APP.read_text())["args"]]
    out = tmp_path / "out"
    with out.open("wb") as f, Runtime(["--", SYSTEM_PY, str(EXAMPLE / "app/server.py"), *args],
                                      stdout=f, env=env) as rt:
        report = wait_until(lambda: get_json(port), 15, "the app to answer", interval=0.05)
        assert report["port"] == port and report["name"] == "/marathon-args"
        assert report["uid"] == 65534 and report["home"] == "/nonexistent"
        assert (data_dir / "started-by").read_text() == "65534\n"
        assert _uid(rt.pid) == 0 and [_uid(p) for p in children_of(rt.pid)] == [65534]
        rt.signal(signal.SIGTERM)
        assert rt.wait(15) == 0
    assert "stopped" in out.read_text()


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(pid)
