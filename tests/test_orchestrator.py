"""Run-time reading: typed, lazy, and loud about malformed values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from entrypoint.context.marathon import parse_app, synthesize
from entrypoint.context.orchestrator import (
    GenericAdapter,
    KubernetesAdapter,
    MarathonAdapter,
    MarathonPortSettings,
    NomadAdapter,
    detect,
    detect_prefix,
)
from entrypoint.context.views import template_objects
from entrypoint.errors import ContextError, TemplateError
from entrypoint.render.jinja import render_jinja

BRIDGE_APP = {
    "id": "/shop/web",
    "mem": 32,
    "cpus": 0.5,
    "networks": [{"mode": "container/bridge"}],
    "container": {
        "type": "DOCKER",
        "docker": {"image": "nginx"},
        "portMappings": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "admin"}],
    },
    "labels": {"tier.name": "front", "team": "a"},
}


def marathon_env(prefix: str | None = None) -> dict[str, str]:
    return synthesize(
        parse_app(BRIDGE_APP), host="agent-1", task_id="T1", ports=[31000, 31001], env_vars_prefix=prefix
    )


def test_marathon_round_trip_from_synthesis() -> None:
    view = detect(marathon_env())
    assert isinstance(view, MarathonAdapter) and view.kind == "marathon"
    assert view.host == "agent-1" and view.task_id == "T1" and view.app_id == "/shop/web"
    assert list(view.ports) == [31000, 31001] and view.ports[1] == 31001
    assert view.ports.http == 31000 and view.ports["ADMIN"] == 31001 and view.ports.get("nope", 1) == 1
    assert view.port_for(8080) == 31000 and view.port_for(7, default=5) == 5
    assert view.resources.mem == 32.0 and view.resources.cpus == 0.5 and view.resources.gpus == 0
    assert view.labels.get("tier.name") == "front" and view.labels["TEAM"] == "a"
    assert view.labels.get("missing", "dflt") == "dflt"
    assert view.assigned_ports == [31000, 31001] and view.port == 31000
    assert view.docker_image == "nginx" and view.enforce_group_role is False
    assert view.jvm_heap() == "24m" and view.jvm_heap(0.5, overhead_mib=8) == "12m"


def test_port_for_unknown_port_is_an_error() -> None:
    with pytest.raises(ContextError, match="declared port 7"):
        detect(marathon_env()).port_for(7)


@pytest.mark.parametrize("explicit", [True, False])
def test_prefix_explicit_or_detected(explicit: bool) -> None:
    env = marathon_env(prefix="P_")
    if explicit:
        env["ENTRYPOINT_ENV_VARS_PREFIX"] = "P_"
    assert detect_prefix(env) == "P_"
    view = MarathonAdapter(env)
    assert view.host == "agent-1" and view.ports.http == 31000 and view.port == 31000
    assert MarathonPortSettings.from_env(env, "P_").PORTS == "31000,31001"


@pytest.mark.parametrize(
    ("name", "value", "getter"),
    [
        ("PORT0", "abc", lambda v: v.ports),
        ("PORT0", "-1", lambda v: v.ports),
        ("PORT1", "70000", lambda v: v.ports),
        ("PORT_HTTP", "x", lambda v: v.ports),
        ("PORT_8080", "0", lambda v: v.port_for(8080)),
        ("PORT", "abc", lambda v: v.port),
        ("PORTS", "31000,zz", lambda v: v.assigned_ports),
        ("MARATHON_APP_RESOURCE_MEM", "lots", lambda v: v.resources),
        ("MARATHON_APP_RESOURCE_CPUS", "-1", lambda v: v.resources),
        ("MARATHON_APP_RESOURCE_MEM", "nan", lambda v: v.resources),
        ("MARATHON_APP_RESOURCE_GPUS", "1.5", lambda v: v.resources),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str, getter: object) -> None:
    env = marathon_env()
    env[name] = value
    view = MarathonAdapter(env)  # building the view validates nothing
    with pytest.raises(ContextError) as info:
        getter(view)  # type: ignore[operator]
    assert info.value.variable == name and str(info.value).startswith(f"{name}=")


def test_missing_port_index_is_reported() -> None:
    env = marathon_env()
    env["PORT3"] = "31003"
    with pytest.raises(ContextError, match="PORT2 is missing"):
        _ = MarathonAdapter(env).ports


def test_unrelated_malformed_variable_does_not_break_a_template() -> None:
    env = marathon_env()
    env["MARATHON_APP_RESOURCE_MEM"] = "lots"
    assert render_jinja("{{ orchestrator.port_for(8080) }}", env, filename="ok.j2") == "31000"
    with pytest.raises(TemplateError) as info:
        render_jinja("heap\n-Xmx{{ jvm_heap() }}\n", env, filename="bad.j2")
    assert info.value.line == 2 and "MARATHON_APP_RESOURCE_MEM" in str(info.value)


def test_jinja_typed_objects() -> None:
    text = (
        "{{ orchestrator.kind }} {{ orchestrator.host }}:{{ orchestrator.ports.http }}"
        " -Xmx{{ jvm_heap() }} {{ orchestrator.labels.get('tier.name', '?') }}"
        " {{ orchestrator.labels.get('zone', 'default-zone') }} {{ marathon.app_id }}"
        " {{ orchestrator.resources.mem }}"
    )
    out = render_jinja(text, marathon_env(), filename="t.j2")
    assert out == "marathon agent-1:31000 -Xmx24m front default-zone /shop/web 32.0"


def test_mesos_variables() -> None:
    env = {**marathon_env(), "MESOS_SANDBOX": "/mnt/mesos/sandbox", "MESOS_CHECKPOINT": "1"}
    view = MarathonAdapter(env)
    assert view.mesos.MESOS_SANDBOX == "/mnt/mesos/sandbox" and view.mesos.MESOS_CHECKPOINT is True
    assert render_jinja("{{ mesos.sandbox }}", env, filename="m.j2") == "/mnt/mesos/sandbox"


NOMAD = {
    "NOMAD_ALLOC_ID": "5a1b-alloc",
    "NOMAD_JOB_ID": "shop",
    "NOMAD_PORT_http": "8080",
    "NOMAD_HOST_PORT_http": "23456",
    "NOMAD_IP_http": "10.0.0.5",
    "NOMAD_PORT_admin": "24000",
    "NOMAD_HOST_PORT_admin": "24000",
    "NOMAD_IP_admin": "10.0.0.5",
    "NOMAD_MEMORY_LIMIT": "256",
    "NOMAD_CPU_LIMIT": "500",
    "NOMAD_CPU_CORES": "0-1,3",
    "NOMAD_META_owner": "team-a",
    "NOMAD_META_OWNER": "team-a",
}


def test_nomad_adapter() -> None:
    view = detect(NOMAD)
    assert isinstance(view, NomadAdapter) and view.kind == "nomad"
    assert view.host == "10.0.0.5" and view.task_id == "5a1b-alloc" and view.app_id == "shop"
    assert view.ports.http == 8080 and view.ports["admin"] == 24000 and list(view.ports) == [24000, 8080]
    assert view.port_for(8080) == 23456 and view.cpu_mhz == 500
    assert view.resources.mem == 256.0 and view.resources.cpus == 3.0
    assert view.labels.get("owner") == "team-a" and view.jvm_heap() == "192m"


@pytest.mark.parametrize(("name", "value"), [("NOMAD_PORT_http", "http"), ("NOMAD_MEMORY_LIMIT", "lots")])
def test_nomad_malformed(name: str, value: str) -> None:
    view = NomadAdapter({**NOMAD, name: value})
    with pytest.raises(ContextError) as info:
        _ = view.ports, view.resources
    assert info.value.variable == name


K8S = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "REDIS_MASTER_SERVICE_HOST": "10.0.0.11",
    "REDIS_MASTER_SERVICE_PORT": "6379",
    "REDIS_MASTER_SERVICE_PORT_REDIS": "6379",
    "POD_NAME": "web-7d9f",
    "POD_NAMESPACE": "shop",
    "POD_IP": "172.17.0.4",
    "MEMORY_LIMIT": str(512 * 1048576),
    "CPU_LIMIT": "2",
}


def test_kubernetes_adapter() -> None:
    view = detect(K8S)
    assert isinstance(view, KubernetesAdapter) and view.kind == "kubernetes"
    assert view.host == "172.17.0.4" and view.task_id == "web-7d9f" and view.app_id == "shop"
    assert view.port_for(8080) == 8080
    assert view.resources.mem == 512.0 and view.resources.cpus == 2.0 and view.jvm_heap() == "384m"
    redis = view.services["REDIS_MASTER"]
    assert (redis.host, redis.port, redis.ports.redis) == ("10.0.0.11", 6379, 6379)
    assert view.services["KUBERNETES"].ports["https"] == 443


def test_kubernetes_malformed_memory() -> None:
    with pytest.raises(ContextError) as info:
        _ = KubernetesAdapter({**K8S, "MEMORY_LIMIT": "512Mi"}).resources
    assert info.value.variable == "MEMORY_LIMIT"


def test_generic_and_heap_errors() -> None:
    view = detect({"PORT": "5000", "HOST": "h"})
    assert isinstance(view, GenericAdapter) and view.kind == "none" and view.host == "h"
    assert view.jvm_heap(default="64m") == "64m"
    with pytest.raises(ContextError, match="no memory limit"):
        view.jvm_heap()
    with pytest.raises(ContextError, match="leaves no JVM heap"):
        MarathonAdapter({"MARATHON_APP_RESOURCE_MEM": "8.0"}).jvm_heap(overhead_mib=16)


def test_template_objects_are_lazy() -> None:
    objects = template_objects({"MARATHON_APP_ID": "/a", "PORT0": "bad", "MARATHON_APP_RESOURCE_MEM": "lots"})
    assert set(objects) >= {"orchestrator", "marathon", "mesos", "nomad", "kubernetes", "jvm_heap"}


def test_cli_does_not_import_pydantic() -> None:
    code = (
        "import sys, entrypoint.cli, entrypoint.context.sources, entrypoint.context.marathon;"
        "assert not any(m.startswith('pydantic') for m in sys.modules), 'pydantic imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
