"""`entrypoint env`: json / shell / dotenv, checked against bash and our own reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.commands.env import format_lines
from entrypoint.context.sources import parse_dotenv

VECTORS = Path(__file__).with_name("data") / "marathon-env-vectors.jsonl"
HOSTILE = {
    "SQ": "it's 'quoted'",
    "DQ": 'say "hi" \\" \\\\n',
    "NL": "line1\nline2\n",
    "CR": "a\rb",
    "SUB": "$(id) ${HOME} $HOME",
    "BT": "`id` \\`",
    "SP": "  leading and trailing  ",
    "HASH": "value # not a comment",
    "EMPTY": "",
    "UNI": "héllo ☃ 𝄞",
    "BS": "C:\\new\\table\\",
    "EQ": "a=b=c",
}


def entrypoint(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Bytes decoded by hand: text mode would turn a value's CR into LF."""
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoint", "env", *args], capture_output=True, timeout=60, **kw
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def sets(env: dict[str, str]) -> list[str]:
    return [item for name, value in env.items() for item in ("--set", f"{name}={value}")]


def load_vectors() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", load_vectors(), ids=lambda c: c["name"])
def test_cli_json_is_exactly_the_task_environment(tmp_path: Path, case: dict[str, Any]) -> None:
    app = tmp_path / "app.json"
    app.write_text(json.dumps(case["app"]))
    ports = list(case["assigned_host_ports"])
    for index, value in case.get("generated_container_ports", {}).items():
        ports[int(index)] = value
    args = ["--clean-env", "--marathon-app", str(app), "--host", case["host"], "--task-id", case["task_id"]]
    args += [
        "--marathon-version",
        case["marathon_version"].replace("HEAD(", "").rstrip(")").replace(".x", ""),
    ]
    if ports:
        args.append("--ports=" + ",".join("-" if p is None else str(p) for p in ports))
    if case.get("env_vars_prefix"):
        args += ["--env-vars-prefix", case["env_vars_prefix"]]
    proc = entrypoint(*args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert list(got) == sorted(got)
    want = dict(case["expected_env"])
    if case["marathon_version"].startswith("HEAD"):  # 1.10 always sets it at launch; --enforce-role false
        want["MARATHON_APP_ENFORCE_GROUP_ROLE"] = "FALSE"
    labels = "MARATHON_APP_LABELS"
    assert set(got.pop(labels).split()) == set(want.pop(labels).split())
    assert got == want


def test_mesos_env_flag_adds_docker_containerizer_variables(tmp_path: Path) -> None:
    app = tmp_path / "app.json"
    app.write_text(json.dumps({"id": "/d", "container": {"type": "DOCKER", "docker": {"image": "x"}}}))
    base = ["--clean-env", "--marathon-app", str(app), "--task-id", "T"]
    plain = json.loads(entrypoint(*base).stdout)
    extra = json.loads(entrypoint(*base, "--mesos-env").stdout)
    added = {k: v for k, v in extra.items() if k not in plain}
    assert added["MESOS_SANDBOX"] == "/mnt/mesos/sandbox" and added["MESOS_CONTAINER_NAME"].startswith(
        "mesos-"
    )
    assert set(added) == {"MESOS_SANDBOX", "MESOS_CONTAINER_NAME"}


def test_shell_format_evals_back_exactly() -> None:
    proc = entrypoint("--clean-env", *sets(HOSTILE), "--format", "shell")
    assert proc.returncode == 0, proc.stderr
    names = sorted(HOSTILE)
    script = 'eval "$ENTRYPOINT_OUT"; for n in ' + " ".join(names) + '; do printf "%s\\0" "${!n}"; done'
    out = subprocess.run(
        ["bash", "-c", script],
        env={"ENTRYPOINT_OUT": proc.stdout, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout.decode()
    assert dict(zip(names, out.split("\0")[:-1], strict=True)) == HOSTILE
    assert "uid=" not in out


def test_shell_format_skips_names_shell_cannot_export(tmp_path: Path) -> None:
    app = tmp_path / "app.json"
    app.write_text(json.dumps({"id": "/a", "portDefinitions": [{"port": 80, "name": "http-api"}]}))
    proc = entrypoint("--clean-env", "--marathon-app", str(app), "--ports", "31000", "--format", "shell")
    assert proc.returncode == 0
    assert "# skipped PORT_HTTP-API" in proc.stdout and "PORT_HTTP-API" in proc.stderr
    subprocess.run(["bash", "-n", "-c", proc.stdout], check=True, timeout=30)
    assert "export PORT_80='31000'" in proc.stdout


def test_dotenv_round_trips_through_env_file(tmp_path: Path) -> None:
    proc = entrypoint("--clean-env", *sets(HOSTILE), "--format", "dotenv")
    assert proc.returncode == 0, proc.stderr
    dotenv = tmp_path / "out.env"
    dotenv.write_bytes(proc.stdout.encode())
    back = entrypoint("--clean-env", "--env-file", str(dotenv), "--format", "json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout) == HOSTILE


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(NAMES, VALUES, max_size=6))
def test_dotenv_writer_and_reader_agree(tmp_path: Path, env: dict[str, str]) -> None:
    text = format_lines(env, "dotenv")
    path = tmp_path / "x.env"
    path.write_text(text, encoding="utf-8")
    skipped = {line.split()[2].rstrip(":") for line in text.splitlines() if line.startswith("# skipped")}
    assert parse_dotenv(path) == {k: v for k, v in env.items() if k not in skipped}
    assert all(any(c in env[k] for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029") for k in skipped)


def test_json_default_and_current_environment() -> None:
    proc = entrypoint("--set", "ZZ_X=1", env={"PATH": "/usr/bin:/bin", "FROM_PARENT": "p"})
    got = json.loads(proc.stdout)
    assert got["FROM_PARENT"] == "p" and got["ZZ_X"] == "1"


def test_bad_format_is_usage_error() -> None:
    assert entrypoint("--format", "xml").returncode == 2
