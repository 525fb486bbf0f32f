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
    if os.getpid() != 1 and tree.become_subreaper():
        log.debug("not PID 1: registered as child subreaper")
    sup = Supervisor(opts)
    if not sup.tree_ok:
        log.warn("/proc does not show our PID namespace: leftover processes will not be stopped")
    if opts.watch:
        # Before the first render, so that an edit made while it runs is seen.
        sup.watcher = _watcher(opts, environ)
    try:
        steps.render(sup, environ)
        env = steps.hooks(sup, environ)
        steps.waits(sup)
    except steps.StepFailed as failed:
        return failed.code
    return sup.run_app(opts.command, env)


def _watcher(opts: RunOptions, environ: dict[str, str]) -> Watcher | None:
    """inotify on what the render reads; a failure costs the feature, not the app."""
    from entrypoint.supervise.steps import render_work
    from entrypoint.supervise.watch import Watcher, watch_paths_from_env

    templates = opts.templates if "templates" in opts.from_cli else []
    try:
        paths = watch_paths_from_env(environ, templates, templates_dir=opts.templates_dir,
                                     env_files=opts.env_files)
        return Watcher(paths, render=render_work(opts, environ),
                       quiet_period=opts.watch_quiet, max_wait=opts.watch_max_wait)
    except OSError as exc:
        log.warn(f"--watch unavailable ({exc.strerror or exc}); templates are rendered once")
        return None
