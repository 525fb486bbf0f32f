"""Start-up steps before the app: render, hooks, waits — each in a short-lived fork of PID 1.

PID 1 stays lean because the heavy parts never run in it: rendering
(``entrypoint.render``, and Jinja2 or pydantic when a template needs them),
hooks (subprocess) and waits (socket, ssl, http.client) each run in a fork of
this process that imports what it needs after the fork, so whatever it
imports dies with it.  No step starts a new interpreter.  Each step is
supervised like the app: a stop signal reaches it and ends the start-up.
"""

from __future__ import annotations

import os

from entrypoint import log
from entrypoint.errors import EX_CONFIG
from entrypoint.supervise.parts import signals, spawn, state
from entrypoint.supervise.steps.results import StepResult, read_records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from entrypoint.options import RunOptions
    from entrypoint.supervise.loop import Supervisor


class StepFailed(Exception):
    """A step failed or was stopped; ``code`` is what `run` exits with (already reported)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


def has_templates(opts: RunOptions) -> bool:
    """False is the fast path: no render child at all."""
    return bool(opts.templates) or os.path.isdir(opts.templates_dir)


def render_needed(opts: RunOptions) -> bool:
    """Whether the render fork runs at all: templates to render, or arguments to expand."""
    return has_templates(opts) or opts.expand_args


def render_work(opts: RunOptions, environ: dict[str, str], *, expand: bool = False) -> Callable[[int], int]:
    """The render step's body, for a forked child: its imports happen there, after the fork.

    With ``expand`` (``--expand-args``, at start only) the command's arguments are expanded first,
    against the same variables, and sent back as ``arg`` records; an error there is exit 78 before
    any template is rendered.
    """
    def work(result_fd: int) -> int:
        # PID 1's objects go to the permanent generation: a collection in this child would
        # otherwise walk, and so copy-on-write, every page of PID 1's heap.
        import gc

        gc.freeze()
        if expand:
            _expand_into(opts, environ, result_fd)
        if not has_templates(opts):
            return 0
        from entrypoint.supervise.steps.render import render_step

        return render_step(opts, environ, result_fd)

    return work


def _expand_into(opts: RunOptions, environ: dict[str, str], result_fd: int) -> None:
    """``--expand-args``: :func:`entrypoint.render.args.expand_args` against what the templates see."""
    from entrypoint.render.args import expand_args as expand
    from entrypoint.supervise.steps.render import environment
    from entrypoint.supervise.steps.results import write_records

    log.info(f"expanding the arguments of {opts.command[0]!r}")
    write_records(result_fd, [("arg", word) for word in expand(opts.command, environment(opts, environ))])


def render(sup: Supervisor, env: dict[str, str]) -> StepResult:
    """Render the templates (and expand ``--expand-args``) in one fork of PID 1; the records it
    sent back (see results.py): ``changed``/``unchanged`` files, ``arg`` words."""
    if not render_needed(sup.opts):
        return StepResult()
    if has_templates(sup.opts):
        log.info("rendering templates")
    sup.state.update(state.RENDERING)
    # --termination-log: the fork shares PID 1's log state, so its error lines are kept there too.
    work = render_work(sup.opts, env, expand=sup.opts.expand_args)
    pid, memfd = spawn.fork_step(env_out=True)
    assert memfd is not None
    if pid == 0:
        action = "rendering the templates" if has_templates(sup.opts) else "expanding the arguments"
        spawn.finish_child(action, lambda: work(memfd))
    try:
        code = sup.step(pid)
        if sup.stopping:
            raise StepFailed(code)
        if code != 0:
            if code != EX_CONFIG:
                log.error(f"{describe_failure(code, 'rendering the templates')}; nothing was installed, "
                          "not starting")
            raise StepFailed(EX_CONFIG)
        return read_records(memfd)
    finally:
        os.close(memfd)


def describe_failure(code: int, action: str) -> str:
    """``... was killed by SIGKILL (out of memory?)`` or ``... failed (exit N)``."""
    if code > 128:
        signum = code - 128
        oom = " (out of memory? a memory limit kills with SIGKILL)" if signum == signals.SIGKILL else ""
        return f"{action} was killed by {signals.name(signum)}{oom}"
    return f"{action} failed (exit {code})"


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
            from entrypoint.supervise.steps.hooks import run_hooks

            spawn.write_env(memfd, run_hooks(hooks_dir, env))

        spawn.finish_child("hooks", work)
    try:
        code = sup.step(pid)
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
            from entrypoint.supervise.steps.waits import wait_for

            wait_for(urls, timeout)

        spawn.finish_child("waiting", work)
    code = sup.step(pid)
    if sup.stopping or code != 0:
        raise StepFailed(code)
