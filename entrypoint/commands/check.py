"""``entrypoint check``: render in memory, report every problem, write nothing.

Meant for CI: a template that reads a variable the orchestrator will not set
must fail the build with FILE:LINE:COL, so unlike ``render``, an unset
variable without a default is an error here unless ``--lenient`` is given.
Problems go to standard error, one ``FILE:LINE:COL: message`` per line (the
format editors and CI problem matchers understand); the summary line goes to
standard output on success and standard error on failure.  ``--format json``
prints one JSON list on standard output instead, ``--format github`` one
workflow-command annotation per problem on standard output (the summary then
goes to standard error).  Checking no template at all is a problem too: a CI
job pointed at the wrong folder must not pass for ever.

``--services-dir DIR`` (or ``ENTRYPOINT_SERVICES_DIR``) also validates the
service directories there, offline, as ``run`` would before starting anything:
each problem one ``DIR/NAME/FILE: message`` line, all at once.  With it, no
template is no problem: an image may have services and no templates.
"""

from __future__ import annotations

import os

from entrypoint import log, stdio
from entrypoint.commands import lightargs as argparse  # argparse's interface, not its import cost
from entrypoint.commands.check_report import FORMATS, Problem, format_problems
from entrypoint.commands.context_args import add_context_arguments, environment_from_args
from entrypoint.commands.render import add_render_options, selection_from
from entrypoint.commands.watch_args import add_watch_options
from entrypoint.context.settings import EntrypointSettings, load_settings
from entrypoint.errors import EX_CONFIG, ConfigError, TemplateError, UsageError
from entrypoint.options import given_or_env
from entrypoint.render.engine import render_specs
from entrypoint.render.model import TEMPLATE_SUFFIXES
from entrypoint.render.plan import TemplateSpec, plan_argument, plan_directory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrypoint check",
        description="Render templates in memory and report every problem as FILE:LINE:COL: message "
                    "(exit 78 when there is any). Nothing is written.")
    add_context_arguments(parser)
    add_render_options(parser)
    strictness = parser.add_mutually_exclusive_group()
    strictness.add_argument("--strict", dest="strict", action="store_true", default=True,
                            help="an unset variable without a default is an error (the default)")
    strictness.add_argument("--lenient", "--no-strict", dest="strict", action="store_false",
                            help="an unset variable without a default renders as empty")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text: FILE:LINE:COL: message lines (default); json: a JSON list of "
                             "{file, line, col, variable, message}; github: ::error annotations")
    parser.add_argument("--expand-args", action="store_true",
                        help="with --marathon-app: also check the app definition's args as `run "
                             "--expand-args` expands them")
    parser.add_argument("--services-dir", default=None, metavar="DIR",
                        help="also validate the service directories in DIR (default: "
                             "ENTRYPOINT_SERVICES_DIR if set, else none)")
    parser.add_argument("templates", nargs="*", metavar="TEMPLATE",
                        help="template files or directories (default: the templates directory)")
    add_watch_options(parser)
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    if ns.watch:
        from entrypoint.commands.watching import watch_command  # only with --watch

        return watch_command(ns, check_once, command="check")
    return check_once(ns)


def check_once(ns: argparse.Namespace) -> int:
    """One complete check, reported in ``ns.format`` (what ``--watch`` repeats); 0 or 78."""
    directory = services_dir_of(ns)
    services, service_problems = (None, []) if directory is None else collect_service_problems(directory)
    checked, problems = collect_problems(ns, services=directory is not None)
    problems.extend(service_problems)
    report(checked, problems, ns.format, services=services)
    return EX_CONFIG if problems else 0


def services_dir_of(ns: argparse.Namespace) -> str | None:
    """``--services-dir``, else ``ENTRYPOINT_SERVICES_DIR``; no default, unlike ``run``'s."""
    return given_or_env(ns.services_dir, "--services-dir", os.environ)


