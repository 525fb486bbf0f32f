"""`entrypoint check`: every problem of every file, FILE:LINE:COL, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "entrypoint", "check", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=60, check=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    write(tmp_path / "t" / "a.conf.template", "port=${PORT}\nbind=${BIND_ADDRESS}\nname=${NAME:?app name}\n")
    write(tmp_path / "t" / "sub" / "b.yaml.j2", "x: {{ env.PORT }}\ny: {{ env.MISSING_ONE }}\n")
    write(tmp_path / "t" / "c.tmpl", "ok ${PORT:-1}\n")
    result = run(["--clean-env", "--set", "PORT=1", "t"], tmp_path)
    assert result.returncode == 78
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert "t/a.conf.template:2:6: BIND_ADDRESS: not set" in problems
    assert any(p.startswith("t/a.conf.template:3:6: NAME") and "app name" in p for p in problems)
    assert any(p.startswith("t/sub/b.yaml.j2:2:11:") and "MISSING_ONE" in p for p in problems)
    assert "2 file(s)" in problems[-1] and "3 template(s)" in problems[-1]
    assert not list(tmp_path.rglob("*.conf")) and not list(tmp_path.rglob(".entrypoint-*"))


def test_success_prints_summary_and_exits_zero(tmp_path: Path) -> None:
    write(tmp_path / "a.template", "port=${PORT}\n")
    write(tmp_path / "b.j2", "{{ env.PORT | int }}\n")
    result = run(["--clean-env", "--set", "PORT=31000", "a.template", "b.j2"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "entrypoint check: 2 template(s) OK\n"


def test_unset_without_default_is_an_error_unless_lenient(tmp_path: Path) -> None:
    write(tmp_path / "a.template", "bind=${BIND_ADDRESS}\ndefaulted=${X:-x}\n")
    assert run(["--clean-env", "a.template"], tmp_path).returncode == 78
    assert run(["--clean-env", "--lenient", "a.template"], tmp_path).returncode == 0


def test_env_file_context_for_offline_ci(tmp_path: Path) -> None:
    write(tmp_path / "a.template", "port=${PORT0}\n")
    write(tmp_path / "ci.env", "PORT0=31000\n")
    assert run(["--clean-env", "--env-file", "ci.env", "a.template"], tmp_path).returncode == 0


def test_missing_template_and_syntax_error_both_reported(tmp_path: Path) -> None:
    write(tmp_path / "bad.j2", "{% for %}\n")
    result = run(["--clean-env", "gone.template", "bad.j2"], tmp_path)
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert "gone.template: template not found" in result.stderr
    assert "bad.j2:1:" in result.stderr


def test_check_uses_templates_dir_setting(tmp_path: Path) -> None:
    write(tmp_path / "tpl" / "x.template", "${UNSET_THING}\n")
    result = run(["--clean-env"], tmp_path, {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "tpl")})
    assert result.returncode == 78 and "x.template:1:1: UNSET_THING" in result.stderr


def test_reference_deployment_missing_bind_address(tmp_path: Path) -> None:
    """The reference story: Marathon sets PORT0 and HOST, nobody sets BIND_ADDRESS."""
    import json

    app = {"id": "/test-docker", "cmd": "python3 -m http.server 5000", "cpus": 0.1, "mem": 32,
           "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "python:2.7-alpine",
                                                                      "network": "HOST"}},
           "portDefinitions": [{"port": 5000, "protocol": "tcp", "labels": {}}]}
    write(tmp_path / "app.json", json.dumps(app))
    write(tmp_path / "server.properties.template", "port = ${PORT0}\nbind_address = ${BIND_ADDRESS}\n")
    args = ["--clean-env", "--marathon-app", "app.json", "--host", "agent1", "--ports", "31000"]
    result = run([*args, "server.properties.template"], tmp_path)
    assert result.returncode == 78, result.stderr
    assert result.stderr.splitlines()[0] == "server.properties.template:2:16: BIND_ADDRESS: not set"
    fixed = run([*args, "--set", "BIND_ADDRESS=0.0.0.0", "server.properties.template"], tmp_path)
    assert fixed.returncode == 0, fixed.stderr
