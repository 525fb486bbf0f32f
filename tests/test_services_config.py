"""--services-dir: real service directories on disk, every bad one alone and all at once, good ones.

The expected lines are the contract of ``check --services-dir`` and of ``run`` refusing a broken
directory: ``DIR/NAME/FILE: message``, one per problem.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.errors import EX_CONFIG, ServicesError
from entrypoint.supervise.services import config
from entrypoint.supervise.services.config import ServiceProblem
from entrypoint.supervise.unit import SERVICE, Unit, link

pytestmark = pytest.mark.timeout(30)

RUN = "#!/bin/sh\nexec sleep 1\n"


def service(root: Path, name: str, *, run: bool = True, deps_d: tuple[str, ...] = (),
            **files: str | bytes) -> Path:
    """DIR/NAME with an executable run (unless ``run=False``) and FILE=content (``_`` -> ``-``)."""
    directory = root / name
    directory.mkdir(parents=True)
    if run:
        (directory / "run").write_text(RUN)
        (directory / "run").chmod(0o755)
    if deps_d:
        (directory / "dependencies.d").mkdir()
        for dep in deps_d:
            (directory / "dependencies.d" / dep).touch()
    for file, content in files.items():
        path = directory / file.replace("_", "-")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return directory


def lines(root: Path) -> list[str]:
    return [p.text() for p in config.problems(str(root))[1]]


# -- every bad service directory: (setup, FILE, message fragment) --------------------------------

Setup = Callable[[Path, str], object]


def _run_not_executable(root: Path, name: str) -> None:
    (service(root, name) / "run").chmod(0o644)


def _run_directory(root: Path, name: str) -> None:
    (service(root, name, run=False) / "run").mkdir()


def _run_dangling(root: Path, name: str) -> None:
    (service(root, name, run=False) / "run").symlink_to("nowhere")


def _finish_not_executable(root: Path, name: str) -> None:
    (service(root, name, finish="#!/bin/sh\n")).joinpath("finish").chmod(0o644)


def _unreadable(root: Path, name: str) -> None:
    (service(root, name) / "restart").mkdir()  # reading a directory fails, even as root


def _deps_d_file(root: Path, name: str) -> None:
    (service(root, name) / "dependencies.d").write_text("db\n")


BAD: dict[str, tuple[Setup, str, str]] = {
    "no-run": (lambda r, n: service(r, n, run=False), "run", "missing: every service needs an executable"),
    "run-mode": (_run_not_executable, "run", "not executable (chmod +x)"),
    "run-dir": (_run_directory, "run", "not a regular file"),
    "run-dangling": (_run_dangling, "run", "cannot read: No such file or directory"),
    "finish-mode": (_finish_not_executable, "finish", "not executable"),
    "unknown-dep": (lambda r, n: service(r, n, dependencies="ghost\n"), "dependencies",
                    "unknown service 'ghost'"),
    "unknown-dep-d": (lambda r, n: service(r, n, deps_d=("phantom",)), "dependencies.d/phantom",
                      "unknown service 'phantom'"),
    "s6-overlay-base": (lambda r, n: service(r, n, deps_d=("base",)), "dependencies.d/base",
                        "s6-overlay's base bundle"),
    "self-dep": (lambda r, n: service(r, n, dependencies="self-dep\n"), "dependencies",
                 "self-dep depends on itself"),
    "deps-d-file": (_deps_d_file, "dependencies.d", "not a directory"),
    "ready-scheme": (lambda r, n: service(r, n, ready="ftp://host/x\n"), "ready", "bad URL: unsupported URL"),
    "ready-port": (lambda r, n: service(r, n, ready="tcp://db\n"), "ready", "bad URL: no port"),
    "ready-relative": (lambda r, n: service(r, n, ready="unix://run/app.sock\n"), "ready",
                       "bad URL: expected unix:///ABSOLUTE/PATH"),
    "ready-two": (lambda r, n: service(r, n, ready="tcp://a:1\ntcp://b:2\n"), "ready", "expected one --wait"),
    "ready-empty": (lambda r, n: service(r, n, ready="\n"), "ready", "found 0"),
    "ready-and-fd": (lambda r, n: service(r, n, ready="tcp://db:5432", notification_fd="3"), "ready",
                     "notification-fd is set too"),
    "fd-0": (lambda r, n: service(r, n, notification_fd="0\n"), "notification-fd", "0 is standard input"),
    "fd-1": (lambda r, n: service(r, n, notification_fd="1\n"), "notification-fd", "1 is standard output"),
    "fd-2": (lambda r, n: service(r, n, notification_fd="2\n"), "notification-fd", "2 is standard error"),
    "fd-word": (lambda r, n: service(r, n, notification_fd="abc\n"), "notification-fd",
                "expected a file descriptor number (3 or more), got 'abc'"),
    "fd-negative": (lambda r, n: service(r, n, notification_fd="-1"), "notification-fd", "got '-1'"),
    "fd-huge": (lambda r, n: service(r, n, notification_fd="99999999999"), "notification-fd", "too large"),
    "fd-empty": (lambda r, n: service(r, n, notification_fd=""), "notification-fd", "got ''"),
    "sig-word": (lambda r, n: service(r, n, down_signal="BOGUS\n"), "down-signal", "not a signal: 'BOGUS'"),
    "sig-zero": (lambda r, n: service(r, n, down_signal="0"), "down-signal", "not a signal: '0'"),
    "sig-number": (lambda r, n: service(r, n, down_signal="999"), "down-signal", "not a signal: '999'"),
    "sig-two": (lambda r, n: service(r, n, down_signal="TERM\nHUP\n"), "down-signal", "not a signal"),
    "timeout-zero": (lambda r, n: service(r, n, timeout_up="0\n"), "timeout-up", "greater than 0"),
    "timeout-negative": (lambda r, n: service(r, n, timeout_up="-5"), "timeout-up", "got '-5'"),
    "timeout-word": (lambda r, n: service(r, n, timeout_up="soon"), "timeout-up", "got 'soon'"),
    "timeout-nan": (lambda r, n: service(r, n, timeout_up="nan"), "timeout-up", "got 'nan'"),
    "timeout-inf": (lambda r, n: service(r, n, timeout_up="inf"), "timeout-up", "got 'inf'"),
    "timeout-underscore": (lambda r, n: service(r, n, timeout_up="1_000"), "timeout-up", "got '1_000'"),
    "restart-word": (lambda r, n: service(r, n, restart="sometimes\n"), "restart",
                     "expected always, on-failure or no, got 'sometimes'"),
    "restart-empty": (lambda r, n: service(r, n, restart=""), "restart", "got ''"),
    "unreadable": (_unreadable, "restart", "cannot read: Is a directory"),
    "not-utf8": (lambda r, n: service(r, n, restart=b"\xff\xfe"), "restart", "not UTF-8 text"),
    "too-large": (lambda r, n: service(r, n, ready=b"#" * (config.MAX_FILE_SIZE + 1)), "ready",
                  "larger than 64 KiB"),
    "user-no-user": (lambda r, n: service(r, n, user=":www"), "user", "expected USER[:GROUP]"),
    "user-no-group": (lambda r, n: service(r, n, user="www:"), "user", "got 'www:'"),
    "user-space": (lambda r, n: service(r, n, user="w w"), "user", "got 'w w'"),
    "user-empty": (lambda r, n: service(r, n, user="\n"), "user", "got ''"),
    "user-colons": (lambda r, n: service(r, n, user="a:b:c"), "user", "got 'a:b:c'"),
    "oneshot": (lambda r, n: service(r, n, run=False, type="oneshot\n", up="echo hi\n"), "type",
                "s6-rc type 'oneshot' is not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_service_directory_alone(tmp_path: Path, case: str) -> None:
    setup, file, fragment = BAD[case]
    setup(tmp_path, case)
    service(tmp_path, "fine")
    services, found = config.problems(str(tmp_path))
    assert [s.name for s in services] == ["fine"]  # the broken one is not offered to the runtime
    assert len(found) == 1, found
    assert found[0].path == f"{tmp_path}/{case}/{file}"
    assert fragment in found[0].message, found[0].message


def test_every_bad_service_directory_at_once(tmp_path: Path) -> None:
    for case, (setup, _, _) in BAD.items():
        setup(tmp_path, case)
    _two_cycles(tmp_path)
    service(tmp_path, "fine")
    services, found = config.problems(str(tmp_path))
    assert [s.name for s in services] == ["fine"]
    for case, (_, file, fragment) in BAD.items():
        mine = [p for p in found if p.path == f"{tmp_path}/{case}/{file}"]
        assert len(mine) == 1 and fragment in mine[0].message, (case, mine)
    assert len(found) == len(BAD) + 2  # and the two cycles
    with pytest.raises(ServicesError) as raised:
        config.load(str(tmp_path))
    assert raised.value.exit_code == EX_CONFIG == 78
    assert str(raised.value).splitlines() == [p.text() for p in found]


def _two_cycles(root: Path) -> None:
    service(root, "c1", dependencies="c2\n")
    service(root, "c2", deps_d=("c3",))
    service(root, "c3", dependencies="# loops back\nc1\n")
    service(root, "x1", dependencies="x2")
    service(root, "x2", dependencies="x1")


def test_a_cycle_names_every_service_in_it_once(tmp_path: Path) -> None:
    _two_cycles(tmp_path)
    service(tmp_path, "outside", dependencies="c1\n")  # depends on a cycle, is not in one
    assert lines(tmp_path) == [
        f"{tmp_path}/c1/dependencies: dependency cycle: c1 -> c2 -> c3 -> c1",
        f"{tmp_path}/x1/dependencies: dependency cycle: x1 -> x2 -> x1",
    ]
    assert [s.name for s in config.problems(str(tmp_path))[0]] == ["outside"]


def test_a_cycle_found_through_dependencies_d_names_that_file(tmp_path: Path) -> None:
    service(tmp_path, "a", deps_d=("b",))
    service(tmp_path, "b", deps_d=("a",))
    assert lines(tmp_path) == [f"{tmp_path}/a/dependencies.d/b: dependency cycle: a -> b -> a"]


def test_a_dependency_on_a_broken_service_is_not_unknown(tmp_path: Path) -> None:
    service(tmp_path, "app", dependencies="db\n")
    service(tmp_path, "db", run=False)
    assert lines(tmp_path) == [f"{tmp_path}/db/run: missing: every service needs an executable run file"]


# -- the directory itself ------------------------------------------------------------------------


def test_a_missing_services_directory_is_no_services(tmp_path: Path) -> None:
    assert config.problems(str(tmp_path / "none")) == ([], [])
    assert config.load(str(tmp_path / "none")) == []


def test_a_services_directory_that_is_a_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "services").write_text("")
    assert lines(tmp_path / "services") == [
        f"{tmp_path}/services: cannot read the services directory: Not a directory"]


def test_hidden_entries_and_plain_files_are_not_services(tmp_path: Path) -> None:
    service(tmp_path, ".disabled", run=False)  # would be a problem if it were read
    (tmp_path / "README").write_text("not a service\n")
    (tmp_path / "..data").mkdir()
    service(tmp_path, "web")
    (tmp_path / "linked").symlink_to(tmp_path / "web")  # a symlink to a directory is one (as s6)
    services, found = config.problems(str(tmp_path) + "/")
    assert found == []
    assert [s.name for s in services] == ["linked", "web"]


def test_a_trailing_slash_does_not_double_in_the_paths(tmp_path: Path) -> None:
    service(tmp_path, "web", restart="maybe")
    assert lines(Path(str(tmp_path) + "/")) == [f"{tmp_path}/web/restart: expected always, on-failure or no, "
                                                  "got 'maybe'"]


# -- good service directories ----------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    service(tmp_path, "web")
    (web,) = config.load(str(tmp_path))
    assert (web.name, web.directory, web.run) == ("web", str(tmp_path / "web"), str(tmp_path / "web" / "run"))
    assert web.finish is None and web.dependencies == () and web.notification_fd is None
    assert web.ready is None and web.timeout_up == 30.0 and web.restart == "always"
    assert web.essential is False and web.down_signal == signal.SIGTERM and web.user is None


def test_every_file_read(tmp_path: Path) -> None:
    service(tmp_path, "db")
    service(tmp_path, "cache")
    service(tmp_path, "app", finish="#!/bin/sh\n", dependencies="# the database first\n\n  db  \n",
            deps_d=("cache", "db"), notification_fd="4\n", timeout_up="2.5\n", restart="on-failure\n",
            essential="", down_signal="QUIT\n", user="www-data:www-data\n", type="longrun\n")
    (tmp_path / "app" / "finish").chmod(0o755)
    (tmp_path / "app" / "dependencies.d" / ".keep").touch()  # hidden: not a dependency
    services = {s.name: s for s in config.load(str(tmp_path))}
    app = services["app"]
    assert app.finish == str(tmp_path / "app" / "finish")
    assert app.dependencies == ("db", "cache")  # the file's order, then dependencies.d's new names
    assert app.notification_fd == 4 and app.timeout_up == 2.5 and app.restart == "on-failure"
    assert app.essential is True and app.down_signal == signal.SIGQUIT and app.user == "www-data:www-data"


@pytest.mark.parametrize(("text", "signum"), [
    ("TERM", signal.SIGTERM), ("SIGTERM\n", signal.SIGTERM), ("15", signal.SIGTERM),
    ("sigterm", signal.SIGTERM),
    ("usr1", signal.SIGUSR1), ("SIGKILL", signal.SIGKILL), ("9", signal.SIGKILL), (" HUP \n", signal.SIGHUP),
    ("RTMIN+2", signal.SIGRTMIN + 2),
])
def test_down_signal_spellings(tmp_path: Path, text: str, signum: int) -> None:
    service(tmp_path, "web", down_signal=text)
    assert config.load(str(tmp_path))[0].down_signal == signum


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:8080", "http://localhost:8080/health", "https://api/x",
                                 "unix:///run/app.sock", "file:///run/app.ready", "  tcp://db:5432  \n",
                                 "# wait for the socket\nunix:///run/php-fpm.sock\n"])
def test_ready_urls(tmp_path: Path, url: str) -> None:
    service(tmp_path, "web", ready=url)
    services, found = config.problems(str(tmp_path))
    assert found == []
    assert services[0].ready == next(line.strip() for line in url.splitlines() if "://" in line)


@pytest.mark.parametrize(("text", "seconds"), [("30", 30.0), ("0.25", 0.25), ("1e3", 1000.0), (" 7\n", 7.0)])
def test_timeout_up_in_seconds(tmp_path: Path, text: str, seconds: float) -> None:
    service(tmp_path, "web", timeout_up=text)
    assert config.load(str(tmp_path))[0].timeout_up == seconds


@pytest.mark.parametrize("spec", ["www-data", "33", "33:33", "nginx:www-data", "app:0"])
def test_user_forms_are_not_resolved_offline(tmp_path: Path, spec: str) -> None:
    service(tmp_path, "web", user=spec + "\n")  # nginx need not exist where check runs
    assert config.load(str(tmp_path))[0].user == spec


def test_notification_fd_three_and_up(tmp_path: Path) -> None:
    service(tmp_path, "a", notification_fd="3")
    service(tmp_path, "b", notification_fd=" 1023 \n")  # s6 refuses the spaces; we read the number
    assert [s.notification_fd for s in config.load(str(tmp_path))] == [3, 1023]


def test_a_symlinked_run_counts(tmp_path: Path) -> None:
    real = tmp_path / "bin-web"
    real.write_text(RUN)
    real.chmod(0o755)
    (service(tmp_path / "services", "web", run=False) / "run").symlink_to(real)
    assert [s.name for s in config.load(str(tmp_path / "services"))] == ["web"]


# -- the dependency graph the runtime builds (unit.link: whom to stop before whom) --------------------


def _graph() -> list[Unit]:
    def svc(name: str, *deps: str) -> Unit:
        return Unit(SERVICE, name, [f"/s/{name}/run"], {}, dependencies=deps)

    # nginx -> app -> (db, cache); worker -> db; metrics alone
    return [svc("worker", "db"), svc("nginx", "app"), svc("metrics"), svc("db"), svc("app", "db", "cache"),
            svc("cache")]


def _dependants(units: list[Unit]) -> dict[str, list[str]]:
    link(units)
    return {unit.name: sorted(d.name for d in unit.dependants) for unit in units}


def test_dependants_are_the_reverse_edges() -> None:
    assert _dependants(_graph()) == {"worker": [], "nginx": [], "metrics": [], "db": ["app", "worker"],
                                     "app": ["nginx"], "cache": ["app"]}


def test_dependencies_outside_the_list_are_ignored() -> None:
    assert _dependants([Unit(SERVICE, "web", ["/s/web/run"], {}, dependencies=("gone",))]) == {"web": []}


def test_dependencies_from_a_loaded_directory(tmp_path: Path) -> None:
    service(tmp_path, "nginx", deps_d=("app",))
    service(tmp_path, "app", dependencies="db\n")
    service(tmp_path, "db")
    loaded = {s.name: s.dependencies for s in config.load(str(tmp_path))}
    assert loaded == {"app": ("db",), "db": (), "nginx": ("app",)}


def test_problem_equality_and_text() -> None:
    problem = ServiceProblem("/s/web/run", "missing")
    assert problem == ServiceProblem("/s/web/run", "missing") and str(problem) == "/s/web/run: missing"
    assert len({problem, ServiceProblem("/s/web/run", "missing")}) == 1


# -- hostile contents: problems, never a traceback -------------------------------------------------

FILES = ("run", "finish", "dependencies", "notification-fd", "ready", "timeout-up", "restart", "essential",
         "down-signal", "user", "type")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(contents=st.dictionaries(st.sampled_from(FILES), st.binary(max_size=200), max_size=len(FILES)))
def test_any_file_contents_give_problems_or_a_service(tmp_path_factory: pytest.TempPathFactory,
                                                        contents: dict[str, bytes]) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    directory = service(root, "svc", **{name.replace("-", "_"): data for name, data in contents.items()})
    service(root, "other")
    services, found = config.problems(str(root))
    assert all(p.path.startswith(f"{directory}/") for p in found)
    assert ("svc" in [s.name for s in services]) == (not found)
    for problem in found:
        assert "\n" not in problem.text() or "\n" in problem.path  # one line each
