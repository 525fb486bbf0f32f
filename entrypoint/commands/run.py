"""``entrypoint run``: the container's PID 1.

Import discipline: this module and everything it imports at the top level is
resident for the container's whole life, so it is standard library only and
as little of it as possible (no argparse, no subprocess, no signal enums).
"""

from __future__ import annotations

import os

from entrypoint import log, stdio
from entrypoint.errors import EX_USAGE, EntrypointError
from entrypoint.supervise.parts import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.options import RunOptions
    from entrypoint.supervise.loop import Supervisor
    from entrypoint.supervise.parts.logfollow import LogFollower
    from entrypoint.supervise.parts.user import Identity
    from entrypoint.supervise.parts.watch import Watcher
    from entrypoint.supervise.services.config import Service
    from entrypoint.supervise.steps.termlog import TerminationLog
    from entrypoint.supervise.unit import Unit


def main(argv: list[str]) -> int:
    """Never returns normally: exits at once with the child's code.

    Interpreter finalisation takes a few milliseconds and does nothing useful
    for PID 1 (no atexit work, no files open for writing), while every one of
    them is added to the container's stop time.
    """
    stdio.ensure_open()  # before any file is opened: none may take fd 0, 1 or 2
    state = _Start()
    try:
        code = _run(argv, state)
    except EntrypointError as exc:  # a bad setting found before anything started
        for line in str(exc).splitlines():
            log.error(line)
        code = exc.exit_code
        if state.termination_log is not None and code != EX_USAGE:
            state.termination_log.publish(code)
    stdio.flush_quietly()
    os._exit(code)


class _Start:
    """What main needs to know if the start fails: where to explain it."""

    termination_log: TerminationLog | None = None


def _run(argv: list[str], state: _Start) -> int:
    # First, before anything can start a child or a signal can arrive unseen.
    signals.block_all()
    from entrypoint.options import USAGE, parse_run_args
    from entrypoint.supervise.loop import Supervisor
    from entrypoint.supervise.parts import spawn, tree
    from entrypoint.supervise.steps import forks as steps

    environ = spawn.original_environ()
    opts = parse_run_args(argv, environ, command_optional=True)
    if opts.help:
        stdio.write(USAGE)
        return 0
    log.set_level(opts.verbosity)
    state.termination_log = _termination_log(opts)
    services = _load_services(opts)  # a broken directory: exit 78 before anything renders or runs
    if opts.waits:
        from entrypoint.supervise.steps.waits import parse_wait_url

        for url in opts.waits:
            parse_wait_url(url)  # a bad URL is a usage error before anything renders or runs
    _check_files(opts)
    if os.getpid() != 1 and tree.become_subreaper():
        log.debug("not PID 1: registered as child subreaper")
    sup = Supervisor(opts)
    secrets = _settle_identity_and_secrets(sup, environ)
    identities = _service_identities(services)
    if not sup.tree_ok:
        log.warn("/proc does not show our PID namespace: leftover processes will not be stopped")
    _check_kill_window(opts, environ, services)
    if opts.watch:
        # Before the first render, so that an edit made while it runs is seen.
        sup.watcher = _watcher(opts, environ)
        if sup.watcher is not None:
            sup.readers.append(sup.watcher)
    follower = _follower(opts)
    if follower is not None:
        sup.readers.append(follower)
    kept = state.termination_log
    try:
        rendered = steps.render(sup, environ)  # one fork: --expand-args, then the templates
        argv = rendered.values("arg") if opts.expand_args else opts.command
        env = steps.hooks(sup, environ)
        steps.waits(sup)
    except steps.StepFailed as failed:
        if follower is not None:
            follower.finish()
        if kept is not None:
            kept.publish(failed.code)
        return failed.code
    hook_env = env  # what the finish hooks get: the hooks' environment, no secrets, no --user HOME
    container_env = _with_secrets(sup, env, secrets)
    env = _app_environment(sup, container_env)
    sup.state.command = list(argv)  # as started (after --expand-args)
    units = _service_units(sup, services, identities, container_env)
    if argv:
        from entrypoint.supervise.loop import app_unit

        units.append(app_unit(argv, env, sup.identity, sup.opts.restart, units))
    code = sup.run(units, on_start=kept.close if kept is not None else None)
    if kept is not None and (sup.start_failed or sup.cannot_start is not None):
        kept.publish(code)
    sup.run_deferred_finishes()
    if sup.output is not None:
        sup.output.close_all()  # the services' last lines, partial ones flushed
    if follower is not None:
        follower.poll()  # the app's last lines before the finish hooks' output
    from entrypoint.supervise.steps.finish import run_finish_hooks

    run_finish_hooks(sup, code, hook_env)
    if follower is not None:
        follower.finish()
    return code


def _load_services(opts: RunOptions) -> list[Service]:
    """``--services-dir``: every problem at once (exit 78), before anything starts; COMMAND is
    optional only when there are services."""
    services: list[Service] = []
    if os.path.exists(opts.services_dir):  # the default need not exist: no import, no services
        from entrypoint.supervise.services import config

        services = config.load(opts.services_dir)
    if not opts.command and not services:
        from entrypoint.errors import UsageError
        from entrypoint.options import NO_COMMAND

        raise UsageError(NO_COMMAND)
    return services