def collect_service_problems(directory: str) -> tuple[int, list[Problem]]:
    """(services checked, every problem of the services directory), as ``run`` would refuse them."""
    from entrypoint.supervise.services import config  # only with --services-dir

    if not os.path.isdir(directory):
        state = "is not a directory" if os.path.lexists(directory) else "does not exist"
        return 0, [Problem(directory, None, None, None, f"services directory {state}")]
    found = config.problems(directory)[1]
    return len(config.names(directory)), [Problem(p.path, None, None, None, p.message) for p in found]


def collect_problems(ns: argparse.Namespace, *, services: bool = False) -> tuple[int, list[Problem]]:
    """Plan and render every template in memory: (templates checked, every problem found).

    ``services``: service directories are checked too, so no template is no problem.
    """
    settings = load_settings()
    selection = selection_from(ns, settings)
    env = environment_from_args(ns)
    syntax = ns.syntax or settings.syntax
    specs: list[TemplateSpec] = []
    problems: list[Problem] = []
    for arg in ns.templates or [None]:
        try:
            specs.extend(_plan_one(arg, ns, settings, syntax))
        except ConfigError as exc:
            problems.append(Problem.from_config_error(exc, arg.partition(":")[0] if arg else None))
    if not specs and not problems and not ns.expand_args and not services:
        problems.append(_nothing_to_check(ns, settings))
    _, errors = render_specs(specs, env, strict=ns.strict, selection=selection)
    if ns.expand_args:
        errors = [*errors, *_app_args_problems(ns, env)]
    problems.extend(Problem.from_template_error(error) for error in errors)
    return len(specs), problems


def report(checked: int, problems: list[Problem], fmt: str = "text", *, services: int | None = None) -> None:
    """Problems in the chosen format, then the summary line (standard error when it is not the report).

    ``services``: how many service directories were checked (None: no ``--services-dir``).
    """
    body = format_problems(problems, fmt)
    counted = f"{checked} template(s)" + ("" if services is None else f" and {services} service(s)")
    if problems:
        bad_files = len({p.file for p in problems})
        summary = f"entrypoint check: {len(problems)} problem(s) in {bad_files} file(s), {counted} checked\n"
    else:
        summary = f"entrypoint check: {counted} OK\n"
    if fmt == "text":
        if problems:
            log.report(body + summary)
        else:
            stdio.write(body + summary)
        return
    stdio.write(body)
    log.report(summary)


def _nothing_to_check(ns: argparse.Namespace, settings: EntrypointSettings) -> Problem:
    """Zero templates is an error: name what was searched, so the wrong folder is obvious."""
    directory = ns.templates_dir or settings.templates_dir
    state = "" if os.path.isdir(directory) else " (it does not exist)"
    suffixes = ", ".join(TEMPLATE_SUFFIXES)
    return Problem(os.fspath(directory), None, None, None,
                   f"no template to check: nothing ending in {suffixes} in the templates directory{state}, "
                   f"and no TEMPLATE argument or ENTRYPOINT_TEMPLATES")


def _app_args_problems(ns: argparse.Namespace, env: dict[str, str]) -> list[TemplateError]:
    """``--expand-args``: the app's ``args``, expanded as ``run --expand-args`` would."""
    if ns.marathon_app is None:
        raise UsageError("check --expand-args needs --marathon-app APP.json (the args to check)")
    from entrypoint.context.marathon import load_app
    from entrypoint.render.args import app_args_problems

    return app_args_problems(str(ns.marathon_app), load_app(str(ns.marathon_app)).args, env)


def _plan_one(
    arg: str | None, ns: argparse.Namespace, settings: EntrypointSettings, syntax: str
) -> list[TemplateSpec]:
    """A DEST in an argument is accepted and ignored: check never writes."""
    if arg is not None:
        return plan_argument(arg.partition(":")[0], syntax)
    specs = [spec for item in settings.templates for spec in plan_argument(item.partition(":")[0], syntax)]
    return specs + plan_directory(ns.templates_dir or settings.templates_dir, None, syntax, missing_ok=True)
