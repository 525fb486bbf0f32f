"""Each command pays only for what it uses: which of the four libraries each one imports.

jinja2 and pydantic(-settings) are for render/check/env; psutil only for
`status`; watchdog only for `render --watch` / `check --watch`; `run` (PID 1)
none of them, with `--watch` too.  Read with ``python -X importtime``, so
lazy imports anywhere in the command count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pid1_helpers import NAMESPACES, base_env, wait_until

pytestmark = pytest.mark.timeout(60)

LIBRARIES = ("jinja2", "pydantic", "pydantic_settings", "psutil", "watchdog")


def top_level(stderr: str) -> set[str]:
    names = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
             if line.startswith("import time:")}
    return {name.split(".")[0] for name in names} & set(LIBRARIES)


def imports_of(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "entrypoint", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30, env=env or base_env(),
                          stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr, done.stderr
    return top_level(done.stderr)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "a.conf.template").write_text("a=${A:-1}\n")
    (tmp_path / "b.j2").write_text("b={{ env.get('B', 2) }}\n")
    return tmp_path


def test_status_imports_psutil_and_nothing_of_rendering(work: Path) -> None:
    state = work / "state.json"  # names this pytest: read, psutil loaded, then "not entrypoint"
    state.write_text(json.dumps({"version": 1, "runtime_pid": os.getpid(), "phase": "running",
                                 "app": {"pid": None, "restarts": 0, "last_exit_code": None, "command": []},
                                 "changed_at": time.time()}))
    assert imports_of(["status", "--state-file", str(state)], work) == {"psutil"}


def test_status_without_a_state_file_does_not_even_need_psutil(work: Path) -> None:
    assert imports_of(["status", "--state-file", str(work / "none")], work) == set()


@pytest.mark.parametrize("args, expected", [
    (["render", "a.conf.template"], {"pydantic", "pydantic_settings"}),
    (["render", "b.j2"], {"pydantic", "pydantic_settings", "jinja2"}),
    (["check", "a.conf.template", "b.j2"], {"pydantic", "pydantic_settings", "jinja2"}),
    (["env", "--format", "json"], {"pydantic", "pydantic_settings"}),
    (["envsubst", "--variables", "$A"], set()),
])
def test_one_shot_commands_never_import_psutil_or_watchdog(work: Path, args: list[str],
                                                           expected: set[str]) -> None:
    imported = imports_of(args, work)
    assert not imported & {"psutil", "watchdog"}, imported
    assert imported <= expected, imported


@pytest.mark.parametrize("command", ["render", "check"])
def test_watch_imports_watchdog_but_not_psutil(work: Path, command: str) -> None:
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "entrypoint", command, "--watch",
                             "a.conf.template"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=base_env(), stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        wait_until(lambda: _read_until(proc, seen, "Ctrl-C to stop"), 20, "the first run")
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=15)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    imported = top_level("".join(seen) + rest)
    assert "watchdog" in imported and "psutil" not in imported, imported


def _read_until(proc: subprocess.Popen[str], seen: list[str], marker: str) -> bool:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    seen.append(line)
    return marker in line or not line


@pytest.mark.skipif(not NAMESPACES, reason="needs root and unshare --pid")
@pytest.mark.parametrize("extra", [[], ["--watch", "--template", "a.conf.template:a.conf"]])
def test_run_as_pid1_imports_none_of_the_four(work: Path, extra: list[str]) -> None:
    env = base_env(ENTRYPOINT_TEMPLATES_DIR="/nonexistent", ENTRYPOINT_HOOKS_DIR="/nonexistent",
                   ENTRYPOINT_STATE_FILE=str(work / "state.json"))
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-X", "importtime",
                           "-m", "entrypoint", "run", *extra, "--", "true"], cwd=work, capture_output=True,
                          text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "entrypoint.supervise.loop" in done.stderr
    assert top_level(done.stderr) == set()
