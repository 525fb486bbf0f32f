"""Typed reading of what the orchestrator injected, at run time.

Why typed: ``PORT0=abc`` or ``MARATHON_APP_RESOURCE_MEM=lots`` must stop the
start with a message naming the variable, never become a traceback or a
silent zero.  Why lazy: a malformed variable the templates never use must not
break them, so every group is validated on first access only.

pydantic-settings models describe the fixed names; the families of names
(``PORT<i>``, ``PORT_<NAME>``, ``NOMAD_PORT_<label>``, ...) are collected by
pattern and validated one by one.  This module is imported only by the
rendering side, never by PID 1.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from entrypoint.errors import ContextError

Port = Annotated[int, Field(ge=1, le=65535)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]

PREFIX_VARIABLE = "ENTRYPOINT_ENV_VARS_PREFIX"
_PORT_ADAPTER: TypeAdapter[int] = TypeAdapter(Port)
_AMOUNT_ADAPTER: TypeAdapter[float] = TypeAdapter(Amount)
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]+")

S = TypeVar("S", bound="EnvModel")


# --------------------------------------------------------------------------- settings plumbing


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' env source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str], prefix: str) -> None:
        self._mapping = env
        super().__init__(settings_cls, case_sensitive=True, env_prefix=prefix)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return dict(self._mapping)


class EnvModel(BaseSettings):
    """Base of the models: fields are named exactly like the variables."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def from_env(cls: type[S], env: Mapping[str, str], prefix: str = "") -> S:
        values = _MappingSource(cls, env, prefix)()
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _as_context_error(exc, prefix) from None


