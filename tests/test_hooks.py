"""Hook directory: real scripts run by a real /bin/sh, with `sort -V` as the ordering oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoint import log
from entrypoint.errors import HookError
from entrypoint.supervise.steps.hooks import filevercmp, hook_files, run_hooks, version_sorted

pytestmark = pytest.mark.timeout(60)


def write(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENTRYPOINT_STATE_FILE": ""}


def gnu_sort_v(names: list[str]) -> list[str]:
    data = b"".join(os.fsencode(n) + b"\n" for n in names)
    out = subprocess.run(["sort", "-V"], input=data, capture_output=True, env={"LC_ALL": "C"}, check=True)
    return [os.fsdecode(line) for line in out.stdout.splitlines()]


# --- ordering ----------------------------------------------------------------


def test_version_order_of_hooks(tmp_path: Path) -> None:
    log_file = tmp_path / "order.log"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("10-a.sh", "9-b.sh", "20-c.envsh", "1-first.sh", "100-last.sh"):
        write(hooks / name, f'echo {name} >> "$ORDER_LOG"\n')
    env = run_hooks(str(hooks), {**base_env(), "ORDER_LOG": str(log_file)})
    assert log_file.read_text().split() == ["1-first.sh", "9-b.sh", "10-a.sh", "20-c.envsh", "100-last.sh"]
    assert env["ORDER_LOG"] == str(log_file)


def test_order_matches_find_sort_v(tmp_path: Path) -> None:
    """The exact pipeline nginx uses: `find DIR -follow -type f -print | sort -V`."""
    hooks = tmp_path / "hooks"
    (hooks / "sub").mkdir(parents=True)
    names = ["a.sh", "a1.sh", "a10.sh", "a2.sh", "1.0~rc1.sh", "1.0.sh", "1.0a.sh", "_x.sh", "Z.sh"]
    for n in names:
        write(hooks / n, "true\n")
    write(hooks / "sub" / "5.sh", "true\n")
    found = subprocess.run(
        ["find", str(hooks), "-follow", "-type", "f", "-print"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert hook_files(str(hooks)) == gnu_sort_v(found)


NAME_CHARS = st.sampled_from([*"0123456789.-_~aAbzZ", ".sh", ".envsh", "10", "~rc"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(NAME_CHARS, max_size=8).map("".join), min_size=1, max_size=25, unique=True))
def test_version_sort_equals_gnu_sort_v(names: list[str]) -> None:
    names = [n for n in names if n]
    assert version_sorted(names) == gnu_sort_v(names)
    prefixed = ["/etc/entrypoint.d/" + n for n in names]
    assert version_sorted(prefixed) == gnu_sort_v(prefixed)


def test_filevercmp_basics() -> None:
    assert filevercmp(b"9-b.sh", b"10-a.sh") < 0
    assert filevercmp(b"1.0~rc1", b"1.0") < 0
    assert filevercmp(b"a", b"a") == 0


# --- envsh -------------------------------------------------------------------


def test_envsh_exports_and_unsets_reach_the_env(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "10-set.envsh", "export NEW_VAR=hello\nunset DOOMED\nNOT_EXPORTED=1\n")
    write(hooks / "20-use.sh", 'test "$NEW_VAR" = hello && test -z "${DOOMED+x}"\n')
    env = run_hooks(str(hooks), {**base_env(), "DOOMED": "bye", "KEPT": "k"})
    assert env["NEW_VAR"] == "hello"
    assert "DOOMED" not in env
    assert "NOT_EXPORTED" not in env
    assert env["KEPT"] == "k"


def test_shell_managed_variables_are_not_added(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1.envsh", "cd /\n")
    start = base_env()
    assert run_hooks(str(hooks), start) == start
    with_pwd = {**start, "PWD": "/somewhere"}
    assert run_hooks(str(hooks), with_pwd) == with_pwd


HOSTILE = [
    "line1\nline2\n",
    'it\'s "quoted" `and` $(id) ${HOME} $$ \\ back',
    "trailing space ",
    "=equals=in=value",
    "",
    "\t tab and unicode: héllo ☃",
    "a\nB=injected",
]


def test_hostile_values_survive_exactly(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "50-noop.envsh", 'export ADDED="$ORIG_0"\n')
    env_in = {**base_env(), **{f"ORIG_{i}": v for i, v in enumerate(HOSTILE)}}
    env = run_hooks(str(hooks), env_in)
    assert env == {**env_in, "ADDED": HOSTILE[0]}
    assert "B" not in env


def test_envsh_cannot_write_to_the_result_pipe(tmp_path: Path) -> None:
    """The sourced file runs with fd 3 closed, so it cannot corrupt the env dump."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1.envsh", "if { true >&3; } 2>/dev/null; then export FD3=open; fi\nexport OK=1\n")
    env = run_hooks(str(hooks), base_env())
    assert env.get("OK") == "1"
    assert "FD3" not in env


