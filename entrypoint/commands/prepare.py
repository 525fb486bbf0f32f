"""``entrypoint _prepare``: the render step of ``run``, in a short-lived child.

PID 1 must stay small (the reference app has 32 MiB for everything), so it
never imports Jinja2 or pydantic; it runs this command instead and reads the
exit code (0 or 78) and, with ``--report-fd``, one JSON line saying which
files changed (so ``--watch`` knows whether to send the reload signal).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
from pathlib import Path

from entrypoint import log
from entrypoint.commands.render import (
    add_render_options,
    add_strictness,
    plan_from,
    rendered_files,
    report_errors,
    selection_from,
)
from entrypoint.context.settings import load_settings
from entrypoint.context.sources import ContextOptions, build_environment
from entrypoint.errors import EX_CONFIG, OutputError
from entrypoint.render.engine import render_specs
from entrypoint.render.writer import Staging, stage_all


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entrypoint _prepare",
                                     description="internal: render the configured templates for `run`")
    add_render_options(parser)
    parser.add_argument("--template", action="append", default=[], metavar="SRC[:DEST]")
    parser.add_argument("--env-file", action="append", default=[], metavar="FILE",
                        help="dotenv file whose variables feed the templates (repeatable)")
    add_strictness(parser)
    parser.add_argument("--stage-only", action="store_true",
                        help="stage (and check) but do not install: a dry run")
    parser.add_argument("--check-cmd", metavar="CMD",
                        help="shell command run on the staged files before they are installed")
    parser.add_argument("--report-fd", type=int, metavar="N", help="write a JSON report line to fd N")
    parser.add_argument("--error-fd", type=int, metavar="N",
                        help="also append error lines to fd N (run's --termination-log)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    log.set_level(log.VERBOSE if ns.verbose else log.QUIET if ns.quiet else log.NORMAL)
    log.keep_errors(ns.error_fd)
    settings = load_settings()
    specs = plan_from(ns.template, ns, settings)
    if any(spec.dest is None for spec in specs):
        raise OutputError("_prepare: every --template needs a DEST (SRC:DEST)")
    env_files = [Path(f) for f in (ns.env_file or settings.env_file)]
    env = build_environment(ContextOptions(env_files=env_files))
    strict = ns.strict if ns.strict is not None else settings.strict
    outputs, errors = render_specs(specs, env, strict=strict, selection=selection_from(ns, settings))
    if errors:
        report_errors(errors)
        return EX_CONFIG
    files = rendered_files(outputs)
    staging = stage_all(files)
    try:
        if ns.check_cmd and not run_check(ns.check_cmd, staging):
            return EX_CONFIG
        changed = [staged.dest for staged in staging.changed] if ns.stage_only else staging.commit()
    finally:
        staging.abort()
    for path in changed:
        log.info(f"{'would write' if ns.stage_only else 'wrote'} {path}")
    if ns.report_fd is not None:
        write_report(ns.report_fd, changed, [file.dest for file in files])
    return 0


def run_check(command: str, staging: Staging) -> bool:
    """Run CMD on the staged temp files; ``{src}`` means one run per staged file."""
    staged = staging.changed
    if not staged:
        return True
    env = dict(os.environ)
    env["ENTRYPOINT_STAGED"] = " ".join(str(s.temp) for s in staged)
    runs = ([command.replace("{src}", shlex.quote(str(s.temp))) for s in staged]
            if "{src}" in command else [command])
    for run in runs:
        result = subprocess.run(["/bin/sh", "-c", run], env=env, check=False)
        if result.returncode != 0:
            log.error(f"check command failed (exit {result.returncode}); nothing was installed")
            return False
    return True


def write_report(fd: int, changed: list[Path], all_dests: list[Path]) -> None:
    report = {"changed": [str(p) for p in changed],
              "unchanged": [str(p) for p in all_dests if p not in changed]}
    try:
        os.write(fd, (json.dumps(report) + "\n").encode())
    except OSError as exc:
        log.warn(f"--report-fd {fd}: {exc.strerror}")
