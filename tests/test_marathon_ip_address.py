"""Legacy IP-per-container apps (top-level ``ipAddress``), normalised as Marathon does.

Vectors of our own, each derived by hand from Marathon's rules
(``AppNormalization.forDeprecated``: NetworkTranslation, migrateDockerPortMappings,
migrateIpDiscovery, maybeDropPortMappings, applyDefaultPortMappings,
maybeAddPortMappings; ``forPostValidation``: BRIDGE host ports default to 0)
and then through the port rules of marathon-env.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from entrypoint.context.marathon import normalize_deprecated, parse_app, synthesize
from entrypoint.errors import ContextError

T = "t.1"


def ports_of(
    app: dict[str, Any], ports: list[int | None] | None = None, version: str = "1.10"
) -> dict[str, str]:
    env = synthesize(parse_app(app), host="h", task_id=T, ports=ports, version=version, enforce_role=None)
    return {k: v for k, v in env.items() if k.startswith("PORT")}


def docker(**fields: Any) -> dict[str, Any]:
    return {"type": "DOCKER", "docker": {"image": "img", **fields}}


DISCOVERY = {
    "discovery": {
        "ports": [
            {"number": 8080, "name": "http", "protocol": "tcp"},
            {"number": 9090, "name": "admin-api", "protocol": "tcp"},
        ]
    }
}


# -- how the app is rewritten ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "networks"),
    [
        ({"ipAddress": {}}, [{"mode": "container"}]),
        ({"ipAddress": {"networkName": "dcos"}}, [{"mode": "container", "name": "dcos"}]),
        ({"ipAddress": {"networkName": "mesos-bridge"}}, [{"mode": "container/bridge"}]),
        (
            {"ipAddress": {"networkName": "n"}, "container": docker(network="USER")},
            [{"mode": "container", "name": "n"}],
        ),
        (
            {"ipAddress": {"networkName": "n"}, "container": docker(network="BRIDGE")},
            [{"mode": "container/bridge"}],
        ),
        ({"ipAddress": {}, "container": docker(network="HOST")}, [{"mode": "host"}]),
        ({"ipAddress": None, "container": docker(network="BRIDGE")}, None),  # null: not the legacy API
    ],
)
def test_network_translation(app: dict[str, Any], networks: list[dict[str, str]] | None) -> None:
    normal = normalize_deprecated({"id": "/a", **app})
    assert normal.get("networks") == networks
    assert "ipAddress" not in normal or app["ipAddress"] is None
    if networks is not None:
        assert "network" not in normal["container"].get("docker", {})


def test_no_container_becomes_an_empty_mesos_container() -> None:
    normal = normalize_deprecated({"id": "/a", "ipAddress": DISCOVERY})
    assert normal["container"] == {
        "type": "MESOS",
        "portMappings": [
            {"containerPort": 8080, "name": "http"},
            {"containerPort": 9090, "name": "admin-api"},
        ],
    }


def test_input_is_not_modified() -> None:
    app = {
        "id": "/a",
        "ipAddress": {},
        "container": docker(network="USER", portMappings=[{"containerPort": 1}]),
    }
    before = repr(app)
    normalize_deprecated(app)
    assert repr(app) == before


# -- the variables the task gets ------------------------------------------------------------


def test_discovery_ports_are_container_ports_without_host_ports() -> None:
    got = ports_of({"id": "/a", "ipAddress": {"networkName": "dcos", **DISCOVERY}})
    assert got == {
        "PORT0": "8080",
        "PORT1": "9090",
        "PORT_8080": "8080",
        "PORT_9090": "9090",
        "PORT_HTTP": "8080",
        "PORT_ADMIN-API": "9090",
        "PORTS": "",
    }


def test_discovery_ports_on_1_4_have_no_name_variables() -> None:
    got = ports_of({"id": "/a", "ipAddress": DISCOVERY}, version="1.4")
    assert got == {"PORT0": "8080", "PORT1": "9090", "PORT_8080": "8080", "PORT_9090": "9090", "PORTS": ""}


def test_ip_address_without_ports_gets_the_default_mapping() -> None:
    """No discovery ports, no mappings: Marathon's one default mapping (containerPort 0, 'default')."""
    got = ports_of({"id": "/a", "ipAddress": {}, "container": docker()}, ports=[12345])
    assert got == {
        "PORT0": "12345",
        "PORT_12345": "12345",
        "PORT_DEFAULT": "12345",
        "PORT": "12345",
        "PORTS": "12345",
    }


def test_ip_address_with_empty_discovery_ports_and_no_mappings() -> None:
    got = ports_of({"id": "/a", "ipAddress": {"discovery": {"ports": []}}}, ports=[20000])
    assert got["PORT0"] == "20000" and got["PORT_DEFAULT"] == "20000"


def test_explicit_empty_port_mappings_mean_no_ports() -> None:
    assert ports_of({"id": "/a", "ipAddress": {}, "container": docker(portMappings=[])}) == {}


