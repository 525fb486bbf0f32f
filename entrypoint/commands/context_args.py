"""The CONTEXT options shared by ``render``, ``check`` and ``env`` (cli.md)."""

from __future__ import annotations

from entrypoint.commands import lightargs as argparse  # argparse's interface, not its import cost
from entrypoint.context.choices import ContextOptions, MarathonOptions
from entrypoint.context.sources import build_environment
from entrypoint.errors import ContextError, UsageError


def add_context_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("context (where variables come from)")
    group.add_argument("--env-file", action="append", default=[], metavar="FILE",
                       help="dotenv file to read (repeatable; later files win)")
    group.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="set one variable (repeatable; wins over everything)")
    group.add_argument("--clean-env", action="store_true",
                       help="start from an empty environment instead of the current one")
    group.add_argument("--marathon-app", metavar="APP.json",
                       help="add the variables Marathon would inject for this app definition")
    group.add_argument("--host", default="localhost", help="with --marathon-app: the agent host name")
    group.add_argument("--task-id", help="with --marathon-app: the task id (default: a fresh one)")
    group.add_argument("--ports", metavar="P0,P1,...",
                       help="with --marathon-app: assigned ports, '-' for a mapping without host port")
    group.add_argument("--marathon-version", default="1.10", metavar="V",
                       help="with --marathon-app: Marathon version whose behaviour to simulate")
    group.add_argument("--enforce-role", choices=["true", "false"], default="false",
                       help="with --marathon-app: the group's enforceRole (Marathon 1.9+)")
    group.add_argument("--env-vars-prefix", metavar="P",
                       help="with --marathon-app: Marathon's --env_vars_prefix")
    group.add_argument("--mesos-env", action="store_true",
                       help="with --marathon-app: also add what the Mesos docker containerizer sets "
                            "(MESOS_SANDBOX, MESOS_CONTAINER_NAME) for DOCKER containers")


def parse_ports(text: str) -> list[int | None]:
    ports: list[int | None] = []
    for item in text.split(","):
        item = item.strip()
        if item == "-":
            ports.append(None)
            continue
        if not item.isdigit():
            raise UsageError(f"--ports: {item!r} is not a port number or '-'")
        if not 1 <= int(item) <= 65535:
            raise ContextError(f"--ports: port {item} is out of range 1-65535", variable="--ports")
        ports.append(int(item))
    return ports


def context_options(ns: argparse.Namespace) -> ContextOptions:
    marathon = None
    if ns.marathon_app is not None:
        marathon = MarathonOptions(
            app_path=ns.marathon_app,
            host=ns.host,
            task_id=ns.task_id,
            ports=parse_ports(ns.ports) if ns.ports else None,
            version=ns.marathon_version,
            enforce_role=ns.enforce_role == "true",
            env_vars_prefix=ns.env_vars_prefix,
            mesos_env=getattr(ns, "mesos_env", False),
        )
    return ContextOptions(clean_env=ns.clean_env, env_files=list(ns.env_file), sets=list(ns.set),
                          marathon=marathon)


def environment_from_args(ns: argparse.Namespace) -> dict[str, str]:
    return build_environment(context_options(ns))
