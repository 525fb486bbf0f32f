"""Which modules each command imports (issue 11): a command pays only for what it uses.

Imports cannot flake, so they are asserted here; times and memory are in
``bench/bench_render.py``.  Standalone commands are observed with
``python -X importtime``.  PID 1 of ``run`` forks its render child, whose
imports would show up in the same importtime output, so PID 1 is observed
from outside instead: ``/proc/PID/maps`` lists every shared object a process
has loaded, and the C extensions of pydantic (``pydantic_core``) and Jinja2
(``markupsafe``) are there exactly when those libraries were imported.  A
``--check-cmd`` reads the render child's maps the same way, which proves the
render child did load them: the PID-1 assertion can fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pid1_helpers import Runtime, base_env, needs_ns, run_ns, wait_until

pytestmark = pytest.mark.timeout(90)

HEAVY = {"pydantic", "pydantic_core", "pydantic_settings", "jinja2", "markupsafe", "watchdog", "psutil"}
#: What the shell/envsubst render path must not need either: each costs start-up in a
#: command that competes with `envsubst < t > out` (see README, "Memory design").
LIGHT_PATH_AVOIDS = {"argparse", "pathlib", "dataclasses", "tempfile", "json", "enum", "subprocess",
                     "typing", "inspect", "shutil", "entrypoint.context.orchestrator"}
C_EXTENSIONS = ("pydantic_core", "markupsafe")


def imported_by(args: list[str], cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "entrypoint", *args], cwd=cwd,
                          env=base_env(**env), capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:")}
    return done, modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} | modules


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    (tmp_path / "app.conf.tmpl").write_text("listen ${PORT0:-8080}\nhost $HOST\n")
    (tmp_path / "plain.j2").write_text("host={{ env.HOST }}\n")
    (tmp_path / "typed.j2").write_text("port={{ orchestrator.ports[0] }}\n")
    return tmp_path


@pytest.mark.parametrize("syntax", ["shell", "envsubst"])
def test_render_of_a_shell_template_stays_light(templates: Path, syntax: str) -> None:
    done, modules = imported_by(["render", "--syntax", syntax, "app.conf.tmpl:app.conf"], templates,
                                PORT0="31000", HOST="h")
    assert done.returncode == 0, done.stderr
    assert "entrypoint.render.shell" in modules or "entrypoint.render.envsubst" in modules
    assert HEAVY & top_level(modules) == set()
    # envsubst is byte-exact GNU at C speed through `re` (which brings `enum`); shell needs neither
    light_avoids = LIGHT_PATH_AVOIDS | {"re"} if syntax == "shell" else LIGHT_PATH_AVOIDS - {"enum"}
    assert light_avoids & modules == set()


def test_check_of_a_shell_template_stays_light(templates: Path) -> None:
    done, modules = imported_by(["check", "--lenient", "app.conf.tmpl"], templates)
    assert done.returncode == 0, done.stderr
    assert HEAVY & top_level(modules) == set()
    assert (LIGHT_PATH_AVOIDS | {"re"}) & modules == set()


def test_a_bad_entrypoint_setting_needs_no_settings_library(templates: Path) -> None:
    done, modules = imported_by(["render", "app.conf.tmpl"], templates, ENTRYPOINT_STRICT="maybe")
    assert done.returncode == 78 and "ENTRYPOINT_STRICT" in done.stderr
    assert HEAVY & top_level(modules) == set()


def test_jinja_loads_only_for_a_jinja_template_and_pydantic_only_for_the_typed_views(templates: Path) -> None:
    done, modules = imported_by(["render", "plain.j2"], templates, HOST="h")
    assert done.returncode == 0 and done.stdout == "host=h\n", done.stderr
    assert "jinja2" in modules
    assert {"pydantic", "pydantic_settings", "entrypoint.context.orchestrator"} & modules == set()
    done, modules = imported_by(["render", "typed.j2"], templates, MARATHON_APP_ID="/a", PORT0="31000")
    assert done.returncode == 0 and done.stdout == "port=31000\n", done.stderr
    assert {"jinja2", "pydantic_settings", "entrypoint.context.orchestrator"} <= modules


def test_a_malformed_port_read_by_a_typed_view_is_still_exit_78_naming_it(templates: Path) -> None:
    done, modules = imported_by(["render", "typed.j2"], templates, MARATHON_APP_ID="/a", PORT0="eighty")
    assert done.returncode == 78 and "PORT0" in done.stderr and "Traceback" not in done.stderr
    assert "pydantic_settings" in modules


def maps_have(path: Path) -> set[str]:
    text = path.read_text()
    return {name for name in C_EXTENSIONS if name in text}


@needs_ns
@pytest.mark.parametrize(("template", "child_loads"), [("typed.j2", set(C_EXTENSIONS)),
                                                       ("app.conf.tmpl", set())])
def test_pid1_never_holds_jinja2_or_pydantic_after_rendering(templates: Path, template: str,
                                                             child_loads: set[str]) -> None:
    """The render child loads what the template needs; PID 1, observed while the app runs, never does."""
    render_maps, pid1_maps = templates / "render.maps", templates / "pid1.maps"
    done = run_ns(["--template", f"{templates / template}:{templates / 'out'}",
                   "--check-cmd", f"cat /proc/$PPID/maps > {render_maps}",
                   "--", "sh", "-c", f"cat /proc/$PPID/maps > {pid1_maps}"],
                  env=base_env(MARATHON_APP_ID="/a", PORT0="31000", HOST="h"), timeout=60)
    assert done.returncode == 0, done.stderr
    assert maps_have(render_maps) == child_loads
    assert "python" in pid1_maps.read_text()  # it is the interpreter's map, not the shell's
    assert maps_have(pid1_maps) == set()


@needs_ns
def test_pid1_never_holds_them_after_watch_rerenders(tmp_path: Path) -> None:
    """`--watch`: the re-render of a typed Jinja template runs in a fork too."""
    template, out, ready = tmp_path / "t.j2", tmp_path / "out", tmp_path / "ready"
    template.write_text("p={{ orchestrator.ports[0] }}\n")
    env = base_env(MARATHON_APP_ID="/a", PORT0="31000")
    app = ["sh", "-c", f"trap 'echo hup >> {ready}' HUP; echo up >> {ready}; while :; do sleep 0.05; done"]
    with Runtime(["--watch", "--watch-quiet", "0.05", "--template", f"{template}:{out}", "--", *app],
                 env=env) as rt:
        wait_until(lambda: ready.exists() and "up" in ready.read_text(), 20, "the app")
        pid1 = rt.pid  # the host pid of the namespace's PID 1
        template.write_text("p={{ orchestrator.ports[0] }} again\n")
        wait_until(lambda: "hup" in ready.read_text(), 20, "the reload signal after the re-render")
        assert out.read_text() == "p=31000 again\n"
        maps = Path(f"/proc/{pid1}/maps").read_text()
        assert "python" in maps
        assert {name for name in C_EXTENSIONS if name in maps} == set()
        rt.signal(signal.SIGTERM)
        rt.wait(20)


def test_pid1_modules_stay_standard_library(tmp_path: Path) -> None:
    """No template: PID 1's own imports, by name (the render fork never runs)."""
    done, modules = imported_by(["run", "--", "true"], tmp_path,
                                ENTRYPOINT_TEMPLATES_DIR=str(tmp_path / "none"),
                                ENTRYPOINT_HOOKS_DIR=str(tmp_path / "none"))
    assert done.returncode == 0, done.stderr
    assert HEAVY & top_level(modules) == set()
    assert not {m for m in modules if m.startswith(("entrypoint.render", "entrypoint.context"))}
    assert os.path.basename(sys.executable).startswith("python")


