"""`run --secret NAME`: NAME from the file NAME_FILE names, as PID 1 of a real PID namespace.

The secret's value must reach the app and nothing else: not a log line
(``-v`` included), not an error message, not ``entrypoint env``, not PID 1's
own ``/proc/1/environ``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pid1_helpers import (
    Runtime,
    base_env,
    children_of,
    needs_ns,
    prog,
    read_lines,
    run_ns,
    start_markers,
    wait_until,
)

pytestmark = [needs_ns, pytest.mark.timeout(60)]

SECRET = "pa55-w0rd-7Q"


def environ_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    entries: list[str] = json.loads(done.stdout)["environ"]
    return dict(entry.partition("=")[::2] for entry in entries)


@pytest.fixture()
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "db-password"
    path.write_text(SECRET + "\n")
    path.chmod(0o400)
    return path


def test_secret_is_exported_and_its_file_variable_removed(secret_file: Path, tmp_path: Path) -> None:
    two = tmp_path / "two-newlines"
    two.write_text("line\n\n")
    env = base_env(DB_PASSWORD_FILE=str(secret_file), TWO_FILE=str(two), SSL_CERT_FILE="/etc/ssl/x.pem",
                   OTHER_FILE=str(secret_file))
    done = run_ns(["--secret", "DB_PASSWORD", "--secret", "TWO", "--", *prog("echo_all.py")], env=env)
    seen = environ_of(done)
    assert seen["DB_PASSWORD"] == SECRET          # one trailing newline removed
    assert seen["TWO"] == "line\n"                # ... only one
    assert "DB_PASSWORD_FILE" not in seen and "TWO_FILE" not in seen
    # Not declared: untouched, never read.
    assert seen["SSL_CERT_FILE"] == "/etc/ssl/x.pem" and seen["OTHER_FILE"] == str(secret_file)
    assert "OTHER" not in seen


def test_env_variable_is_a_whitespace_or_comma_list(secret_file: Path, tmp_path: Path) -> None:
    (tmp_path / "b").write_text("bee")
    (tmp_path / "c").write_text("sea")
    env = base_env(ENTRYPOINT_SECRET=" A, B  C", A_FILE=str(secret_file), B_FILE=str(tmp_path / "b"),
                   C_FILE=str(tmp_path / "c"))
    seen = environ_of(run_ns(["--", *prog("echo_all.py")], env=env))
    assert (seen["A"], seen["B"], seen["C"]) == (SECRET, "bee", "sea")
    assert not {"A_FILE", "B_FILE", "C_FILE"} & set(seen)


def test_a_plain_value_without_file_is_kept(tmp_path: Path) -> None:
    done = run_ns(["--secret", "API_KEY", "--", *prog("echo_all.py")], env=base_env(API_KEY="dev"))
    seen = environ_of(done)
    assert seen["API_KEY"] == "dev"


def test_secret_never_leaves_the_app(secret_file: Path, tmp_path: Path) -> None:
    """-v logs, PID 1's /proc/1/environ and cmdline: none shows the value; the app's environ does."""
    out = tmp_path / "out"
    env = base_env(DB_PASSWORD_FILE=str(secret_file))
    with out.open("wb") as f, Runtime(["-v", "--secret", "DB_PASSWORD", "--", "/bin/sh", "-c",
                                       'echo ready; exec sleep 60'], stdout=f, env=env) as rt:
        wait_until(lambda: "ready" in read_lines(out), 15, "the app")
        app = wait_until(lambda: children_of(rt.pid), 10, "the app's pid")[0]
        assert SECRET.encode() in Path(f"/proc/{app}/environ").read_bytes()
        for what in ("environ", "cmdline"):
            assert SECRET.encode() not in Path(f"/proc/{rt.pid}/{what}").read_bytes()
        rt.signal(signal.SIGTERM)
        _, err = rt.communicate(15)
    assert rt.proc.returncode == 128 + signal.SIGTERM
    assert b"secrets for the app: DB_PASSWORD" in err  # -v says which, by name
    assert SECRET.encode() not in err


@pytest.mark.parametrize("fmt", ["json", "shell", "dotenv"])
def test_entrypoint_env_never_prints_a_secret(secret_file: Path, fmt: str) -> None:
    done = subprocess.run([sys.executable, "-m", "entrypoint", "env", "--format", fmt],
                          env=base_env(DB_PASSWORD_FILE=str(secret_file)), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"DB_PASSWORD_FILE" in done.stdout
    assert SECRET.encode() not in done.stdout + done.stderr



@pytest.mark.parametrize(("case", "message"), [
    ("both", "--secret DB_PASSWORD: both DB_PASSWORD and DB_PASSWORD_FILE are set; set only one"),
    ("missing", "--secret DB_PASSWORD: DB_PASSWORD_FILE points to '{dir}/nope', which cannot be read: "
                "No such file or directory"),
    ("directory", "--secret DB_PASSWORD: DB_PASSWORD_FILE points to '{dir}', which cannot be read: "
                  "Is a directory"),
    ("huge", "--secret DB_PASSWORD: DB_PASSWORD_FILE: file '{dir}/huge' is larger than 1 MiB"),
    ("neither", "--secret DB_PASSWORD: neither DB_PASSWORD nor DB_PASSWORD_FILE is set"),
    # Siblings that would hang or never end in PID 1 (every signal blocked): refused, not read.
    ("fifo", "--secret DB_PASSWORD: DB_PASSWORD_FILE points to '{dir}/fifo', which is not a regular file"),
    ("device", "--secret DB_PASSWORD: DB_PASSWORD_FILE points to '/dev/zero', which is not a regular file"),
])
def test_bad_secret_is_78_naming_it_and_nothing_starts(secret_file: Path, tmp_path: Path, case: str,
                                                       message: str) -> None:
    start, dest, marker = start_markers(tmp_path)
    env = base_env()
    if case == "both":
        env.update(DB_PASSWORD="also-" + SECRET, DB_PASSWORD_FILE=str(secret_file))
    elif case == "missing":
        env["DB_PASSWORD_FILE"] = str(tmp_path / "nope")
    elif case == "directory":
        env["DB_PASSWORD_FILE"] = str(tmp_path)
    elif case == "fifo":
        os.mkfifo(tmp_path / "fifo")
        env["DB_PASSWORD_FILE"] = str(tmp_path / "fifo")
    elif case == "device":
        env["DB_PASSWORD_FILE"] = "/dev/zero"
    elif case == "huge":
        (tmp_path / "huge").write_text(SECRET * 100_000)
        env["DB_PASSWORD_FILE"] = str(tmp_path / "huge")
    ran = tmp_path / "app-ran"
    done = run_ns(["-v", *start, "--secret", "DB_PASSWORD", "--", "/bin/sh", "-c", f"touch {ran}"], env=env)
    assert done.returncode == 78, done.stderr
    errors = [line for line in done.stderr.decode().splitlines() if "error:" in line]
    assert errors == ["[entrypoint] error: " + message.format(dir=tmp_path)]
    assert SECRET.encode() not in done.stderr
    assert not dest.exists() and not marker.exists() and not ran.exists()


def test_bad_secret_name_is_a_usage_error() -> None:
    done = run_ns(["--secret", "DB-PASSWORD", "--", "true"], env=base_env())
    assert done.returncode == 2
    assert done.stderr == b"[entrypoint] error: --secret: 'DB-PASSWORD' is not a variable name\n"


def test_root_only_secret_reaches_an_app_running_as_another_user(secret_file: Path) -> None:
    """Read by PID 1 (root) before the switch, as the official images' file_env does before gosu."""
    assert os.stat(secret_file).st_mode & 0o777 == 0o400
    done = run_ns(["--user", "nobody", "--secret", "DB_PASSWORD", "--", "/bin/sh", "-c",
                   'id -u; printf "%s\\n" "$DB_PASSWORD"; cat "$DB_PASSWORD_FILE" 2>/dev/null; echo end'],
                  env=base_env(DB_PASSWORD_FILE=str(secret_file)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["65534", SECRET, "end"]


def test_bytes_that_are_not_utf8_reach_the_app_unchanged(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"\xff\xfe-key\n")
    (tmp_path / "link").symlink_to(tmp_path / "key")  # Kubernetes secret volumes are symlinks
    done = run_ns(["--secret", "KEY", "--", "/bin/sh", "-c", 'printf "%s" "$KEY"'],
                  env=base_env(KEY_FILE=str(tmp_path / "link")))
    assert (done.returncode, done.stdout) == (0, b"\xff\xfe-key"), done.stderr
