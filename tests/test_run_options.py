"""`run` options: the command line over ENTRYPOINT_* variables, and the signal vocabulary."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint.errors import UsageError
from entrypoint.options import DEFAULT_GRACE_PERIOD, RESTART_RELOAD, env_name, parse_run_args
from entrypoint.supervise.parts import signals
from tests.pid1_helpers import base_env, entrypoint_exe

pytestmark = pytest.mark.timeout(60)


def test_defaults() -> None:
    opts = parse_run_args(["app"], {})
    assert opts.command == ["app"]
    assert opts.grace_period == DEFAULT_GRACE_PERIOD == 4.0
    assert opts.restart == "no" and opts.signal_group is False
    assert opts.templates_dir == "/etc/entrypoint/templates" and opts.hooks_dir == "/etc/entrypoint.d"
    assert opts.reload_signal == signal.SIGHUP and opts.verbosity == 1


def test_parsing_stops_at_the_command_or_double_dash() -> None:
    opts = parse_run_args(["--grace-period", "2", "nginx", "-g", "daemon off;", "--restart", "x"], {})
    assert opts.grace_period == 2
    assert opts.command == ["nginx", "-g", "daemon off;", "--restart", "x"]
    assert parse_run_args(["-v", "--", "--weird-name", "-q"], {}).command == ["--weird-name", "-q"]
    assert parse_run_args(["-", "x"], {}).command == ["-", "x"]


def test_environment_then_command_line() -> None:
    env = {"ENTRYPOINT_GRACE_PERIOD": "10", "ENTRYPOINT_SIGNAL_GROUP": "true", "ENTRYPOINT_RESTART": "always",
           "ENTRYPOINT_REMAP_EXIT": "143, 130", "ENTRYPOINT_WAIT": "tcp://db:5432 file:///tmp/x",
           "ENTRYPOINT_TEMPLATES": "/a.tmpl:/a, /b.tmpl:/b", "ENTRYPOINT_VERBOSE": "1",
           "ENTRYPOINT_REWRITE_SIGNAL": "TERM:QUIT HUP:0", "ENTRYPOINT_RELOAD_SIGNAL": "restart"}
    opts = parse_run_args(["app"], env)
    assert opts.grace_period == 10 and opts.signal_group and opts.restart == "always"
    assert opts.remap_exit == {143, 130}
    assert opts.waits == ["tcp://db:5432", "file:///tmp/x"]
    assert opts.templates == ["/a.tmpl:/a", "/b.tmpl:/b"]
    assert opts.rewrites == {signal.SIGTERM: signal.SIGQUIT, signal.SIGHUP: 0}
    assert opts.verbosity == 2 and opts.reload_signal == RESTART_RELOAD
    assert opts.from_cli == set()
    argv = ["--grace-period=1.5", "--wait", "tcp://x:1", "--remap-exit", "3", "-q", "app"]
    opts = parse_run_args(argv, env)
    assert opts.grace_period == 1.5
    assert opts.waits == ["tcp://x:1"]  # a list on the command line replaces the environment's
    assert opts.remap_exit == {3}
    assert opts.verbosity == 0
    assert {"grace_period", "waits", "remap_exit"} <= opts.from_cli


def test_env_names() -> None:
    assert env_name("--grace-period") == "ENTRYPOINT_GRACE_PERIOD"
    assert env_name("--template") == "ENTRYPOINT_TEMPLATES"
    assert env_name("--restart-delay-max") == "ENTRYPOINT_RESTART_DELAY_MAX"


@pytest.mark.parametrize("argv", [
    [], ["--grace-period"], ["--grace-period", "soon", "x"], ["--grace-period", "-1", "x"],
    ["--restart", "sometimes", "x"], ["--rewrite-signal", "TERM", "x"], ["--rewrite-signal", "NOPE:1", "x"],
    ["--rewrite-signal", "KILL:TERM", "x"], ["--rewrite-signal", "TERM:99", "x"],
    ["--remap-exit", "256", "x"],
    ["--remap-exit", "abc", "x"], ["--reload-signal", "BOGUS", "x"], ["--unknown", "x"], ["--watch=yes", "x"],
    ["--restart-max", "1.5", "x"],
])
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_run_args(argv, {})


def test_bad_environment_names_the_variable() -> None:
    with pytest.raises(UsageError, match="ENTRYPOINT_GRACE_PERIOD"):
        parse_run_args(["x"], {"ENTRYPOINT_GRACE_PERIOD": "forever"})
    with pytest.raises(UsageError, match="ENTRYPOINT_SIGNAL_GROUP"):
        parse_run_args(["x"], {"ENTRYPOINT_SIGNAL_GROUP": "maybe"})


def test_cli_usage_error_exits_2_without_traceback() -> None:
    done = subprocess.run([*entrypoint_exe(), "run", "--restart", "sometimes", "--", "true"],
                          capture_output=True, env=base_env(), timeout=20)
    assert done.returncode == 2
    assert done.stderr.startswith(b"[entrypoint] error: --restart")
    assert b"Traceback" not in done.stderr


def test_help_lists_every_option() -> None:
    done = subprocess.run([*entrypoint_exe(), "run", "--help"], capture_output=True,
                          env=base_env(), timeout=20)
    assert done.returncode == 0
    for option in ("--template", "--templates-dir", "--grace-period", "--restart", "--rewrite-signal",
                   "--remap-exit", "--signal-group", "--watch", "--reload-signal", "--wait",
                   "--wait-timeout", "--hooks-dir", "--verbose", "--quiet"):
        assert option.encode() in done.stdout


@pytest.mark.parametrize(("text", "num"), [
    ("15", 15), ("TERM", 15), ("SIGTERM", 15), ("sigterm", 15), (" hup ", 1), ("RTMIN", signal.SIGRTMIN),
    ("RTMIN+2", signal.SIGRTMIN + 2), ("SIGRTMAX-1", signal.SIGRTMAX - 1), ("CLD", signal.SIGCHLD),
])
def test_signal_names_parse(text: str, num: int) -> None:
    assert signals.parse(text) == num


def test_signal_names_print() -> None:
    assert signals.name(15) == "SIGTERM"
    assert signals.name(signal.SIGCHLD) == "SIGCHLD"
    assert signals.name(signal.SIGABRT) == "SIGABRT"
    assert signals.name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"
    assert signals.name(signal.SIGRTMAX) == "SIGRTMAX"
    assert signals.parse("0", allow_zero=True) == 0
    with pytest.raises(ValueError):
        signals.parse("0")


def test_run_does_not_import_heavy_modules() -> None:
    """PID 1 stays lean: none of the rendering or convenience libraries get loaded."""
    env = base_env(ENTRYPOINT_TEMPLATES_DIR="/nonexistent", ENTRYPOINT_HOOKS_DIR="/nonexistent")
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-X", "importtime",
                           "-m", "entrypoint", "run", "--", "true"], capture_output=True, env=env, timeout=20)
    if done.returncode != 0 and b"unshare" in done.stderr:
        pytest.skip("needs unshare --pid")
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert "entrypoint.supervise.loop" in imported
    heavy = {"pydantic", "jinja2", "watchdog", "psutil", "argparse", "subprocess", "enum", "signal",
             "ctypes", "socket", "logging", "entrypoint.supervise.steps.hooks",
             "entrypoint.supervise.steps.waits"}
    assert heavy & imported == set()


def test_bad_wait_url_is_refused_before_any_hook_runs(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    hook = hooks / "10-mark.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    done = subprocess.run(
        [*entrypoint_exe(), "run", "--hooks-dir", str(hooks), "--wait", "bogus://db:5432",
         "--", "true"],
        capture_output=True, text=True, env=base_env(), timeout=30,
    )
    assert done.returncode == 2
    assert "bogus://db:5432" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize(("value", "names", "paths"), [
    ("143, 130", ["143", "130"], ["143", "130"]),
    ("tcp://db:5432 file:///tmp/x", ["tcp://db:5432", "file:///tmp/x"], ["tcp://db:5432 file:///tmp/x"]),
    (" A, B  C", ["A", "B", "C"], ["A", "B  C"]),
    ("/var/log/a b.log,/var/log/c.log", ["/var/log/a", "b.log", "/var/log/c.log"],
     ["/var/log/a b.log", "/var/log/c.log"]),
    ("  ", [], []), (",,", [], []),
])
def test_one_list_rule_per_variable_for_every_command(value: str, names: list[str], paths: list[str]) -> None:
    """Path lists split at commas, other lists at commas and whitespace: run and render/check alike."""
    from entrypoint.context.settings import load_settings

    assert parse_run_args(["x"], {"ENTRYPOINT_ENV_FILE": value}).env_files == paths
    assert load_settings({"ENTRYPOINT_ENV_FILE": value}).env_files == paths
    assert load_settings({"ENTRYPOINT_ONLY": value}).only == names
    assert parse_run_args(["x"], {"ENTRYPOINT_WAIT": value}).waits == names


def test_a_bad_setting_is_78_naming_it_in_run_and_render_alike(tmp_path: Path) -> None:
    for command in (["run", "--", "true"], ["render", "--clean-env", str(tmp_path / "none")]):
        done = subprocess.run([*entrypoint_exe(), *command], capture_output=True,
                              env=base_env(ENTRYPOINT_SYNTAX="perl"), timeout=20)
        assert done.returncode == 78, (command, done.stderr)
        assert b"ENTRYPOINT_SYNTAX" in done.stderr and b"Traceback" not in done.stderr
