"""Marathon synthesis cases written from the rules in marathon-env.md, plus bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from entrypoint.context.javafmt import double_to_string
from entrypoint.context.marathon import load_app, parse_app, synthesize
from entrypoint.errors import ContextError

T = "t.1"
BASE = {
    "MESOS_TASK_ID": T,
    "MARATHON_APP_VERSION": "1970-01-01T00:00:00.000Z",
    "MARATHON_APP_RESOURCE_CPUS": "1.0",
    "MARATHON_APP_RESOURCE_MEM": "128.0",
    "MARATHON_APP_RESOURCE_DISK": "0.0",
    "MARATHON_APP_RESOURCE_GPUS": "0",
    "MARATHON_APP_LABELS": "",
}


def env_of(app: dict[str, Any], *, host: str = "h", **kw: Any) -> dict[str, str]:
    kw.setdefault("task_id", T)
    kw.setdefault("enforce_role", None)
    return synthesize(parse_app(app), host=host, **kw)


def expect(app_id: str, extra: dict[str, str], **overrides: str) -> dict[str, str]:
    return {**BASE, "MARATHON_APP_ID": app_id, "HOST": "h", **extra, **overrides}


def test_legacy_host_ports_get_service_ports() -> None:
    app = {
        "id": "legacy",
        "container": {"type": "DOCKER", "docker": {"image": "i", "network": "HOST"}},
        "ports": [0, 0],
    }
    got = env_of(app, ports=[31000, 31001])
    assert got == expect(
        "/legacy",
        {
            "MARATHON_APP_DOCKER_IMAGE": "i",
            "PORT0": "31000",
            "PORT1": "31001",
            "PORT_10000": "31000",
            "PORT_10001": "31001",
            "PORT": "31000",
            "PORTS": "31000,31001",
        },
    )


def test_legacy_bridge_on_1_4() -> None:
    app = {
        "id": "/web",
        "container": {
            "docker": {
                "image": "nginx",
                "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "name": "web"}],
            }
        },
    }
    got = env_of(app, ports=[31005], version="1.4")
    assert got == expect(
        "/web",
        {
            "MARATHON_APP_DOCKER_IMAGE": "nginx",
            "PORT0": "31005",
            "PORT_80": "31005",
            "PORT_WEB": "31005",
            "PORT": "31005",
            "PORTS": "31005",
        },
    )


def test_bridge_fixed_and_dynamic_host_ports_default_assignment() -> None:
    app = {
        "id": "/b",
        "networks": [{"mode": "container/bridge"}],
        "container": {
            "type": "DOCKER",
            "docker": {"image": "x"},
            "portMappings": [{"containerPort": 80, "hostPort": 8000}, {"containerPort": 0}],
        },
    }
    got = env_of(app)  # no --ports: fixed host port kept, dynamic ones counted up from 31000
    assert got == expect(
        "/b",
        {
            "MARATHON_APP_DOCKER_IMAGE": "x",
            "PORT0": "8000",
            "PORT_80": "8000",
            "PORT1": "31000",
            "PORT_31000": "31000",
            "PORT": "8000",
            "PORTS": "8000,31000",
        },
    )


def test_default_host_ports_skip_fixed_ones() -> None:
    app = {
        "id": "/b",
        "networks": [{"mode": "container/bridge"}],
        "container": {"portMappings": [{"containerPort": 80, "hostPort": 31000}, {"containerPort": 81}]},
    }
    got = env_of(app)
    assert (got["PORT0"], got["PORT1"], got["PORTS"]) == ("31000", "31001", "31000,31001")


def test_user_network_fixed_container_port_only() -> None:
    app = {
        "id": "/redis",
        "networks": [{"mode": "container", "name": "dcos"}],
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 6379}]},
    }
    got = env_of(app, ports=[None])
    assert got == expect("/redis", {"PORT0": "6379", "PORT_6379": "6379", "PORTS": ""})
    assert "PORT" not in got


def test_user_network_mixed_host_ports() -> None:
    app = {
        "id": "/m",
        "networks": [{"mode": "container", "name": "n"}],
        "container": {
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "name": "http"},
                {"containerPort": 9090},
                {"containerPort": 0, "name": "x"},
            ]
        },
    }
    got = env_of(app, ports=[31000, None, 40000])
    assert got == expect(
        "/m",
        {
            "PORT0": "31000",
            "PORT_8080": "31000",
            "PORT_HTTP": "31000",
            "PORT1": "9090",
            "PORT_9090": "9090",
            "PORT2": "40000",
            "PORT_40000": "40000",
            "PORT_X": "40000",
            "PORT": "31000",
            "PORTS": "31000,40000",
        },
    )


def test_virtual_network_port_is_not_port0() -> None:
    mappings = [{"containerPort": 0}] + [{"containerPort": 8080 + i, "hostPort": 25003 - i} for i in range(4)]
    app = {
        "id": "/v",
        "networks": [{"mode": "container", "name": "n"}],
        "container": {"portMappings": mappings},
    }
    got = env_of(app, ports=[41000, 25003, 25002, 25001, 25000])
    assert got["PORTS"] == "25003,25002,25001,25000,41000"
    assert got["PORT"] == "25003" and got["PORT0"] == "41000" and got["PORT_41000"] == "41000"


def test_generated_container_port_is_reproducible() -> None:
    app = {
        "id": "/g",
        "networks": [{"mode": "container"}],
        "container": {"portMappings": [{"containerPort": 0, "name": "a"}, {"containerPort": 5000}]},
    }
    first, second = env_of(app, ports=[None, None]), env_of(app)
    port = int(first["PORT0"])
    assert first == second and 1025 <= port <= 65535 and port != 5000
    assert first["PORT"] == first["PORTS"] == first[f"PORT_{port}"] == first["PORT_A"] == str(port)


def test_require_ports_with_legacy_zero_uses_service_port() -> None:
    got = env_of({"id": "/r", "ports": [0], "requirePorts": True})
    assert got["PORT0"] == got["PORT_10000"] == got["PORTS"] == "10000"


def test_require_ports_rejects_other_host_port() -> None:
    with pytest.raises(ContextError, match="needs host port 25552"):
        env_of({"id": "/r", "portDefinitions": [{"port": 25552}], "requirePorts": True}, ports=[31000])


def test_named_port_with_dash_is_not_escaped() -> None:
    got = env_of({"id": "/d", "portDefinitions": [{"port": 0, "name": "http-api"}]}, ports=[31000])
    assert got["PORT_HTTP-API"] == got["PORT_10000"] == "31000"


def test_prefix_applies_to_ports_and_host_only() -> None:
    app = {
        "id": "/p",
        "networks": [{"mode": "container/bridge"}],
        "container": {"portMappings": [{"containerPort": 80, "name": "http"}]},
        "labels": {"a": "b"},
        "env": {"PORT0": "user"},
    }
    got = env_of(app, ports=[31000], env_vars_prefix="P_")
    want = expect(
        "/p",
        {
            "P_PORT0": "31000",
            "P_PORT_80": "31000",
            "P_PORT_HTTP": "31000",
            "P_PORT": "31000",
            "P_PORTS": "31000",
            "P_HOST": "h",
            "PORT0": "user",
            "MARATHON_APP_LABEL_A": "b",
        },
        MARATHON_APP_LABELS="A",
    )
    del want["HOST"]
    assert got == want


def test_label_size_limits_are_exclusive_and_collisions_merge() -> None:
    labels = {
        "k" * 492: "kept",
        "j" * 493: "dropped",
        "v": "x" * 511,
        "w": "x" * 512,
        "a.b": "1",
        "a-b": "2",
        "big": "m" * (1 << 20),
    }
    got = env_of({"id": "/l", "portDefinitions": [], "labels": labels})
    assert set(got["MARATHON_APP_LABELS"].split()) == {"K" * 492, "V", "A_B"}
    assert got["MARATHON_APP_LABEL_" + "K" * 492] == "kept" and got["MARATHON_APP_LABEL_A_B"] == "2"
    assert not any(
        k.startswith(("MARATHON_APP_LABEL_J", "MARATHON_APP_LABEL_W", "MARATHON_APP_LABEL_BIG")) for k in got
    )


def test_java_number_formats() -> None:
    got = env_of({"id": "/n", "portDefinitions": [], "cpus": 0.001, "mem": 1e7, "disk": 5e-4, "gpus": 3})
    assert (
        got["MARATHON_APP_RESOURCE_CPUS"],
        got["MARATHON_APP_RESOURCE_MEM"],
        got["MARATHON_APP_RESOURCE_DISK"],
        got["MARATHON_APP_RESOURCE_GPUS"],
    ) == ("0.001", "1.0E7", "5.0E-4", "3")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (32, "32.0"),
        (0.1, "0.1"),
        (1.0, "1.0"),
        (0, "0.0"),
        (1e7, "1.0E7"),
        (9999999.0, "9999999.0"),
        (5e-4, "5.0E-4"),
        (0.001, "0.001"),
        (1.2345e-5, "1.2345E-5"),
        (123456789.0, "1.23456789E8"),
        (-2.5, "-2.5"),
    ],
)
def test_double_to_string(value: float, text: str) -> None:
    assert double_to_string(float(value)) == text


@pytest.mark.parametrize(
    ("version", "pattern"),
    [
        ("1.4", r"my_group_app\.[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"),
        ("1.10", r"my_group_app\.instance-[0-9a-f-]{36}\._app\.1"),
    ],
)
def test_fresh_task_id_format_per_version(version: str, pattern: str) -> None:
    got = synthesize(parse_app({"id": "/my/group/app"}), host="h", version=version)
    assert re.fullmatch(pattern, got["MESOS_TASK_ID"])


def test_enforce_role_only_from_1_9() -> None:
    app = parse_app({"id": "/e", "portDefinitions": []})
    assert "MARATHON_APP_ENFORCE_GROUP_ROLE" not in synthesize(
        app, host="h", version="1.8", enforce_role=True
    )
    assert (
        synthesize(app, host="h", version="1.9", enforce_role=True)["MARATHON_APP_ENFORCE_GROUP_ROLE"]
        == "TRUE"
    )
    assert synthesize(app, host="h", version="1.10")["MARATHON_APP_ENFORCE_GROUP_ROLE"] == "FALSE"


def test_user_env_overrides_everything_and_skips_secrets() -> None:
    app = {
        "id": "/o",
        "portDefinitions": [],
        "env": {"HOST": "mine", "MARATHON_APP_ID": "x", "DB_PASSWORD": {"secret": "pw"}},
    }
    got = env_of(app)
    assert got["HOST"] == "mine" and got["MARATHON_APP_ID"] == "x" and "DB_PASSWORD" not in got


def test_app_without_ports_gets_default_port_definition() -> None:
    got = env_of({"id": "/nothing"})
    assert got == expect(
        "/nothing",
        {"PORT0": "31000", "PORT_10000": "31000", "PORT_DEFAULT": "31000", "PORT": "31000", "PORTS": "31000"},
    )


def test_empty_port_definitions_give_no_port_variables() -> None:
    got = env_of({"id": "/none", "portDefinitions": []})
    assert not any(k.startswith("PORT") for k in got)


def test_mesos_container_with_image_has_no_docker_image_variable() -> None:
    got = env_of(
        {"id": "/u", "portDefinitions": [], "container": {"type": "MESOS", "docker": {"image": "x"}}}
    )
    assert "MARATHON_APP_DOCKER_IMAGE" not in got


@pytest.mark.parametrize(
    ("given", "text"),
    [
        ("2017-04-11T16:15:04Z", "2017-04-11T16:15:04.000Z"),
        ("2017-04-11T18:15:04.5+02:00", "2017-04-11T16:15:04.500Z"),
    ],
)
def test_version_is_reformatted(given: str, text: str) -> None:
    assert env_of({"id": "/v", "portDefinitions": [], "version": given})["MARATHON_APP_VERSION"] == text


def test_1_4_names_need_a_host_port() -> None:
    app = {
        "id": "/u",
        "container": {
            "docker": {"network": "USER", "portMappings": [{"containerPort": 8080, "name": "http"}]}
        },
    }
    assert "PORT_HTTP" not in env_of(app, version="1.4")
    assert env_of(app, version="1.10")["PORT_HTTP"] == "8080"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("app", "words"),
    [
        ([], "must be a JSON object"),
        ({"cpus": 1}, "'id': missing"),
        ({"id": 5}, "'id': must be a non-empty string"),
        ({"id": "/a", "mem": "lots"}, "'mem': must be a number"),
        ({"id": "/a", "cpus": -1}, "'cpus': must be a finite number >= 0"),
        ({"id": "/a", "gpus": 1.5}, "'gpus': must be a whole number"),
        (
            {"id": "/a", "portDefinitions": [{"port": 70000}]},
            "portDefinitions[0].port': port 70000 is out of range",
        ),
        ({"id": "/a", "portDefinitions": [{"port": "80"}]}, "must be an integer port"),
        ({"id": "/a", "labels": {"x": 1}}, "'labels.x': values must be strings"),
        ({"id": "/a", "env": {"X": 1}}, "'env.X': must be a string or a secret"),
        ({"id": "/a", "networks": [{"mode": "overlay"}]}, "networks[0].mode"),
        ({"id": "/a", "container": {"type": "APPC"}}, "container.type"),
        ({"id": "/a", "ports": [1], "portDefinitions": []}, "not both"),
        ({"id": "/a", "requirePorts": "yes"}, "requirePorts"),
        ({"id": "/a", "portDefinitions": [{"port": 1, "name": "x"}, {"port": 2, "name": "x"}]}, "unique"),
        ({"id": "/a", "container": {"docker": {"network": "NONE"}}}, "container.docker.network"),
    ],
)
def test_malformed_app_names_field(app: Any, words: str) -> None:
    with pytest.raises(ContextError) as info:
        parse_app(app)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("ports", "words"),
    [
        ([1, 2], "gives 2 port(s) but the app declares 1"),
        ([None], "has a host port, '-' is not allowed"),
        ([0], "out of range"),
    ],
)
def test_bad_ports_option(ports: list[int | None], words: str) -> None:
    with pytest.raises(ContextError) as info:
        env_of({"id": "/a", "portDefinitions": [{"port": 80}]}, ports=ports)
    assert words in str(info.value)


def test_fixed_container_port_without_host_port_wants_dash() -> None:
    app = {
        "id": "/a",
        "networks": [{"mode": "container"}],
        "container": {"portMappings": [{"containerPort": 80}]},
    }
    with pytest.raises(ContextError, match="use '-'"):
        env_of(app, ports=[31000])


def test_not_json_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"id": "/a",}')
    with pytest.raises(ContextError) as info:
        load_app(str(path))
    assert str(path) in str(info.value) and "not valid JSON" in str(info.value)


@pytest.mark.parametrize(
    ("content", "extra", "words"),
    [
        ('{"id": "/a", "mem": "lots"}', [], "'mem'"),
        ("[1, 2]", [], "JSON object"),
        ('{"id": "/a"}', ["--ports", "99999"], "out of range"),
        ('{"id": "/a"}', ["--ports", "1,2"], "declares 1"),
    ],
)
def test_cli_exit_78_without_traceback(tmp_path: Path, content: str, extra: list[str], words: str) -> None:
    path = tmp_path / "app.json"
    path.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoint", "env", "--clean-env", "--marathon-app", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("[entrypoint] error:")


def test_megabyte_label_is_dropped_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(
        json.dumps({"id": "/a", "portDefinitions": [], "labels": {"big": "x" * (1 << 20), "ok": "1"}})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoint", "env", "--clean-env", "--marathon-app", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["MARATHON_APP_LABELS"] == "OK"
