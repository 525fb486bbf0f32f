"""``entrypoint run``: the container's PID 1.

Import discipline: this module and everything it imports at the top level is
resident for the container's whole life, so it is standard library only and
as little of it as possible (no argparse, no subprocess, no signal enums).
"""

from __future__ import annotations

import os
import sys

from entrypoint import log
from entrypoint.supervise import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.supervise.logfollow import LogFollower
    from entrypoint.supervise.options import RunOptions
    from entrypoint.supervise.watch import Watcher


def main(argv: list[str]) -> int:
    """Never returns normally: exits at once with the child's code.

    Interpreter finalisation takes a few milliseconds and does nothing useful
    for PID 1 (no atexit work, no files open for writing), while every one of
    them is added to the container's stop time.
    """
    code = _run(argv)
    log.flush()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _run(argv: list[str]) -> int:
    # First, before anything can start a child or a signal can arrive unseen.
    signals.block_all()
    from entrypoint.supervise import spawn, steps, tree
    from entrypoint.supervise.loop import Supervisor
    from entrypoint.supervise.options import USAGE, parse_run_args

    environ = spawn.original_environ()
    opts = parse_run_args(argv, environ)
    if opts.help:
        sys.stdout.write(USAGE)
        return 0
    log.set_level(opts.verbosity)
    if opts.waits:
        from entrypoint.supervise.waits import parse_wait_url

        for url in opts.waits:
            parse_wait_url(url)  # a bad URL is a usage error before anything renders or runs
    _check_files(opts)
    if os.getpid() != 1 and tree.become_subreaper():
        log.debug("not PID 1: registered as child subreaper")
    sup = Supervisor(opts)
    if not sup.tree_ok:
        log.warn("/proc does not show our PID namespace: leftover processes will not be stopped")
    _check_kill_window(opts, environ)
    if opts.watch:
        # Before the first render, so that an edit made while it runs is seen.
        sup.watcher = _watcher(opts, environ)
        if sup.watcher is not None:
            sup.readers.append(sup.watcher)
    follower = _follower(opts)
    if follower is not None:
        sup.readers.append(follower)
    try:
        steps.render(sup, environ)
        env = steps.hooks(sup, environ)
        steps.waits(sup)
    except steps.StepFailed as failed:
        if follower is not None:
            follower.finish()
        return failed.code
    code = sup.run_app(opts.command, env)
    if follower is not None:
        follower.poll()  # the app's last lines before the finish hooks' output
    from entrypoint.supervise.finish import run_finish_hooks

    run_finish_hooks(sup, code, env)
    if follower is not None:
        follower.finish()
    return code


def _check_files(opts: RunOptions) -> None:
    """Bad paths are configuration errors (exit 78) before anything runs."""
    from entrypoint.supervise.finish import check_dir

    check_dir(opts.finish_dir)
    if opts.log_files:
        from entrypoint.supervise.logfollow import check_paths

        check_paths(opts.log_files)


def _check_kill_window(opts: RunOptions, environ: dict[str, str]) -> None:
    from entrypoint.supervise import finish, killwindow

    killwindow.warn_if_too_long(opts, environ, finish.count_hooks(opts.finish_dir))


def _follower(opts: RunOptions) -> LogFollower | None:
    """inotify on the app's log files, inside PID 1; a failure costs the feature, not the app."""
    if not opts.log_files:
        return None
    from entrypoint.supervise.logfollow import LogFollower

    try:
        return LogFollower(opts.log_files)
    except OSError as exc:
        log.warn(f"--log-file unavailable ({exc.strerror or exc}); log files are not copied")
        return None


def _watcher(opts: RunOptions, environ: dict[str, str]) -> Watcher | None:
    """inotify on what the render reads; a failure costs the feature, not the app."""
    from entrypoint.supervise.steps import prepare_argv
    from entrypoint.supervise.watch import Watcher, watch_paths_from_env

    templates = opts.templates if "templates" in opts.from_cli else []
    try:
        templates_dir = opts.templates_dir if "templates_dir" in opts.from_cli else None
        paths = watch_paths_from_env(environ, templates, templates_dir=templates_dir,
                                     env_files=opts.env_files)
        return Watcher(paths, render_argv=prepare_argv(opts),
                       quiet_period=opts.watch_quiet, max_wait=opts.watch_max_wait)
    except OSError as exc:
        log.warn(f"--watch unavailable ({exc.strerror or exc}); templates are rendered once")
        return None