def _service_identities(services: list[Service]) -> dict[str, Identity | None]:
    """Each service's ``user``, resolved in PID 1 before anything starts (exit 78 if wrong)."""
    found: dict[str, Identity | None] = {}
    for service in services:
        if service.user is None:
            continue
        from entrypoint.errors import ConfigError
        from entrypoint.supervise.parts import user

        try:
            found[service.name] = user.for_app(service.user)
        except ConfigError as exc:
            raise ConfigError(f"{service.directory}/user: {exc}") from None
    return found


def _service_units(sup: Supervisor, services: list[Service], identities: dict[str, Identity | None],
                   env: dict[str, str]) -> list[Unit]:
    """One unit per service: the container's environment plus ENTRYPOINT_SERVICE=NAME (and its
    own user's HOME), its directory as working directory, output framed by ``NAME | ``."""
    if not services:
        return []
    from entrypoint.supervise.parts import user
    from entrypoint.supervise.services.output import ServiceOutput
    from entrypoint.supervise.services.readiness import Notifications
    from entrypoint.supervise.unit import SERVICE, Unit

    sup.output = ServiceOutput()
    sup.readers.append(sup.output)
    if any(s.notification_fd is not None for s in services):
        sup.notifications = Notifications()
        sup.readers.append(sup.notifications)
    units = []
    for service in services:
        ident = identities.get(service.name)
        own = {**env, "ENTRYPOINT_SERVICE": service.name}
        if ident is not None:
            own = user.app_environment(own, ident)
        units.append(Unit(SERVICE, service.name, [service.run], own, cwd=service.directory,
                          identity=ident, restart=service.restart, essential=service.essential,
                          stop_signal=service.down_signal, dependencies=service.dependencies,
                          notification_fd=service.notification_fd, ready_url=service.ready,
                          timeout_up=service.timeout_up, finish=service.finish))
    return units


def _check_files(opts: RunOptions) -> None:
    """Bad paths are configuration errors (exit 78) before anything runs."""
    from entrypoint.supervise.steps.finish import check_dir

    check_dir(opts.finish_dir)
    if opts.log_files:
        from entrypoint.supervise.parts.logfollow import check_paths

        check_paths(opts.log_files)


def _check_kill_window(opts: RunOptions, environ: dict[str, str], services: list[Service]) -> None:
    from entrypoint.supervise.parts import killwindow
    from entrypoint.supervise.steps import finish

    # The services' finish scripts run all at once after the sweep: one more --finish-timeout.
    finishes = finish.count_hooks(opts.finish_dir) + any(s.finish is not None for s in services)
    killwindow.warn_if_too_long(opts, environ, finishes)


def _follower(opts: RunOptions) -> LogFollower | None:
    """inotify on the app's log files, inside PID 1; a failure costs the feature, not the app."""
    if not opts.log_files:
        return None
    from entrypoint.supervise.parts.logfollow import LogFollower

    try:
        return LogFollower(opts.log_files)
    except OSError as exc:
        log.warn(f"--log-file unavailable ({exc.strerror or exc}); log files are not copied")
        return None


def _termination_log(opts: RunOptions) -> TerminationLog | None:
    """Only a path in effect costs anything (the default needs one access(2))."""
    if opts.termination_log == "":
        return None
    if opts.termination_log is None and not os.path.exists("/dev/termination-log"):
        return None
    from entrypoint.supervise.steps.termlog import TerminationLog, resolve

    path = resolve(opts.termination_log)
    return TerminationLog(path) if path is not None else None


def _settle_identity_and_secrets(sup: Supervisor, environ: dict[str, str]) -> dict[str, str]:
    """--user and --secret, resolved in PID 1 before anything starts (exit 78 if wrong)."""
    opts = sup.opts
    if opts.user:
        from entrypoint.supervise.parts import user

        sup.identity = user.for_app(opts.user)
        if sup.identity is None:
            log.debug(f"--user {opts.user}: already that user")
        else:
            ident = sup.identity
            log.debug(f"the app runs as uid {ident.uid} gid {ident.gid} groups {ident.groups}")
    if not opts.secrets:
        return {}
    from entrypoint.supervise.steps.secrets import read_secrets

    values = read_secrets(opts.secrets, environ)
    log.debug(f"secrets for the app: {', '.join(values) or 'none from files'}")  # names, never values
    return values


def _with_secrets(sup: Supervisor, env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment: the hooks' exports, then the secrets."""
    if sup.opts.secrets:
        from entrypoint.supervise.steps.secrets import app_environment

        env = app_environment(env, secrets)
    return env


def _app_environment(sup: Supervisor, env: dict[str, str]) -> dict[str, str]:
    """The app's: the container's, with --user's HOME."""
    if sup.identity is not None:
        from entrypoint.supervise.parts import user

        env = user.app_environment(env, sup.identity)
    return env


def _watcher(opts: RunOptions, environ: dict[str, str]) -> Watcher | None:
    """inotify on what the render reads; a failure costs the feature, not the app."""
    from entrypoint.supervise.parts.watch import Watcher, watch_paths_from_env
    from entrypoint.supervise.steps.forks import render_work

    templates = opts.templates if "templates" in opts.from_cli else []
    try:
        paths = watch_paths_from_env(environ, templates, templates_dir=opts.templates_dir,
                                     env_files=opts.env_files)
        return Watcher(paths, render=render_work(opts, environ),
                       quiet_period=opts.watch_quiet, max_wait=opts.watch_max_wait)
    except OSError as exc:
        log.warn(f"--watch unavailable ({exc.strerror or exc}); templates are rendered once")
        return None
