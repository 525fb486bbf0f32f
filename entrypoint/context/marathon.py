"""Offline synthesis of the environment Marathon gives a task (marathon-env.md).

Why offline: templates should fail in CI, not on the cluster.  Given an app
definition plus what the scheduler would decide at launch (host, ports, task
id), this reproduces Marathon's ``TaskBuilder.commandInfo`` environment
exactly, in three layers (later wins): context and label variables; port
variables and ``HOST`` (the only ones ``--env_vars_prefix`` touches); the
app's own string ``env`` entries.
"""

from __future__ import annotations

import os
import time

from entrypoint.context.choices import MarathonOptions
from entrypoint.context.javafmt import double_to_string
from entrypoint.errors import ContextError

TYPE_CHECKING = False
if TYPE_CHECKING:  # random, uuid and datetime are imported where they are used: `check` pays for less
    from collections.abc import Mapping, Sequence
    from typing import Any, ClassVar

DEFAULT_VERSION = "1970-01-01T00:00:00.000Z"
SERVICE_PORT_MIN = 10000  # Marathon's --local_port_min default
SERVICE_PORT_MAX = 20000
DEFAULT_HOST_PORT_BASE = 31000  # where simulated dynamic host ports start
GENERATED_PORT_MIN = 1025
GENERATED_PORT_MAX = 65535
LABEL_KEY_LIMIT = 512 - len("MARATHON_APP_LABEL_")  # keys must be shorter than this
LABEL_VALUE_LIMIT = 512
MESOS_SANDBOX = "/mnt/mesos/sandbox"
MAX_APP_CHARS = 64 << 20  # far above any real app definition, megabyte labels included

_LABEL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_JSON_SPACE = " \t\n\r"

HostPort = int | None  # None: a mapping that consumes no host port


