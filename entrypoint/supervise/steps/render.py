"""The render step of ``run``: plan, render all in memory, stage, check, install, report.

It runs in a fork of PID 1 (see ``supervise/steps/forks.py`` and
``supervise/parts/watch.py``), which imports this module only after the fork: the
render modules, and Jinja2 or pydantic when a template needs them, live and
die with that child, and PID 1 never holds them.  No new interpreter is
started, so a shell template costs a fork and a few light imports.

The options are ``run``'s own, parsed once by PID 1 from the command line and
the ``ENTRYPOINT_*`` variables (one table, ``options.py``); the
variables the templates see are PID 1's original environment plus the
``--env-file`` files.  The result goes back as records
(``supervise/steps/results.py``): ``changed`` and ``unchanged`` destinations, which
``--watch`` uses to decide whether to send the reload signal.
"""

from __future__ import annotations

import os

from entrypoint import log
from entrypoint.context.sources import Environment, parse_dotenv
from entrypoint.errors import EX_CONFIG, OutputError
from entrypoint.render.engine import render_specs
from entrypoint.render.model import selection_of
from entrypoint.render.plan import TemplateSpec, plan_templates, rendered_files
from entrypoint.render.writer import Staging, stage_all
from entrypoint.supervise.steps.results import write_records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from entrypoint.options import RunOptions


def plan(opts: RunOptions) -> list[TemplateSpec]:
    """``--template`` on the command line alone, or ``ENTRYPOINT_TEMPLATES`` plus the templates directory."""
    directory = None if "templates" in opts.from_cli else (opts.templates_dir, opts.output_dir)
    specs = plan_templates(opts.templates, opts.syntax, directory=directory, env_files=opts.env_files)
    for spec in specs:
        if spec.dest is None:
            raise OutputError(f"--template {spec.src}: needs a destination (SRC:DEST)")
    return specs


def environment(opts: RunOptions, environ: Mapping[str, str]) -> Environment:
    """What the templates see: the environment PID 1 was started with, then the env files."""
    env = Environment(environ)
    for path in opts.env_files:
        env.update(parse_dotenv(path))
    return env


def render_step(opts: RunOptions, environ: Mapping[str, str], result_fd: int | None) -> int:
    """Render everything or nothing; 0, or 78 after every problem was reported."""
    specs = plan(opts)
    env = environment(opts, environ)
    outputs, errors = render_specs(specs, env, strict=opts.strict, selection=selection_of(opts))
    if errors:
        for error in errors:
            log.error(error.location_message())
        return EX_CONFIG
    files = rendered_files(outputs)
    staging = stage_all(files)
    try:
        if opts.check_cmd and not run_check(opts.check_cmd, staging, environ):
            return EX_CONFIG
        changed = [os.fspath(path) for path in staging.commit()]
    finally:
        staging.abort()
    for path in changed:
        log.info(f"wrote {path}")
    if result_fd is not None:
        records = [("changed", path) for path in changed]
        records += [("unchanged", os.fspath(f.dest)) for f in files if os.fspath(f.dest) not in changed]
        write_records(result_fd, records)
    return 0


def run_check(command: str, staging: Staging, environ: Mapping[str, str]) -> bool:
    """Run CMD on the staged temp files; ``{src}`` means one run per staged file."""
    import shlex
    import subprocess

    staged = staging.changed
    if not staged:
        return True
    env = dict(environ)
    env["ENTRYPOINT_STAGED"] = " ".join(str(s.temp) for s in staged)
    runs = ([command.replace("{src}", shlex.quote(str(s.temp))) for s in staged]
            if "{src}" in command else [command])
    for run in runs:
        done = subprocess.run(["/bin/sh", "-c", run], env=env, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            log.error(f"check command failed (exit {done.returncode}); nothing was installed")
            return False
    return True
