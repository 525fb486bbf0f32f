"""Every ready-made template under templates/ renders against a simulated Marathon task.

The app definition below is deliberately awkward: two ports, fractional
CPUs, labels whose values carry quotes, newlines and shell metacharacters,
so that quoting in the generated dotenv/JSON files is really exercised.
Oracles: GNU envsubst for the nginx block, bash for the dotenv file,
``json.loads`` for the JSON file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint.render.model import TEMPLATE_SUFFIXES

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "templates"
GNU_ENVSUBST = shutil.which("envsubst")
BASH = shutil.which("bash")

pytestmark = pytest.mark.timeout(60)

HOSTILE = "it's \"quoted\" $(id) `uname` ${HOME} {{ 7*7 }}\nsecond line"
APP = {
    "id": "/shop/web-frontend",
    "cpus": 0.5,
    "mem": 2048,
    "container": {"type": "DOCKER",
                  "docker": {"image": "registry.example.com/shop/web:3", "network": "HOST"}},
    "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "metrics"}],
    "labels": {"team": "shop", "tier.name": "frontend", "motto": HOSTILE},
}
CONTEXT = ("--clean-env", "--host", "agent-7.example.com", "--ports", "31500,31501", "--task-id",
           "shop_web-frontend.instance-3f0c2b9e-0000-4000-8000-000000000001._app.1")



def covers(relpath: str) -> Path:
    """Marks a template as having a dedicated test (found statically, see the last test)."""
    return LIBRARY / relpath


@pytest.fixture(scope="module")
def app_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "app.json"
    path.write_text(json.dumps(APP), encoding="utf-8")
    return path


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", *map(str, args)], capture_output=True,
                          text=True, timeout=30, cwd=ROOT, stdin=subprocess.DEVNULL)


def render(app_file: Path, template: Path, *extra: str) -> str:
    done = cli("render", *CONTEXT, "--marathon-app", app_file, *extra, template)
    assert done.returncode == 0, done.stderr
    return done.stdout


def task_env(app_file: Path, *extra: str) -> dict[str, str]:
    done = cli("env", *CONTEXT, "--marathon-app", app_file, *extra, "--format", "json")
    assert done.returncode == 0, done.stderr
    env: dict[str, str] = json.loads(done.stdout)
    return env


# --------------------------------------------------------------------------- nginx

def test_nginx_server_block(app_file: Path) -> None:
    template = covers("nginx/server.conf.template")
    conf = render(app_file, template, "--braced-only", "--set", "UPSTREAM=127.0.0.1:8080")
    assert "    listen 31500;\n" in conf
    assert "    server_name agent-7.example.com;\n" in conf
    assert "proxy_pass http://127.0.0.1:8080;" in conf
    for own in ("$host", "$remote_addr", "$proxy_add_x_forwarded_for", "$scheme", "$http_upgrade"):
        assert own in conf, own
    assert "${" not in conf


@pytest.mark.skipif(GNU_ENVSUBST is None, reason="GNU envsubst (gettext-base) not installed")
def test_nginx_server_block_equals_gnu_envsubst(app_file: Path) -> None:
    template = covers("nginx/server.conf.template")
    env = task_env(app_file, "--set", "UPSTREAM=127.0.0.1:8080")
    assert GNU_ENVSUBST is not None
    gnu = subprocess.run([GNU_ENVSUBST, "${PORT} ${HOST} ${UPSTREAM}"], input=template.read_bytes(), env=env,
                         capture_output=True, check=True, timeout=10).stdout
    assert render(app_file, template, "--braced-only", "--set", "UPSTREAM=127.0.0.1:8080").encode() == gnu


def test_nginx_server_block_needs_an_upstream(app_file: Path) -> None:
    template = covers("nginx/server.conf.template")
    done = cli("check", *CONTEXT, "--marathon-app", app_file, "--braced-only", template)
    assert done.returncode == 78
    assert "UPSTREAM" in done.stderr


# --------------------------------------------------------------------------- java

def _options(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-")]


def test_jvm_options_from_marathon_memory(app_file: Path) -> None:
    options = _options(render(app_file, covers("java/jvm.options.j2")))
    assert options == ["-Xms1536m", "-Xmx1536m", "-XX:ActiveProcessorCount=1", "-XX:+ExitOnOutOfMemoryError"]


def test_jvm_options_outside_marathon() -> None:
    template = covers("java/jvm.options.j2")
    done = cli("render", "--clean-env", "--set", "JVM_MEMORY_MB=1000", "--set", "JVM_HEAP_PERCENT=60",
               template)
    assert done.returncode == 0, done.stderr
    assert _options(done.stdout)[:3] == ["-Xms600m", "-Xmx600m", "-XX:ActiveProcessorCount=1"]


def test_jvm_options_without_any_memory_is_an_error() -> None:
    done = cli("check", "--clean-env", covers("java/jvm.options.j2"))
    assert done.returncode == 78
    assert "jvm.options.j2:" in done.stderr


# --------------------------------------------------------------------------- dotenv

@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_app_env_is_what_bash_reads_back(app_file: Path, tmp_path: Path) -> None:
    """Source the rendered file with bash: every value comes back byte for byte, nothing executes."""
    template = covers("env/app.env.j2")
    bind = "127.0.0.1 $(touch pwned) 'x'"
    out = tmp_path / "app.env"
    out.write_text(render(app_file, template, "--set", f"BIND_ADDRESS={bind}"), encoding="utf-8")
    assert BASH is not None
    names = "APP_ID APP_VERSION TASK_ID LISTEN_HOST LISTEN_PORT PUBLIC_URL MEMORY_MB"
    script = f'set -a; . "$1"; for n in {names}; do printf "%s=%s\\0" "$n" "${{!n}}"; done'
    done = subprocess.run([BASH, "--noprofile", "--norc", "-c", script, "bash", str(out)], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=True, timeout=10)
    values = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    env = task_env(app_file)
    assert values == {
        "APP_ID": "/shop/web-frontend",
        "APP_VERSION": env["MARATHON_APP_VERSION"],
        "TASK_ID": CONTEXT[-1],
        "LISTEN_HOST": bind,
        "LISTEN_PORT": "31500",
        "PUBLIC_URL": "http://agent-7.example.com:31500",
        "MEMORY_MB": "2048",
    }
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- JSON

def test_task_json_survives_hostile_label_values(app_file: Path) -> None:
    task = json.loads(render(app_file, covers("json/task.json.j2")))
    assert task == {
        "app_id": "/shop/web-frontend",
        "task_id": CONTEXT[-1],
        "host": "agent-7.example.com",
        "ports": [31500, 31501],
        "resources": {"cpus": 0.5, "mem_mb": 2048.0},
        "labels": {"TEAM": "shop", "TIER_NAME": "frontend", "MOTTO": HOSTILE},
    }


# --------------------------------------------------------------------------- properties

def test_server_properties(app_file: Path) -> None:
    text = render(app_file, covers("properties/server.properties.template"))
    assert "\nport = 31500\nbind_address = 0.0.0.0\nadvertised_host = agent-7.example.com\n" in text
    assert f"\ninstance_id = {CONTEXT[-1]}\n" in text


def test_server_properties_without_ports_fails_clearly(tmp_path: Path) -> None:
    app = dict(APP, portDefinitions=[])
    app_file = tmp_path / "noports.json"
    app_file.write_text(json.dumps(app), encoding="utf-8")
    template = covers("properties/server.properties.template")
    done = cli("render", "--clean-env", "--marathon-app", app_file, template)
    assert done.returncode == 78
    assert "server.properties.template:3:" in done.stderr
    assert "did the app definition declare one?" in done.stderr


# --------------------------------------------------------------------------- completeness

def library_templates() -> list[str]:
    return sorted(str(p.relative_to(LIBRARY)) for p in LIBRARY.rglob("*")
                  if p.is_file() and p.name.endswith(TEMPLATE_SUFFIXES))


@pytest.mark.parametrize("relpath", library_templates())
def test_every_library_template_checks_clean(app_file: Path, relpath: str) -> None:
    extra = ("--braced-only", "--set", "UPSTREAM=127.0.0.1:8080") if relpath.startswith("nginx/") else ()
    done = cli("check", *CONTEXT, "--marathon-app", app_file, *extra, LIBRARY / relpath)
    assert done.returncode == 0, done.stderr


def test_every_library_template_has_a_dedicated_test() -> None:
    covered = set(re.findall(r'covers\("([^"]+)"\)', Path(__file__).read_text(encoding="utf-8")))
    assert set(library_templates()) <= covered, set(library_templates()) - covered