def test_check_against_a_marathon_app_stays_light() -> None:
    """`check --marathon-app` of the reference example: the app JSON is read with json's C scanner."""
    example = Path(__file__).resolve().parent.parent / "examples" / "reference-deployment"
    args = ["check", "--marathon-app", str(example / "app.json"), str(example / "templates")]
    done, modules = imported_by(args, example)
    assert done.returncode == 0, done.stderr
    assert "entrypoint.context.marathon" in modules
    assert HEAVY & top_level(modules) == set()
    assert (LIGHT_PATH_AVOIDS | {"re", "decimal", "uuid", "random"}) & modules == set()


#: What PID 1 never imports, with or without services (cli.md: standard library only, and light).
PID1_AVOIDS = {"socket", "ssl", "http", "json", "re", "subprocess", "dataclasses", "enum", "typing",
               "pathlib", "argparse"}


def _services(root: Path, port: int | None = None) -> Path:
    for name, extra in (("notified", {"notification-fd": "3\n"}), ("plain", {}),
                        ("url", {"ready": f"tcp://127.0.0.1:{port}\n"} if port else None)):
        if extra is None:
            continue
        directory = root / name
        directory.mkdir(parents=True)
        body = "echo >&3\n" if "notification-fd" in extra else ""
        if "ready" in extra:
            body = f"exec {sys.executable} -c \"import socket; s = socket.socket(); " \
                   f"s.bind(('127.0.0.1', {port})); s.listen(); import time; time.sleep(60)\"\n"
        (directory / "run").write_text(f"#!/bin/sh\n{body}exec sleep 60\n")
        (directory / "run").chmod(0o755)
        for key, text in extra.items():
            (directory / key).write_text(text)
    return root


def test_pid1_with_services_stays_standard_library(tmp_path: Path) -> None:
    """Services (output framing, notification pipes, restarts): still no heavy or avoided module."""
    services = _services(tmp_path / "services")
    done, modules = imported_by(["run", "--services-dir", str(services), "--", "true"], tmp_path,
                                ENTRYPOINT_TEMPLATES_DIR=str(tmp_path / "none"),
                                ENTRYPOINT_HOOKS_DIR=str(tmp_path / "none"))
    assert done.returncode == 0, done.stderr
    assert "entrypoint.supervise.services.output" in modules  # the services really ran
    assert HEAVY & top_level(modules) == set()
    assert PID1_AVOIDS & top_level(modules) == set()


@needs_ns
def test_a_ready_url_is_probed_in_a_fork_never_in_pid1(tmp_path: Path) -> None:
    """``ready tcp://``: the probe loads socket in a fork; PID 1's maps never show _socket."""
    from tests.pid1_helpers import free_port

    services, maps = _services(tmp_path / "services", free_port()), tmp_path / "pid1.maps"
    done = run_ns(["--services-dir", str(services), "--", "sh", "-c", f"cat /proc/$PPID/maps > {maps}"],
                  timeout=60)
    assert done.returncode == 0, done.stderr
    text = maps.read_text()
    assert "python" in text and "_socket" not in text and "_ssl" not in text