def test_envsh_is_sourced_with_set_e(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1-bad.envsh", "false\nexport NEVER=1\n")
    with pytest.raises(HookError, match=r"1-bad\.envsh failed with exit code 1"):
        run_hooks(str(hooks), base_env())


# --- skipping, failures -------------------------------------------------------


def test_non_executable_and_other_suffixes_are_skipped(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "ran"
    write(hooks / "1-plain.sh", f"touch {marker}\n", mode=0o644)
    write(hooks / "2-plain.envsh", "export NOPE=1\n", mode=0o644)
    write(hooks / "3-readme.txt", f"touch {marker}\n")
    write(hooks / "4-noext", f"touch {marker}\n")
    old = log.level()
    log.set_level(log.VERBOSE)
    try:
        env = run_hooks(str(hooks), base_env())
    finally:
        log.set_level(old)
    assert not marker.exists()
    assert "NOPE" not in env
    err = capfd.readouterr().err
    assert "skipping" in err and "1-plain.sh: not executable" in err
    assert "3-readme.txt: not a *.sh or *.envsh file" in err


def test_logs_names_never_values(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1.envsh", "export SECRET=s3cr3t-value\n")
    old = log.level()
    log.set_level(log.VERBOSE)
    try:
        run_hooks(str(hooks), {**base_env(), "PASSWORD": "hunter2"})
    finally:
        log.set_level(old)
    err = capfd.readouterr().err
    assert "1.envsh" in err
    assert "s3cr3t" not in err and "hunter2" not in err


def test_missing_dir_is_nothing(tmp_path: Path) -> None:
    env = {"A": "1"}
    assert run_hooks(str(tmp_path / "nope"), env) == env


def test_failing_hook_stops_later_hooks(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "later"
    write(hooks / "10-fail.sh", "exit 3\n")
    write(hooks / "20-later.sh", f"touch {marker}\n")
    with pytest.raises(HookError) as info:
        run_hooks(str(hooks), base_env())
    assert str(info.value) == f"hook {hooks / '10-fail.sh'} failed with exit code 3"
    assert info.value.exit_code == 78
    assert not marker.exists()


def test_hook_killed_by_signal(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1-die.sh", "kill -TERM $$\n")
    with pytest.raises(HookError, match=r"1-die\.sh failed with exit code 143 \(killed by SIGTERM\)"):
        run_hooks(str(hooks), base_env())


def test_script_without_shebang_runs_with_sh(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "ran"
    write(hooks / "1.sh", f"touch {marker}\n")
    run_hooks(str(hooks), base_env())
    assert marker.exists()


def test_hook_gets_env_argv_and_stdio(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    out = tmp_path / "out"
    write(hooks / "1.sh", f'#!/bin/sh\nprintf "%s|%s|%s" "$0" "$#" "$ONLY" > {out}\n')
    run_hooks(str(hooks), {"ONLY": "me", "PATH": "/usr/bin:/bin"})
    assert out.read_text() == f"{hooks / '1.sh'}|0|me"


def test_hook_starts_with_clean_signal_state(tmp_path: Path) -> None:
    """Even when the caller (PID 1) has blocked and ignored signals, the hook must not inherit that."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    out = tmp_path / "status"
    write(hooks / "1.sh", f"#!/bin/sh\ngrep -E '^Sig(Blk|Ign)' /proc/self/status > {out}\n")
    code = (
        "import signal, sys\n"
        "from entrypoint.supervise.steps.hooks import run_hooks\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1})\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        f"run_hooks({str(hooks)!r}, {{'PATH': '/usr/bin:/bin'}})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    lines = dict(line.split(":\t") for line in out.read_text().splitlines())
    # grep itself is the process reading its status: it inherits what the hook had.
    assert int(lines["SigBlk"], 16) == 0
    assert int(lines["SigIgn"], 16) == 0


def test_output_passes_through(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "1.sh", "#!/bin/sh\necho out-line; echo err-line >&2\n")
    write(hooks / "2.envsh", "echo sourced-out\nexport X=1\n")
    code = (
        "from entrypoint.supervise.steps.hooks import run_hooks\n"
        f"run_hooks({str(hooks)!r}, {{'PATH': '/usr/bin:/bin'}})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "out-line\nsourced-out\n"
    assert proc.stderr == "err-line\n"


def test_no_zombies_left(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for i in range(5):
        write(hooks / f"{i}.sh", "true\n")
        write(hooks / f"{i}.envsh", "export A=1\n")
    run_hooks(str(hooks), base_env())
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


# --- through the CLI: `entrypoint run --hooks-dir` ------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoint", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_envsh_exports_reach_the_app(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    write(hooks / "10-set.envsh", "export FROM_HOOK='two\nlines $(id)'\nunset GONE\n")
    env = {**base_env(), "GONE": "x", "KEEP": "it's"}
    script = 'printf "%s|%s|%s" "$FROM_HOOK" "${GONE-unset}" "$KEEP"'
    proc = run_cli("--hooks-dir", str(hooks), "--", "sh", "-c", script, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "two\nlines $(id)|unset|it's"


def test_cli_failing_hook_exits_78_and_starts_nothing(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "app-ran"
    write(hooks / "10-fail.sh", "#!/bin/sh\nexit 4\n")
    proc = run_cli("--hooks-dir", str(hooks), "--", "touch", str(marker), env=base_env())
    assert proc.returncode == 78
    assert f"hook {hooks / '10-fail.sh'} failed with exit code 4" in proc.stderr
    assert not marker.exists()