def test_ip_address_with_docker_port_mappings_is_a_container_network() -> None:
    """Used to be read as a host-network app (PORT_10000) or refused; the mappings are container ports."""
    app = {
        "id": "/a",
        "ipAddress": {"networkName": "calico"},
        "container": docker(
            portMappings=[{"containerPort": 80, "name": "web"}, {"containerPort": 0, "name": "metrics"}]
        ),
    }
    got = ports_of(app, ports=[None, 23456])
    assert got == {
        "PORT0": "80",
        "PORT_80": "80",
        "PORT_WEB": "80",
        "PORT1": "23456",
        "PORT_23456": "23456",
        "PORT_METRICS": "23456",
        "PORT": "23456",
        "PORTS": "23456",
    }
    assert "PORT_10000" not in ports_of(app)


def test_ip_address_with_container_port_mappings_and_a_host_port() -> None:
    app = {
        "id": "/a",
        "ipAddress": {},
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "web"}]},
    }
    assert ports_of(app, ports=[31007]) == {
        "PORT0": "31007",
        "PORT_80": "31007",
        "PORT_WEB": "31007",
        "PORT": "31007",
        "PORTS": "31007",
    }


def test_ip_address_on_bridge_gives_dynamic_host_ports() -> None:
    app = {
        "id": "/a",
        "ipAddress": {},
        "container": docker(
            network="BRIDGE", portMappings=[{"containerPort": 80}, {"containerPort": 443, "hostPort": 0}]
        ),
    }
    assert ports_of(app, ports=[31000, 31001]) == {
        "PORT0": "31000",
        "PORT1": "31001",
        "PORT_80": "31000",
        "PORT_443": "31001",
        "PORT": "31000",
        "PORTS": "31000,31001",
    }


def test_mesos_bridge_network_name_is_bridge_mode() -> None:
    app = {
        "id": "/a",
        "ipAddress": {"networkName": "mesos-bridge"},
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 80}]},
    }
    assert ports_of(app, ports=[31000])["PORT_80"] == "31000"


def test_ip_address_with_host_network_uses_port_definitions_and_drops_mappings() -> None:
    app = {
        "id": "/a",
        "ipAddress": {},
        "container": docker(network="HOST", portMappings=[{"containerPort": 80}]),
        "portDefinitions": [{"port": 0, "name": "http"}],
    }
    assert ports_of(app, ports=[31000]) == {
        "PORT0": "31000",
        "PORT_10000": "31000",
        "PORT_HTTP": "31000",
        "PORT": "31000",
        "PORTS": "31000",
    }


def test_legacy_ports_beyond_the_mappings_add_mappings() -> None:
    """maybeAddPortMappings: ``ports: [0, 0]`` with one default mapping -> two mappings."""
    got = ports_of({"id": "/a", "ipAddress": {}, "ports": [0, 0]}, ports=[20001, 20002])
    assert got == {
        "PORT0": "20001",
        "PORT1": "20002",
        "PORT_20001": "20001",
        "PORT_20002": "20002",
        "PORT_DEFAULT": "20001",
        "PORT": "20001",
        "PORTS": "20001,20002",
    }


def test_mesos_container_has_no_docker_image_variable() -> None:
    env = synthesize(
        parse_app({"id": "/a", "ipAddress": DISCOVERY}),
        host="h",
        task_id=T,
        ports=None,
        version="1.10",
        enforce_role=None,
    )
    assert "MARATHON_APP_DOCKER_IMAGE" not in env


# -- what Marathon refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "words"),
    [
        ({"ipAddress": {}, "networks": [{"mode": "container"}]}, "cannot mix deprecated and canonical"),
        ({"container": docker(network="USER"), "networks": [{"mode": "container"}]}, "cannot mix deprecated"),
        ({"ipAddress": DISCOVERY, "container": docker()}, "do not apply for container type DOCKER"),
        (
            {"ipAddress": DISCOVERY, "container": {"type": "MESOS", "portMappings": [{"containerPort": 1}]}},
            "must not both be set",
        ),
        (
            {
                "ipAddress": {},
                "container": {
                    "type": "MESOS",
                    "portMappings": [{"containerPort": 1}],
                    "docker": {"portMappings": [{"containerPort": 2}]},
                },
            },
            "cannot specify both portMappings and docker.portMappings",
        ),
        ({"ipAddress": "10.0.0.1"}, "'ipAddress': must be an object"),
        ({"ipAddress": {"networkName": 7}}, "'ipAddress.networkName'"),
        ({"ipAddress": {"discovery": {"ports": [{"number": 80}]}}}, "'ipAddress.discovery.ports[0].name'"),
        ({"ipAddress": {"discovery": {"ports": [{"number": 70000, "name": "x"}]}}}, "out of range"),
        ({"ipAddress": {"discovery": {"ports": {}}}}, "'ipAddress.discovery.ports': must be an array"),
        ({"ipAddress": {}, "container": docker(network="NONE")}, "container.docker.network"),
    ],
)
def test_refused_like_marathon(app: dict[str, Any], words: str) -> None:
    with pytest.raises(ContextError) as info:
        parse_app({"id": "/a", **app})
    assert words in str(info.value)