class _Record:
    """A frozen record with keyword construction and equality (no :mod:`dataclasses`: its
    :mod:`inspect` import alone is most of a ``check``'s start-up)."""

    __slots__: tuple[str, ...] = ()
    _DEFAULTS: ClassVar[dict[str, object]] = {}

    def __init__(self, **values: Any) -> None:
        values = {**self._DEFAULTS, **values}
        missing = set(self.__slots__) - set(values)
        if missing or set(values) - set(self.__slots__):
            raise TypeError(f"{type(self).__name__}: fields {sorted(self.__slots__)}, got {sorted(values)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(repr(getattr(self, n)) for n in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class DeclaredPort(_Record):
    """One declared port, normalised the way Marathon stores it."""

    __slots__ = ("fixed_host", "has_host", "name", "requested")
    requested: int  # containerPort (mappings) or the (service) port (definitions)
    name: str | None
    fixed_host: int | None  # host port Marathon must use (requirePorts / fixed hostPort)
    has_host: bool  # False: container network mapping without hostPort


class AppSpec(_Record):
    """The parts of an app definition that shape the environment."""

    __slots__ = ("app_id", "args", "cpus", "disk", "docker_image", "env", "gpus", "labels", "mem", "ports",
                 "version")
    _DEFAULTS: ClassVar[dict[str, object]] = {"args": ()}
    app_id: str
    version: str
    cpus: float
    mem: float
    disk: float
    gpus: int
    docker_image: str | None
    labels: dict[str, str]
    ports: list[DeclaredPort]
    env: dict[str, str]
    #: ``args`` (passed to the ENTRYPOINT without a shell; ``check --expand-args`` checks them); default ()
    args: tuple[str, ...]


# --------------------------------------------------------------------------- parsing


def load_app(path: str) -> AppSpec:
    """Read and validate an app definition file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_APP_CHARS + 1)  # bounded: the path may be /dev/zero or a pipe
    except FileNotFoundError:
        raise ContextError("app definition not found", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextError(f"cannot read app definition: {exc}", source=path) from None
    if len(text) > MAX_APP_CHARS:
        raise ContextError(f"app definition is larger than {MAX_APP_CHARS >> 20} Mi characters", source=path)
    try:
        data = loads_json(text)
    except ValueError as exc:  # json.JSONDecodeError, or int()'s digit limit on a 5000-digit number
        msg = getattr(exc, "msg", None)
        where = f" at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}" if msg else ""
        raise ContextError(f"not valid JSON: {msg or exc}{where}", source=path) from None
    except RecursionError:  # the json module recurses per nesting level
        raise ContextError("not valid JSON here: nested too deeply", source=path) from None
    try:
        return parse_app(data)
    except ContextError as exc:
        raise ContextError(exc.message, variable=exc.variable, source=path) from None


def loads_json(text: str) -> Any:
    """:func:`json.loads`, through the C scanner the json package itself uses (``_json``).

    Importing :mod:`json` costs ``check --marathon-app`` its :mod:`re` and :mod:`enum` (the
    decoder's regular expressions), a third of its start-up.  The C scanner needs neither.
    Anything unusual (an error, a byte-order mark, trailing data) goes to :func:`json.loads`
    itself, so errors are exactly the json module's :class:`json.JSONDecodeError`.
    """
    factory: Any = None
    try:
        from _json import make_scanner as factory
    except ImportError:  # pragma: no cover - CPython always has it
        pass
    if factory is not None:
        start = len(text) - len(text.lstrip(_JSON_SPACE))
        try:
            value, end = factory(_JsonContext())(text, start)
        except RecursionError:
            raise
        except Exception:  # any refusal: json.loads below says exactly what and where
            pass
        else:
            if not text[end:].strip(_JSON_SPACE):
                return value
    import json

    return json.loads(text)


class _JsonContext:
    """What ``_json.make_scanner`` reads from a :class:`json.JSONDecoder`, with json's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


def parse_app(data: Any) -> AppSpec:
    """Validate a decoded app definition; errors name the field and the reason."""
    if not isinstance(data, dict):
        raise ContextError(f"the app definition must be a JSON object, not {_json_type(data)}")
    if isinstance(data.get("apps"), list) or "containers" in data:
        raise ContextError("groups and pods are not supported: give a single app definition")
    app_id = _app_id(data)
    data = normalize_deprecated(data)
    network = _network_mode(data)
    container = _container(data)
    return AppSpec(
        app_id=app_id,
        version=_version(data.get("version")),
        cpus=_number(data, "cpus", 1.0),
        mem=_number(data, "mem", 128.0),
        disk=_number(data, "disk", 0.0),
        gpus=_gpus(data),
        docker_image=_docker_image(container),
        labels=_string_map(data, "labels"),
        ports=_declared_ports(data, container, network),
        env=_user_env(data),
        args=_args(data),
    )


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number"


def _field(path: str, why: str) -> ContextError:
    return ContextError(f"field {path!r}: {why}", variable=path)


def _app_id(data: dict[str, Any]) -> str:
    raw = data.get("id")
    if raw is None:
        raise _field("id", "missing (every app needs an id)")
    if not isinstance(raw, str) or not raw.strip("/"):
        raise _field("id", f"must be a non-empty string, got {_json_type(raw)}")
    segments = [s for s in raw.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise _field("id", "must not contain '.' or '..' segments")
    return "/" + "/".join(segments)


def _version(raw: Any) -> str:
    if raw is None:
        return DEFAULT_VERSION
    if not isinstance(raw, str):
        raise _field("version", f"must be an ISO-8601 timestamp string, got {_json_type(raw)}")
    try:
        from datetime import UTC, datetime

        stamp = datetime.fromisoformat(raw)
    except ValueError:
        raise _field("version", f"{raw!r} is not an ISO-8601 timestamp") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(data: dict[str, Any], key: str, default: float) -> float:
    raw = data.get(key, default)
    if raw is None:
        return default
    if not _is_number(raw):
        raise _field(key, f"must be a number, got {_json_type(raw)} {raw!r}")
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise _field(key, f"must be a finite number >= 0, got {raw!r}")
    return value


def _gpus(data: dict[str, Any]) -> int:
    raw = data.get("gpus", 0)
    if raw is None:
        return 0
    if not _is_number(raw) or float(raw) != int(raw) or raw < 0:
        raise _field("gpus", f"must be a whole number >= 0, got {raw!r}")
    return int(raw)


def _object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _field(path, f"must be an object, got {_json_type(value)}")
    return value


def _container(data: dict[str, Any]) -> dict[str, Any]:
    container = _object(data.get("container"), "container")
    kind = container.get("type", "DOCKER" if container else None)
    if kind not in (None, "DOCKER", "MESOS"):
        raise _field("container.type", f"must be DOCKER or MESOS, got {kind!r}")
    _object(container.get("docker"), "container.docker")
    return container


def _docker_image(container: dict[str, Any]) -> str | None:
    if container.get("type", "DOCKER") != "DOCKER" or not container:
        return None
    docker = _object(container.get("docker"), "container.docker")
    image = docker.get("image")
    if image is None:
        return None
    if not isinstance(image, str):
        raise _field("container.docker.image", f"must be a string, got {_json_type(image)}")
    return image


def _string_map(data: dict[str, Any], key: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in _object(data.get(key), key).items():
        if not isinstance(value, str):
            raise _field(f"{key}.{name}", f"values must be strings, got {_json_type(value)}")
        result[name] = value
    return result


def _args(data: dict[str, Any]) -> tuple[str, ...]:
    raw = data.get("args")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _field("args", f"must be an array of strings, got {_json_type(raw)}")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise _field(f"args[{index}]", f"must be a string, got {_json_type(item)}")
    return tuple(raw)


def _user_env(data: dict[str, Any]) -> dict[str, str]:
    """String entries only: secret references never reach CommandInfo's environment."""
    result: dict[str, str] = {}
    for name, value in _object(data.get("env"), "env").items():
        if isinstance(value, str):
            result[name] = value
        elif isinstance(value, dict) and "secret" in value:
            continue
        else:
            raise _field(f"env.{name}", f"must be a string or a secret reference, got {_json_type(value)}")
    return result


# --------------------------------------------------------------------------- ports


def _network_mode(data: dict[str, Any]) -> str:
    """'host', 'bridge' or 'container', from `networks` (1.5+) or `docker.network` (legacy)."""
    networks = data.get("networks")
    legacy = _object(_object(data.get("container"), "container").get("docker"), "container.docker").get(
        "network"
    )
    if networks is not None:
        if not isinstance(networks, list):
            raise _field("networks", f"must be an array, got {_json_type(networks)}")
        modes = set()
        for i, net in enumerate(networks):
            mode = _object(net, f"networks[{i}]").get("mode", "container")
            if mode not in ("host", "container/bridge", "container"):
                raise _field(f"networks[{i}].mode",
                             f"must be host, container/bridge or container, got {mode!r}")
            modes.add(mode)
        if len(modes) > 1:
            raise _field("networks", "cannot mix network modes")
        mode = modes.pop() if modes else "host"
        return {"host": "host", "container/bridge": "bridge", "container": "container"}[mode]
    if legacy is None:
        return "host"
    mapping = {"HOST": "host", "BRIDGE": "bridge", "USER": "container"}
    if not isinstance(legacy, str) or legacy not in mapping:  # a dict/list is unhashable
        raise _field("container.docker.network", f"must be HOST, BRIDGE or USER, got {legacy!r}")
    return mapping[legacy]


MESOS_BRIDGE_NAME = "mesos-bridge"  # Marathon's --mesos_bridge_name default


def normalize_deprecated(data: dict[str, Any]) -> dict[str, Any]:
    """Marathon's ``AppNormalization.forDeprecated`` for the network fields: legacy API -> canonical.

    The legacy IP-per-container API (a top-level ``ipAddress``, Marathon
    1.0-1.4) becomes ``networks`` plus ``container.portMappings`` exactly as
    Marathon rewrites it when the app is posted (NetworkTranslation,
    migrateDockerPortMappings, migrateIpDiscovery):

    * ``ipAddress`` + ``docker.network`` HOST/USER/BRIDGE -> a host, container
      (``ipAddress.networkName``) or container/bridge network;
    * ``ipAddress`` alone -> a container network named ``networkName``, or
      container/bridge when that name is ``mesos-bridge``;
    * no ``container`` -> an empty MESOS container;
    * ``docker.portMappings`` -> ``container.portMappings`` (both set: refused);
    * ``ipAddress.discovery.ports`` -> port mappings without host port
      (MESOS containers only; with ``portMappings`` too: refused).

    Mixing ``ipAddress`` or ``docker.network`` with ``networks`` is refused,
    as Marathon refuses it.  The input is not modified.
    """
    ip = data.get("ipAddress")
    networks = data.get("networks")
    has_networks = networks is not None and networks != []
    container = _object(data.get("container"), "container")
    docker = _object(container.get("docker"), "container.docker")
    legacy_network = docker.get("network")
    if has_networks and (ip is not None or legacy_network is not None):
        what = "ipAddress" if ip is not None else "container.docker.network"
        raise _field(what, "cannot mix deprecated and canonical network APIs (give 'networks' only)")
    container = _migrate_docker_port_mappings(container, docker)
    if ip is None:
        if container is data.get("container"):
            return data
        return {**data, "container": container}
    ip = _object(ip, "ipAddress")
    name = ip.get("networkName")
    if name is not None and (not isinstance(name, str) or not name):
        raise _field("ipAddress.networkName", "must be a non-empty string")
    if legacy_network is not None:
        mapping = {"HOST": "host", "USER": "container", "BRIDGE": "container/bridge"}
        if not isinstance(legacy_network, str) or legacy_network not in mapping:
            raise _field("container.docker.network", f"must be HOST, BRIDGE or USER, got {legacy_network!r}")
        mode = mapping[legacy_network]
    else:
        mode = "container/bridge" if name == MESOS_BRIDGE_NAME else "container"
    network: dict[str, Any] = {"mode": mode}
    if mode == "container" and name is not None:
        network["name"] = name
    container = dict(container) if data.get("container") else {"type": "MESOS"}
    if mode == "host":
        container.pop("portMappings", None)  # maybeDropPortMappings: host networking has none
    if "docker" in container:
        container["docker"] = {k: v for k, v in container["docker"].items() if k != "network"}
    discovery = _object(ip.get("discovery"), "ipAddress.discovery")
    ports = _discovery_ports(discovery.get("ports"))
    if ports:
        kind = container.get("type", "DOCKER")
        if kind != "MESOS":
            raise _field("ipAddress.discovery.ports", f"do not apply for container type {kind}")
        if container.get("portMappings"):
            raise _field("ipAddress.discovery.ports", "container.portMappings and ipAddress.discovery.ports "
                                                      "must not both be set")
        container["portMappings"] = ports
    result = {k: v for k, v in data.items() if k != "ipAddress"}
    result.update(networks=[network], container=container)
    return result


def _migrate_docker_port_mappings(container: dict[str, Any], docker: dict[str, Any]) -> dict[str, Any]:
    """``container.docker.portMappings`` (Marathon < 1.5) moves to ``container.portMappings``."""
    legacy = docker.get("portMappings")
    if legacy is None:
        return container
    if container.get("portMappings") and legacy:
        raise _field("container.docker.portMappings", "cannot specify both portMappings and "
                                                      "docker.portMappings")
    migrated = {**container, "docker": {k: v for k, v in docker.items() if k != "portMappings"}}
    if container.get("portMappings") is None or legacy:
        migrated["portMappings"] = legacy
    return migrated


def _discovery_ports(raw: Any) -> list[dict[str, Any]]:
    """``ipAddress.discovery.ports`` entries as port mappings (the old API had no host ports)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _field("ipAddress.discovery.ports", f"must be an array, got {_json_type(raw)}")
    mappings = []
    for i, item in enumerate(raw):
        path = f"ipAddress.discovery.ports[{i}]"
        entry = _object(item, path)
        number = _port_number(entry.get("number", 0), f"{path}.number")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise _field(f"{path}.name", "must be a non-empty string (every discovery port has a name)")
        mappings.append({"containerPort": number, "name": name})
    return mappings


def _port_number(value: Any, path: str, *, allow_zero: bool = True) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _field(path, f"must be an integer port, got {_json_type(value)} {value!r}")
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise _field(path, f"port {value} is out of range {low}-65535")
    return value


def _port_name(entry: dict[str, Any], path: str) -> str | None:
    name = entry.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise _field(f"{path}.name", "must be a non-empty string")
    return name


def _declared_ports(data: dict[str, Any], container: dict[str, Any], network: str) -> list[DeclaredPort]:
    mappings = container.get("portMappings")
    mappings_path = "container.portMappings"
    if network == "host":
        if mappings:
            raise _field(mappings_path, "port mappings need a bridge or container network")
        ports = _host_ports(data)
    else:
        ports = _mapped_ports(_default_mappings(data, mappings), mappings_path, network)
    names = [p.name for p in ports if p.name is not None]
    if len(names) != len(set(names)):
        raise _field("portDefinitions" if network == "host" else mappings_path, "port names must be unique")
    return ports


def _host_ports(data: dict[str, Any]) -> list[DeclaredPort]:
    definitions = data.get("portDefinitions")
    legacy = data.get("ports")
    if definitions is not None and legacy is not None:
        raise _field("ports", "give either 'ports' (legacy) or 'portDefinitions', not both")
    if definitions is None and legacy is not None:
        if not isinstance(legacy, list):
            raise _field("ports", f"must be an array, got {_json_type(legacy)}")
        definitions = [{"port": p} for p in legacy]
        path = "ports"
    else:
        path = "portDefinitions"
    if definitions is None:
        definitions = [{"port": 0, "name": "default"}]  # Marathon's DefaultPortDefinitions
    if not isinstance(definitions, list):
        raise _field(path, f"must be an array, got {_json_type(definitions)}")
    require = data.get("requirePorts", False)
    if not isinstance(require, bool):
        raise _field("requirePorts", f"must be true or false, got {_json_type(require)}")
    entries = [_object(d, f"{path}[{i}]") for i, d in enumerate(definitions)]
    requested = [
        _port_number(e.get("port", 0), f"{path}[{i}].port" if path == "portDefinitions" else f"ports[{i}]")
        for i, e in enumerate(entries)
    ]
    requested = _assign_service_ports(requested)
    return [
        DeclaredPort(
            requested=port,
            name=_port_name(entry, f"{path}[{i}]"),
            fixed_host=port if require else None,
            has_host=True,
        )
        for i, (entry, port) in enumerate(zip(entries, requested, strict=True))
    ]


def _assign_service_ports(requested: list[int]) -> list[int]:
    """Port 0 becomes a service port when Marathon stores the app (AssignDynamicServiceLogic)."""
    taken = set(requested)
    candidate = SERVICE_PORT_MIN
    result = []
    for port in requested:
        if port == 0:
            while candidate in taken:
                candidate += 1
            if candidate > SERVICE_PORT_MAX:
                raise _field("portDefinitions", "no free service port in 10000-20000")
            taken.add(candidate)
            port = candidate
        result.append(port)
    return result


def _default_mappings(data: dict[str, Any], mappings: Any) -> Any:
    """applyDefaultPortMappings + maybeAddPortMappings: a non-host network always has mappings.

    No ``portMappings`` at all gives Marathon's one default mapping
    (containerPort 0, name ``default``); an explicit ``[]`` stays empty; and
    legacy ``portDefinitions``/``ports`` beyond the mappings' count add
    plain containerPort-0 mappings.
    """
    if mappings is None:
        mappings = [{"containerPort": 0, "name": "default"}]
    if not isinstance(mappings, list):
        return mappings
    definitions = data.get("portDefinitions")
    if definitions is None:
        definitions = data.get("ports")
    extra = len(definitions) - len(mappings) if isinstance(definitions, list) else 0
    return mappings + [{"containerPort": 0}] * extra


def _mapped_ports(mappings: Any, path: str, network: str) -> list[DeclaredPort]:
    if mappings is None:
        return []
    if not isinstance(mappings, list):
        raise _field(path, f"must be an array, got {_json_type(mappings)}")
    ports = []
    for i, raw in enumerate(mappings):
        entry = _object(raw, f"{path}[{i}]")
        container_port = _port_number(entry.get("containerPort", 0), f"{path}[{i}].containerPort")
        host = entry.get("hostPort")
        if host is None and network == "bridge":
            host = 0  # BRIDGE normalises a missing hostPort to 0 (dynamic)
        if host is not None:
            host = _port_number(host, f"{path}[{i}].hostPort")
        ports.append(
            DeclaredPort(
                requested=container_port,
                name=_port_name(entry, f"{path}[{i}]"),
                fixed_host=host or None,
                has_host=host is not None,
            )
        )
    return ports


def resolve_ports(
    declared: Sequence[DeclaredPort], given: Sequence[int | None] | None, seed: str
) -> list[int]:
    """The effective ``PORT<i>`` values; fills in what the scheduler would choose.

    ``given`` follows ``--ports``: a host port, the generated port of a
    mapping without host port and containerPort 0, or None ('-').
    """
    if given is not None and len(given) != len(declared):
        raise ContextError(
            f"--ports gives {len(given)} port(s) but the app declares {len(declared)}", variable="--ports"
        )
    items: list[int | None] = list(given) if given is not None else [None] * len(declared)
    used = {p.fixed_host for p in declared if p.fixed_host} | {p.requested for p in declared}
    used |= {p for p in items if p is not None}
    next_host = DEFAULT_HOST_PORT_BASE
    result: list[int] = []
    for i, (port, item) in enumerate(zip(declared, items, strict=True)):
        if item is not None and not 1 <= item <= 65535:
            raise ContextError(f"--ports item {i}: port {item} is out of range 1-65535", variable="--ports")
        if port.has_host:
            if item is None and port.fixed_host is None and given is not None:
                raise ContextError(f"--ports item {i}: port {i} has a host port, '-' is not allowed",
                                   variable="--ports")
            if port.fixed_host is not None:
                if item is not None and item != port.fixed_host:
                    raise ContextError(
                        f"--ports item {i}: port {i} needs host port {port.fixed_host}, got {item}",
                        variable="--ports",
                    )
                result.append(port.fixed_host)
            elif item is not None:
                result.append(item)
            else:
                while next_host in used:
                    next_host += 1
                used.add(next_host)
                result.append(next_host)
        elif port.requested != 0:
            if item is not None:
                raise ContextError(
                    f"--ports item {i}: mapping {i} has no host port and a fixed containerPort "
                    f"{port.requested}; use '-'",
                    variable="--ports",
                )
            result.append(port.requested)
        else:
            value = item if item is not None else _generated_port(seed, i, used)
            used.add(value)
            result.append(value)
    return result


def _generated_port(seed: str, index: int, used: set[int]) -> int:
    """Marathon picks at random; offline we pick reproducibly from the app id."""
    import random

    rng = random.Random(f"{seed}#{index}")
    while True:
        port = rng.randint(GENERATED_PORT_MIN, GENERATED_PORT_MAX)
        if port not in used:
            return port


def ports_env(
    declared: Sequence[DeclaredPort], effective: Sequence[int], *, legacy_names: bool
) -> dict[str, str]:
    """EnvironmentHelper.portsEnv: PORT<i>, PORT_<n>, PORT_<NAME>, PORT, PORTS."""
    env: dict[str, str] = {}
    if not declared:
        return env
    host_ports: list[int] = []
    generated: list[int] = []
    for i, (port, value) in enumerate(zip(declared, effective, strict=True)):
        env[f"PORT{i}"] = str(value)
        env[f"PORT_{port.requested or value}"] = str(value)
        if port.has_host:
            host_ports.append(value)
        elif port.requested == 0:
            generated.append(value)
        if port.name is not None and (port.has_host or not legacy_names):
            env[f"PORT_{port.name.upper()}"] = str(value)
    assigned = host_ports + generated
    if assigned:
        env["PORT"] = str(assigned[0])
    env["PORTS"] = ",".join(str(p) for p in assigned)
    return env


# --------------------------------------------------------------------------- the rest


def parse_version(text: str) -> tuple[int, int]:
    """'1.10', '1.4.x', 'HEAD(1.10)', '1.9.109' -> (major, minor)."""
    found = _first_version(text)
    if found is None:
        raise ContextError(f"--marathon-version: {text!r} is not a version like 1.10",
                           variable="--marathon-version")
    return found


def _first_version(text: str) -> tuple[int, int] | None:
    """The first ``DIGITS.DIGITS`` in ``text`` (as ``re.search(r"(\\d+)\\.(\\d+)")`` finds it)."""
    n, i = len(text), 0
    while i < n:
        if not text[i].isdecimal():
            i += 1
            continue
        j = i
        while j < n and text[j].isdecimal():
            j += 1
        if j + 1 < n and text[j] == "." and text[j + 1].isdecimal():
            k = j + 1
            while k < n and text[k].isdecimal():
                k += 1
            return int(text[i:j]), int(text[j + 1 : k])
        i = j  # a match inside this run of digits would need the same '.' after it
    return None


def _label_name(key: str) -> str:
    """``re.sub(r"[^a-zA-Z0-9_]+", "_", key)``: every run of other characters becomes one ``_``."""
    out: list[str] = []
    in_run = False
    for char in key:
        if char in _LABEL_CHARS:
            out.append(char)
            in_run = False
        elif not in_run:
            out.append("_")
            in_run = True
    return "".join(out)


def safe_path(app_id: str) -> str:
    return "_".join(s for s in app_id.split("/") if s)


def _uuid1(node: int) -> str:
    """A time-based UUID as :func:`uuid.uuid1` makes it (the uuid module costs more to import)."""
    timestamp = time.time_ns() // 100 + 0x01B21DD213814000  # 100 ns steps since 1582-10-15
    clock_seq = int.from_bytes(os.urandom(2), "big") & 0x3FFF
    time_low, time_mid = timestamp & 0xFFFFFFFF, (timestamp >> 32) & 0xFFFF
    time_hi = ((timestamp >> 48) & 0x0FFF) | 0x1000  # version 1
    return (f"{time_low:08x}-{time_mid:04x}-{time_hi:04x}-"
            f"{(clock_seq >> 8) | 0x80:02x}{clock_seq & 0xFF:02x}-{node:012x}")  # RFC 4122 variant


def fresh_task_id(app_id: str, version: tuple[int, int]) -> str:
    """A new id in the format of that Marathon version (time-based uuid, random node)."""
    node = int.from_bytes(os.urandom(6), "big") | 0x010000000000  # multicast bit: not a real MAC
    ident = _uuid1(node)
    if version >= (1, 8):
        return f"{safe_path(app_id)}.instance-{ident}._app.1"
    return f"{safe_path(app_id)}.{ident}"


def label_env(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels over the size limits vanish entirely; names are sanitised."""
    env: dict[str, str] = {}
    names: list[str] = []
    for key, value in labels.items():
        if _java_len(key) >= LABEL_KEY_LIMIT or _java_len(value) >= LABEL_VALUE_LIMIT:
            continue
        name = _label_name(key).upper()
        if name not in names:
            names.append(name)
        env[f"MARATHON_APP_LABEL_{name}"] = value
    env["MARATHON_APP_LABELS"] = " ".join(names)
    return env


def _java_len(text: str) -> int:
    """String.length() counts UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def synthesize(
    app: AppSpec,
    *,
    host: str,
    task_id: str | None = None,
    ports: Sequence[int | None] | None = None,
    version: str = "1.10",
    enforce_role: bool | None = False,
    env_vars_prefix: str | None = None,
    mesos_env: bool = False,
) -> dict[str, str]:
    """The task's environment as Marathon builds it (plus, on request, the Mesos docker layer)."""
    ver = parse_version(version)
    task = task_id if task_id is not None else fresh_task_id(app.app_id, ver)
    env: dict[str, str] = {
        "MESOS_TASK_ID": task,
        "MARATHON_APP_ID": app.app_id,
        "MARATHON_APP_VERSION": app.version,
        "MARATHON_APP_RESOURCE_CPUS": double_to_string(app.cpus),
        "MARATHON_APP_RESOURCE_MEM": double_to_string(app.mem),
        "MARATHON_APP_RESOURCE_DISK": double_to_string(app.disk),
        "MARATHON_APP_RESOURCE_GPUS": str(app.gpus),
    }
    if app.docker_image is not None:
        env["MARATHON_APP_DOCKER_IMAGE"] = app.docker_image
    if ver >= (1, 9) and enforce_role is not None:
        env["MARATHON_APP_ENFORCE_GROUP_ROLE"] = "TRUE" if enforce_role else "FALSE"
    env.update(label_env(app.labels))
    effective = resolve_ports(app.ports, ports, seed=app.app_id)
    prefix = env_vars_prefix or ""
    prefixed = ports_env(app.ports, effective, legacy_names=ver < (1, 5))
    prefixed["HOST"] = host
    env.update({prefix + name: value for name, value in prefixed.items()})
    if mesos_env and app.docker_image is not None:
        env.update(mesos_docker_env(task))
    env.update(app.env)
    return env


def mesos_docker_env(task_id: str) -> dict[str, str]:
    """What the Mesos docker containerizer adds (1.4+ container naming)."""
    import uuid

    container_id = uuid.uuid5(uuid.NAMESPACE_URL, f"mesos-task:{task_id}")
    return {"MESOS_SANDBOX": MESOS_SANDBOX, "MESOS_CONTAINER_NAME": f"mesos-{container_id}"}


def environment_for_options(opts: MarathonOptions) -> dict[str, str]:
    """Entry point used by :func:`entrypoint.context.sources.build_environment`."""
    app = load_app(str(opts.app_path))
    return synthesize(
        app,
        host=opts.host,
        task_id=opts.task_id,
        ports=opts.ports,
        version=opts.version,
        enforce_role=opts.enforce_role,
        env_vars_prefix=opts.env_vars_prefix,
        mesos_env=opts.mesos_env,
    )