def _as_context_error(exc: ValidationError, prefix: str) -> ContextError:
    first = exc.errors()[0]
    name = prefix + str(first["loc"][0]) if first["loc"] else "?"
    return ContextError(f"{name}={_shown(first.get('input'))}: {first['msg']}", variable=name)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _validated(adapter: TypeAdapter[Any], name: str, value: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"]
        raise ContextError(f"{name}={_shown(value)}: {msg}", variable=name) from None


def port_value(name: str, value: str) -> int:
    """One port variable, validated: 1-65535, digits only."""
    if not value.strip().isdigit():
        raise ContextError(f"{name}={_shown(value)}: not a port number", variable=name)
    return int(_validated(_PORT_ADAPTER, name, value.strip()))


def amount_value(name: str, value: str) -> float:
    return float(_validated(_AMOUNT_ADAPTER, name, value))


# --------------------------------------------------------------------------- models


class MarathonAppSettings(EnvModel):
    """The context variables Marathon sets for every app task."""

    MARATHON_APP_ID: str | None = None
    MARATHON_APP_VERSION: str | None = None
    MARATHON_APP_DOCKER_IMAGE: str | None = None
    MARATHON_APP_RESOURCE_CPUS: Amount | None = None
    MARATHON_APP_RESOURCE_MEM: Amount | None = None
    MARATHON_APP_RESOURCE_DISK: Amount | None = None
    MARATHON_APP_RESOURCE_GPUS: Count | None = None
    MARATHON_APP_LABELS: str | None = None
    MARATHON_APP_ENFORCE_GROUP_ROLE: bool | None = None
    MESOS_TASK_ID: str | None = None


class MarathonPortSettings(EnvModel):
    """The fixed-name port variables; the only ones --env_vars_prefix renames."""

    HOST: str | None = None
    PORT: Port | None = None
    PORTS: str | None = None


class MesosSettings(EnvModel):
    """What the Mesos agent / executor adds (marathon-env.md §4)."""

    MESOS_TASK_ID: str | None = None
    MESOS_SANDBOX: str | None = None
    MESOS_CONTAINER_NAME: str | None = None
    MESOS_ALLOCATION_ROLE: str | None = None
    MESOS_FRAMEWORK_ID: str | None = None
    MESOS_EXECUTOR_ID: str | None = None
    MESOS_AGENT_ENDPOINT: str | None = None
    MESOS_DIRECTORY: str | None = None
    MESOS_CHECKPOINT: bool | None = None
    MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: str | None = None


class NomadSettings(EnvModel):
    """Nomad's task variables (client/taskenv/env.go)."""

    NOMAD_ALLOC_ID: str | None = None
    NOMAD_SHORT_ALLOC_ID: str | None = None
    NOMAD_ALLOC_NAME: str | None = None
    NOMAD_ALLOC_INDEX: Count | None = None
    NOMAD_TASK_NAME: str | None = None
    NOMAD_GROUP_NAME: str | None = None
    NOMAD_JOB_ID: str | None = None
    NOMAD_JOB_NAME: str | None = None
    NOMAD_JOB_PARENT_ID: str | None = None
    NOMAD_DC: str | None = None
    NOMAD_NAMESPACE: str | None = None
    NOMAD_REGION: str | None = None
    NOMAD_CPU_LIMIT: Count | None = None  # MHz
    NOMAD_CPU_CORES: str | None = None  # cpuset list, e.g. "0-1,3"
    NOMAD_MEMORY_LIMIT: Count | None = None  # MB (MiB)
    NOMAD_MEMORY_MAX_LIMIT: Count | None = None
    NOMAD_ALLOC_DIR: str | None = None
    NOMAD_TASK_DIR: str | None = None
    NOMAD_SECRETS_DIR: str | None = None


class KubernetesSettings(EnvModel):
    """The kubernetes service link plus the usual downward-API names."""

    KUBERNETES_SERVICE_HOST: str | None = None
    KUBERNETES_SERVICE_PORT: Port | None = None
    POD_NAME: str | None = None
    POD_NAMESPACE: str | None = None
    POD_UID: str | None = None
    POD_IP: str | None = None
    HOST_IP: str | None = None
    NODE_NAME: str | None = None
    HOSTNAME: str | None = None
    MEMORY_LIMIT: Count | None = None  # bytes (resourceFieldRef limits.memory, divisor 1)
    CPU_LIMIT: Amount | None = None  # cores (resourceFieldRef limits.cpu)


# --------------------------------------------------------------------------- value objects


class Ports:
    """Ports by index (``ports[0]``) and by name (``ports.http``, ``ports['http']``)."""

    def __init__(self, by_index: list[int], by_name: Mapping[str, int]) -> None:
        self._by_index = by_index
        self._by_name = dict(by_name)

    def _lookup(self, key: str) -> int | None:
        if key in self._by_name:
            return self._by_name[key]
        folded = {k.upper(): v for k, v in self._by_name.items()}
        return folded.get(key.upper())

    def __getitem__(self, key: int | str) -> int:
        if isinstance(key, int):
            return self._by_index[key]
        found = self._lookup(key)
        if found is None:
            raise KeyError(key)
        return found

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        found = self._lookup(name)
        if found is None:
            raise AttributeError(name)
        return found

    def get(self, key: int | str, default: int | None = None) -> int | None:
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def __len__(self) -> int:
        return len(self._by_index)

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_index)

    @property
    def names(self) -> dict[str, int]:
        return dict(self._by_name)

    def __repr__(self) -> str:
        return f"Ports({self._by_index}, {self._by_name})"


