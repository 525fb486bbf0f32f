"""`check --services-dir DIR`: the command, as CI runs it: every problem one line, all at once, exit 78."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint.options import DEFAULT_SERVICES_DIR, parse_run_args
from tests.pid1_helpers import base_env, wait_until
from tests.test_imports import HEAVY, LIGHT_PATH_AVOIDS, imported_by, top_level
from tests.test_services_config import BAD, service

pytestmark = pytest.mark.timeout(120)


def check(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", "check", *args], cwd=cwd, env=base_env(**env),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def good_services(root: Path) -> Path:
    """nginx -> app -> db, the s6-rc ways of saying so, and every down-signal spelling."""
    service(root, "db", down_signal="SIGINT\n", notification_fd="3\n")
    service(root, "app", dependencies="# the database first\n\ndb\n", down_signal="TERM",
            ready="unix:///run/app.sock\n", essential="", restart="on-failure\n", timeout_up="2.5")
    service(root, "nginx", deps_d=("app",), down_signal="15", ready="http://127.0.0.1:8080/\n",
            user="www-data")
    service(root, "cron", type="longrun\n", down_signal="QUIT")
    return root


def test_good_service_directories_pass(tmp_path: Path) -> None:
    good_services(tmp_path / "services")
    done = check(["--services-dir", "services"], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "entrypoint check: 0 template(s) and 4 service(s) OK\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_service_directory_is_one_line(tmp_path: Path, case: str) -> None:
    setup, file, fragment = BAD[case]
    good_services(tmp_path / "services")
    setup(tmp_path / "services", case)
    done = check(["--services-dir", "services"], tmp_path)
    assert done.returncode == 78
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"services/{case}/{file}: ") and fragment in lines[0], lines
    assert lines[1] == "entrypoint check: 1 problem(s) in 1 file(s), 0 template(s) and 5 service(s) checked"
    assert done.stdout == ""


def test_every_bad_service_directory_reported_at_once(tmp_path: Path) -> None:
    root = tmp_path / "services"
    for case, (setup, _, _) in BAD.items():
        setup(root, case)
    service(root, "loop-a", dependencies="loop-b")
    service(root, "loop-b", deps_d=("loop-a",))
    done = check(["--services-dir", str(root)], tmp_path)
    assert done.returncode == 78
    lines = done.stderr.splitlines()
    for case, (_, file, fragment) in BAD.items():
        assert any(line.startswith(f"{root}/{case}/{file}: ") and fragment in line for line in lines), case
    assert f"{root}/loop-a/dependencies: dependency cycle: loop-a -> loop-b -> loop-a" in lines
    problems = len(BAD) + 1
    assert len(lines) == problems + 1
    assert lines[-1] == (f"entrypoint check: {problems} problem(s) in {problems} file(s), "
                         f"0 template(s) and {len(BAD) + 2} service(s) checked")


def test_json_and_github_formats(tmp_path: Path) -> None:
    root = tmp_path / "services"
    service(root, "web", restart="sometimes", down_signal="NOPE")
    done = check(["--services-dir", "services", "--format", "json"], tmp_path)
    assert done.returncode == 78
    assert json.loads(done.stdout) == [
        {"file": "services/web/restart", "line": None, "col": None, "variable": None,
         "message": "expected always, on-failure or no, got 'sometimes'"},
        {"file": "services/web/down-signal", "line": None, "col": None, "variable": None,
         "message": "not a signal: 'NOPE' (expected a name such as TERM or SIGTERM, or a number)"},
    ]
    assert done.stderr == ("entrypoint check: 2 problem(s) in 2 file(s), "
                           "0 template(s) and 1 service(s) checked\n")
    done = check(["--services-dir", "services", "--format", "github"], tmp_path)
    assert done.returncode == 78
    assert done.stdout.splitlines() == [
        "::error file=services/web/restart::expected always, on-failure or no, got 'sometimes'",
        "::error file=services/web/down-signal::not a signal: 'NOPE' (expected a name such as TERM or "
        "SIGTERM, or a number)",
    ]


def test_templates_and_services_in_one_check(tmp_path: Path) -> None:
    (tmp_path / "app.conf.template").write_text("port=${PORT}\n")
    service(tmp_path / "services", "web", run=False)
    done = check(["--services-dir", "services", "app.conf.template"], tmp_path)
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        "app.conf.template:1:6: PORT: not set",
        "services/web/run: missing: every service needs an executable run file",
        "entrypoint check: 2 problem(s) in 2 file(s), 1 template(s) and 1 service(s) checked",
    ]


def test_the_environment_variable_names_the_directory(tmp_path: Path) -> None:
    service(tmp_path / "services", "web", timeout_up="0")
    done = check([], tmp_path, ENTRYPOINT_SERVICES_DIR=str(tmp_path / "services"))
    assert done.returncode == 78
    assert done.stderr.splitlines()[0] == (f"{tmp_path}/services/web/timeout-up: expected seconds greater "
                                           "than 0 (e.g. 30 or 2.5), got '0'")
    done = check(["--services-dir", str(tmp_path / "none")], tmp_path,  # the option wins
                 ENTRYPOINT_SERVICES_DIR=str(tmp_path / "services"))
    assert done.returncode == 78
    assert done.stderr.startswith(f"{tmp_path}/none: services directory does not exist")


def test_without_the_option_check_reads_no_services_directory(tmp_path: Path) -> None:
    """`run`'s default directory is not check's: a template check on a CI host stays what it was."""
    (tmp_path / "ok.conf.template").write_text("ok\n")
    done = check(["ok.conf.template"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "entrypoint check: 1 template(s) OK\n")
    done = check([], tmp_path, ENTRYPOINT_TEMPLATES_DIR=str(tmp_path / "nothing"))
    assert done.returncode == 78 and "no template to check" in done.stderr  # as before


def test_a_missing_or_file_services_directory_is_a_problem_for_check(tmp_path: Path) -> None:
    done = check(["--services-dir", "gone"], tmp_path)
    assert done.returncode == 78 and done.stderr.splitlines()[0] == "gone: services directory does not exist"
    (tmp_path / "file").write_text("")
    done = check(["--services-dir", "file"], tmp_path)
    assert done.returncode == 78
    assert done.stderr.splitlines()[0] == "file: services directory is not a directory"


def test_an_empty_services_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    done = check(["--services-dir", "services"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "entrypoint check: 0 template(s) and 0 service(s) OK\n")


def test_check_of_services_and_a_shell_template_stays_light(tmp_path: Path) -> None:
    (tmp_path / "app.conf.tmpl").write_text("listen ${PORT0:-8080}\n")
    good_services(tmp_path / "services")
    done, modules = imported_by(["check", "--services-dir", "services", "app.conf.tmpl"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "entrypoint.supervise.services.config" in modules
    assert HEAVY & top_level(modules) == set()
    assert (LIGHT_PATH_AVOIDS | {"re"}) & modules == set()


def test_run_reads_services_dir_from_the_one_option_table() -> None:
    assert DEFAULT_SERVICES_DIR == "/etc/entrypoint/services"
    assert parse_run_args(["--", "true"], {}).services_dir == DEFAULT_SERVICES_DIR
    assert parse_run_args(["--", "true"], {"ENTRYPOINT_SERVICES_DIR": "/srv/s"}).services_dir == "/srv/s"
    opts = parse_run_args(["--services-dir", "/a", "--", "true"], {"ENTRYPOINT_SERVICES_DIR": "/srv/s"})
    assert opts.services_dir == "/a" and "services_dir" in opts.from_cli


def test_check_watch_checks_the_services_again_on_any_change(tmp_path: Path) -> None:
    from tests.test_watch_cli import Watcher

    root = tmp_path / "services"
    service(root, "web", restart="sometimes\n")
    w = Watcher(tmp_path, "check", "--services-dir", "services")
    try:
        wait_until(lambda: "services/web/restart: expected always" in w.stderr(), 15, "the first check")
        (root / "web" / "restart").write_text("always\n")  # not a template suffix: counts all the same
        wait_until(lambda: "0 template(s) and 1 service(s) OK" in w.stdout(), 15, "the fixed directory")
        (root / "db").mkdir()  # a new service without run
        wait_until(lambda: "services/db/run: missing" in w.stderr(), 15, "the new service checked")
        assert w.stop(signal.SIGINT) == 0
    finally:
        w.close()
