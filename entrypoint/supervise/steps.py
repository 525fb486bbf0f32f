"""Start-up steps before the app: render, hooks, waits — each in a short-lived child.

PID 1 stays lean because the heavy parts never run in it: rendering (Jinja2,
pydantic) is a fresh interpreter (``entrypoint _prepare``); hooks
(subprocess) and waits (socket, ssl, http.client) run in a fork of this
process, so whatever they import dies with them.  Each step is supervised
like the app: a stop signal reaches it and ends the start-up.
"""

from __future__ import annotations

import os
import sys

from entrypoint import log
from entrypoint.errors import EX_CONFIG, EntrypointError
from entrypoint.supervise import spawn, state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from entrypoint.supervise.loop import Supervisor
    from entrypoint.supervise.options import RunOptions


class StepFailed(Exception):
    """A step failed or was stopped; ``code`` is what `run` exits with (already reported)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


def has_templates(opts: RunOptions) -> bool:
    """False is the fast path: no render child at all."""
    return bool(opts.templates) or os.path.isdir(opts.templates_dir)


def prepare_argv(opts: RunOptions) -> list[str]:
    """The render command.  Only command-line options are passed on: ``_prepare``
    reads the ``ENTRYPOINT_*`` environment itself, with the same names."""
    argv = [sys.executable, "-m", "entrypoint", "_prepare"]
    if "templates" in opts.from_cli:
        for template in opts.templates:
            argv += ["--template", template]
    if "templates_dir" in opts.from_cli:
        argv += ["--templates-dir", opts.templates_dir]
    if "env_files" in opts.from_cli:
        for env_file in opts.env_files:
            argv += ["--env-file", env_file]
    if opts.check_cmd:
        argv += ["--check-cmd", opts.check_cmd]
    if opts.verbosity != 1:
        argv.append("-v" if opts.verbosity > 1 else "-q")
    return argv


def render(sup: Supervisor, env: dict[str, str]) -> None:
    if not has_templates(sup.opts):
        return
    argv = prepare_argv(sup.opts)
    error_fd = log.kept_fd()  # --termination-log: the render child keeps its error lines there too
    if error_fd is not None:
        argv += ["--error-fd", str(error_fd)]
        os.set_inheritable(error_fd, True)
    log.info("rendering templates")
    sup.state.update(state.RENDERING)
    try:
        pid = spawn.spawn(argv, env)
    except spawn.ExecFailed as exc:
        log.error(str(exc))
        raise StepFailed(EX_CONFIG) from None
    finally:
        if error_fd is not None:
            os.set_inheritable(error_fd, False)
    code = sup.supervise(pid, forward=False, cleanup=False)
    if sup.stopping:
        raise StepFailed(code)
    if code != 0:
        if code != EX_CONFIG:
            log.error(f"rendering the templates failed (exit {code}); not starting")
        raise StepFailed(EX_CONFIG)


def _finish_child(action: str, work: Callable[[], None]) -> None:
    """Child side of a forked step: run ``work``, exit with its verdict.  Never returns."""
    code = 0
    try:
        work()
    except EntrypointError as exc:
        for line in str(exc).splitlines():  # several problems: one prefixed line each
            log.error(line)
        code = exc.exit_code
    except BaseException as exc:  # a bug in a step must not become a second PID 1
        log.error(f"{action} failed: {exc!r}")
        code = EX_CONFIG
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def hooks(sup: Supervisor, env: dict[str, str]) -> dict[str, str]:
    """Run ``--hooks-dir``; return the environment the app gets (``*.envsh`` exports)."""
    hooks_dir = sup.opts.hooks_dir
    if not os.path.isdir(hooks_dir):
        return env
    log.info(f"running hooks in {hooks_dir}")
    sup.state.update(state.HOOKS)
    pid, memfd = spawn.fork_step(env_out=True)
    assert memfd is not None
    if pid == 0:
        def work() -> None:
            from entrypoint.supervise.hooks import run_hooks

            spawn.write_env(memfd, run_hooks(hooks_dir, env))

        _finish_child("hooks", work)
    try:
        code = sup.supervise(pid, forward=False, cleanup=False)
        if sup.stopping or code != 0:
            raise StepFailed(code)
        return spawn.read_env(memfd)
    finally:
        os.close(memfd)


def waits(sup: Supervisor) -> None:
    urls, timeout = sup.opts.waits, sup.opts.wait_timeout
    if not urls:
        return
    log.info(f"waiting for {len(urls)} dependenc{'y' if len(urls) == 1 else 'ies'}")
    sup.state.update(state.WAITING)
    pid, _ = spawn.fork_step(env_out=False)
    if pid == 0:
        def work() -> None:
            from entrypoint.supervise.waits import wait_for

            wait_for(urls, timeout)

        _finish_child("waiting", work)
    code = sup.supervise(pid, forward=False, cleanup=False)
    if sup.stopping or code != 0:
        raise StepFailed(code)


def expand_args(sup: Supervisor, env: dict[str, str]) -> list[str]:
    """``--expand-args`` in a fork (the renderer never loads into PID 1); the expanded argv.

    A thin wrapper: the work is :func:`entrypoint.render.args.expand_args`,
    a pure function, against the variables the templates see.
    """
    argv, env_files = sup.opts.command, sup.opts.env_files
    log.info(f"expanding the arguments of {argv[0]!r}")
    pid, memfd = spawn.fork_step(env_out=True)
    assert memfd is not None
    if pid == 0:
        def work() -> None:
            from pathlib import Path

            from entrypoint.context.sources import Environment, parse_dotenv
            from entrypoint.render.args import expand_args as expand

            # What the templates see: PID 1's original environment, then the env files (NAME_FILE lazily).
            variables = Environment(env)
            for path in env_files:
                variables.update(parse_dotenv(Path(path)))
            spawn.write_words(memfd, expand(argv, variables))

        _finish_child("expanding the arguments", work)
    try:
        code = sup.supervise(pid, forward=False, cleanup=False)
        if sup.stopping or code != 0:
            raise StepFailed(code)
        return spawn.read_words(memfd)
    finally:
        os.close(memfd)