class Labels(Mapping[str, str]):
    """Labels with ``.get(key, default)``; keys also match in Marathon's sanitised form."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def _key(self, key: str) -> str | None:
        if key in self._values:
            return key
        sanitised = _LABEL_INVALID.sub("_", key).upper()
        return sanitised if sanitised in self._values else None

    def __getitem__(self, key: str) -> str:
        found = self._key(key)
        if found is None:
            raise KeyError(key)
        return self._values[found]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Labels({self._values})"


class Resources:
    """What the task was given: memory in MiB, CPUs, disk in MiB, GPUs (None: unknown)."""

    def __init__(self, mem: float | None = None, cpus: float | None = None,
                 disk: float | None = None, gpus: int | None = None) -> None:
        self.mem = mem
        self.cpus = cpus
        self.disk = disk
        self.gpus = gpus

    def __repr__(self) -> str:
        return f"Resources(mem={self.mem}, cpus={self.cpus}, disk={self.disk}, gpus={self.gpus})"


def jvm_heap_mib(mem_mib: float, fraction: float = 0.75, overhead_mib: float = 0.0) -> int:
    """Heap size for ``-Xmx``: a fraction of what is left after a fixed overhead."""
    heap = math.floor((mem_mib - overhead_mib) * fraction)
    if heap < 1:
        raise ContextError(
            f"memory limit {mem_mib:g} MiB leaves no JVM heap "
            f"(fraction {fraction}, overhead {overhead_mib:g} MiB)"
        )
    return heap


# --------------------------------------------------------------------------- the neutral view


class Orchestrator:
    """Orchestrator-neutral view; adapters fill it from their own variables."""

    kind: ClassVar[str] = "none"

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    @property
    def host(self) -> str | None:
        return self._env.get("HOST")

    @cached_property
    def ports(self) -> Ports:
        return Ports([], {})

    @cached_property
    def resources(self) -> Resources:
        return Resources()

    @cached_property
    def labels(self) -> Labels:
        return Labels({})

    @property
    def task_id(self) -> str | None:
        return None

    @property
    def app_id(self) -> str | None:
        return None

    def _port_for(self, container_port: int) -> int | None:
        return None

    def port_for(self, container_port: int, default: int | None = None) -> int:
        """The port assigned for a declared (container) port, e.g. ``port_for(8080)``."""
        found = self._port_for(int(container_port))
        if found is not None:
            return found
        if default is not None:
            return default
        raise ContextError(f"no port is assigned for declared port {container_port} ({self.kind})",
                           variable=f"PORT_{container_port}")

    def jvm_heap(self, fraction: float = 0.75, overhead_mib: float = 0.0, default: str | None = None) -> str:
        """``-Xmx`` value (``"24m"``) from the memory limit."""
        mem = self.resources.mem
        if mem is None:
            if default is not None:
                return default
            raise ContextError(f"no memory limit is known ({self.kind}): cannot size the JVM heap")
        return f"{jvm_heap_mib(mem, fraction, overhead_mib)}m"

    def __repr__(self) -> str:
        return f"<orchestrator {self.kind}>"


class MarathonAdapter(Orchestrator):
    """Marathon/Mesos: ``HOST``, ``PORT*``, ``MARATHON_APP_*``, ``MESOS_*``."""

    kind = "marathon"

    def __init__(self, env: Mapping[str, str], prefix: str | None = None) -> None:
        super().__init__(env)
        self.prefix = detect_prefix(env) if prefix is None else prefix

    @cached_property
    def app(self) -> MarathonAppSettings:
        return MarathonAppSettings.from_env(self._env)

    @cached_property
    def port_settings(self) -> MarathonPortSettings:
        return MarathonPortSettings.from_env(self._env, self.prefix)

    @cached_property
    def mesos(self) -> MesosSettings:
        return MesosSettings.from_env(self._env)

    @property
    def host(self) -> str | None:
        return self.port_settings.HOST

    @property
    def port(self) -> int | None:
        return self.port_settings.PORT

    @cached_property
    def assigned_ports(self) -> list[int]:
        """``PORTS``: host ports then generated container ports."""
        text = self.port_settings.PORTS
        name = self.prefix + "PORTS"
        if not text:
            return []
        return [port_value(name, item) for item in text.split(",")]

    @cached_property
    def ports(self) -> Ports:
        pattern = re.compile(re.escape(self.prefix) + r"PORT(\d+)\Z")
        indexed: dict[int, int] = {}
        for name, value in self._env.items():
            match = pattern.match(name)
            if match:
                indexed[int(match.group(1))] = port_value(name, value)
        expected = list(range(len(indexed)))
        if sorted(indexed) != expected:
            missing = min(set(expected) - set(indexed))
            raise ContextError(f"{self.prefix}PORT{missing} is missing but higher PORT<i> are set",
                               variable=f"{self.prefix}PORT{missing}")
        return Ports([indexed[i] for i in expected], self.named_ports)

    @cached_property
    def named_ports(self) -> dict[str, int]:
        head = self.prefix + "PORT_"
        return {name[len(head):]: port_value(name, value) for name, value in self._env.items()
                if name.startswith(head) and not name[len(head):].isdigit() and name != head}

    @cached_property
    def declared_ports(self) -> dict[int, int]:
        """``PORT_<n>``: declared port n -> assigned port."""
        head = self.prefix + "PORT_"
        return {int(name[len(head):]): port_value(name, value) for name, value in self._env.items()
                if name.startswith(head) and name[len(head):].isdigit()}

    def _port_for(self, container_port: int) -> int | None:
        return self.declared_ports.get(container_port)

    @cached_property
    def resources(self) -> Resources:
        app = self.app
        return Resources(mem=app.MARATHON_APP_RESOURCE_MEM, cpus=app.MARATHON_APP_RESOURCE_CPUS,
                         disk=app.MARATHON_APP_RESOURCE_DISK, gpus=app.MARATHON_APP_RESOURCE_GPUS)

    @cached_property
    def labels(self) -> Labels:
        head = "MARATHON_APP_LABEL_"
        values = {name[len(head):]: value for name, value in self._env.items() if name.startswith(head)}
        for listed in (self.app.MARATHON_APP_LABELS or "").split():
            values.setdefault(listed, "")
        return Labels(values)

    @property
    def task_id(self) -> str | None:
        return self.app.MESOS_TASK_ID

    @property
    def app_id(self) -> str | None:
        return self.app.MARATHON_APP_ID

    @property
    def version(self) -> str | None:
        return self.app.MARATHON_APP_VERSION

    @property
    def docker_image(self) -> str | None:
        return self.app.MARATHON_APP_DOCKER_IMAGE

    @property
    def enforce_group_role(self) -> bool | None:
        return self.app.MARATHON_APP_ENFORCE_GROUP_ROLE


class NomadAdapter(Orchestrator):
    """Nomad: ``NOMAD_PORT_<label>``, ``NOMAD_IP_<label>``, ``NOMAD_*_LIMIT``, ``NOMAD_META_*``."""

    kind = "nomad"

    @cached_property
    def settings(self) -> NomadSettings:
        return NomadSettings.from_env(self._env)

    def _family(self, head: str) -> dict[str, str]:
        return {name[len(head):]: value for name, value in self._env.items()
                if name.startswith(head) and len(name) > len(head)}

    @cached_property
    def bind_ports(self) -> dict[str, int]:
        """``NOMAD_PORT_<label>``: what to bind to inside the task."""
        family = self._family("NOMAD_PORT_")
        return {label: port_value(f"NOMAD_PORT_{label}", v) for label, v in family.items()}

    @cached_property
    def host_ports(self) -> dict[str, int]:
        return {label: port_value(f"NOMAD_HOST_PORT_{label}", v)
                for label, v in self._family("NOMAD_HOST_PORT_").items()}

    @cached_property
    def ips(self) -> dict[str, str]:
        return self._family("NOMAD_IP_")

    @cached_property
    def ports(self) -> Ports:
        """By label; by index in label order (Nomad has no port order)."""
        by_name = self.bind_ports
        return Ports([by_name[k] for k in sorted(by_name)], by_name)

    @property
    def host(self) -> str | None:
        ips = self.ips
        return ips[sorted(ips)[0]] if ips else None

    def _port_for(self, container_port: int) -> int | None:
        for label, port in sorted(self.bind_ports.items()):
            if port == container_port:
                return self.host_ports.get(label, port)
        return None

    @cached_property
    def resources(self) -> Resources:
        cores = self.settings.NOMAD_CPU_CORES
        return Resources(mem=_as_float(self.settings.NOMAD_MEMORY_LIMIT),
                         cpus=float(cpuset_size(cores)) if cores else None)

    @property
    def cpu_mhz(self) -> int | None:
        return self.settings.NOMAD_CPU_LIMIT

    @cached_property
    def labels(self) -> Labels:
        return Labels(self._family("NOMAD_META_"))

    @property
    def task_id(self) -> str | None:
        return self.settings.NOMAD_ALLOC_ID

    @property
    def app_id(self) -> str | None:
        return self.settings.NOMAD_JOB_ID


class KubernetesService:
    """One service link: ``<SVC>_SERVICE_HOST`` / ``_SERVICE_PORT`` / ``_SERVICE_PORT_<NAME>``."""

    def __init__(self, host: str, port: int | None, ports: Mapping[str, int]) -> None:
        self.host = host
        self.port = port
        self.ports = Ports([port] if port is not None else [], ports)

    def __repr__(self) -> str:
        return f"KubernetesService({self.host}:{self.port})"


class KubernetesAdapter(Orchestrator):
    """Kubernetes: service links plus downward-API conventions (POD_NAME, POD_IP, ...)."""

    kind = "kubernetes"

    @cached_property
    def settings(self) -> KubernetesSettings:
        return KubernetesSettings.from_env(self._env)

    @property
    def host(self) -> str | None:
        return self.settings.POD_IP or self.settings.HOSTNAME

    @property
    def task_id(self) -> str | None:
        return self.settings.POD_NAME or self.settings.HOSTNAME

    @property
    def app_id(self) -> str | None:
        return self.settings.POD_NAMESPACE

    def _port_for(self, container_port: int) -> int | None:
        return container_port  # no port mapping: containers bind what they declare

    @cached_property
    def resources(self) -> Resources:
        limit = self.settings.MEMORY_LIMIT
        return Resources(mem=limit / 1048576 if limit is not None else None, cpus=self.settings.CPU_LIMIT)

    @cached_property
    def services(self) -> dict[str, KubernetesService]:
        """Service links by their variable prefix, e.g. ``services['REDIS_MASTER']``."""
        found: dict[str, KubernetesService] = {}
        for name, host in self._env.items():
            if not name.endswith("_SERVICE_HOST"):
                continue
            svc = name[: -len("_SERVICE_HOST")]
            port_text = self._env.get(f"{svc}_SERVICE_PORT")
            port = port_value(f"{svc}_SERVICE_PORT", port_text) if port_text is not None else None
            head = f"{svc}_SERVICE_PORT_"
            named = {n[len(head):]: port_value(n, v) for n, v in self._env.items() if n.startswith(head)}
            found[svc] = KubernetesService(host, port, named)
        return found


def _as_float(value: int | None) -> float | None:
    return None if value is None else float(value)


def cpuset_size(text: str) -> int:
    """Number of CPUs in a cpuset list such as ``0-1,3``."""
    total = 0
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ContextError(f"NOMAD_CPU_CORES={_shown(text)}: not a cpuset list",
                               variable="NOMAD_CPU_CORES")
        total += (int(high) - int(low) + 1) if high else 1
    return total


# --------------------------------------------------------------------------- detection


def detect_prefix(env: Mapping[str, str]) -> str:
    """Marathon's --env_vars_prefix as seen from inside the task.

    ``ENTRYPOINT_ENV_VARS_PREFIX`` says it explicitly.  Otherwise, an app task
    always has ``HOST``; when it is missing, the one ``<P>HOST`` that sits next
    to ``MARATHON_APP_ID`` gives the prefix away.
    """
    explicit = env.get(PREFIX_VARIABLE)
    if explicit is not None:
        return explicit
    if "HOST" in env or "MARATHON_APP_ID" not in env:
        return ""
    candidates = [n[:-4] for n in env
                  if n.endswith("HOST") and n != "HOST" and not n.endswith("_SERVICE_HOST")]
    return candidates[0] if len(candidates) == 1 else ""


def detect(env: Mapping[str, str] | None = None) -> Orchestrator:
    """Pick the adapter from which variables are present (presence only: no validation)."""
    source = os.environ if env is None else env
    if "MARATHON_APP_ID" in source or "MESOS_TASK_ID" in source:
        return MarathonAdapter(source)
    if "NOMAD_ALLOC_ID" in source:
        return NomadAdapter(source)
    if "KUBERNETES_SERVICE_HOST" in source:
        return KubernetesAdapter(source)
    return GenericAdapter(source)


class GenericAdapter(MarathonAdapter):
    """No orchestrator recognised: read ``HOST``/``PORT*`` the way Marathon (and Heroku) name them."""

    kind = "none"
