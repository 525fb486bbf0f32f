"""``entrypoint render``: templates to DEST (or standard output), all or nothing."""

from __future__ import annotations

from entrypoint import log, stdio
from entrypoint.commands import lightargs as argparse  # argparse's interface, not its import cost
from entrypoint.commands.context_args import add_context_arguments, environment_from_args
from entrypoint.commands.watch_args import add_watch_options
from entrypoint.context.settings import EntrypointSettings, load_settings
from entrypoint.errors import EX_CONFIG, OutputError, TemplateError
from entrypoint.options import SYNTAXES
from entrypoint.render.engine import list_template_variables, render_specs
from entrypoint.render.model import Selection, VariableUse
from entrypoint.render.plan import TemplateSpec, plan_templates, rendered_files
from entrypoint.render.writer import write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by render and check; None means "take the setting" (ENTRYPOINT_*)."""
    parser.add_argument("--syntax", choices=SYNTAXES, default=None,
                        help="template syntax (default auto: .j2/.jinja -> jinja, else shell)")
    parser.add_argument("--only", metavar="NAMES", default=None,
                        help="substitute only these variables (comma list; shell/envsubst)")
    parser.add_argument("--prefix", metavar="P", default=None,
                        help="substitute only variables starting with P (comma list; shell/envsubst)")
    parser.add_argument("--braced-only", action="store_true", default=None,
                        help="substitute only ${NAME} forms; bare $name is left alone (nginx)")
    parser.add_argument("--templates-dir", default=None, metavar="DIR",
                        help="templates directory used when no TEMPLATE is given")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="output directory for the templates directory (default /)")


def add_strictness(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--strict", dest="strict", action="store_true", default=None,
                       help="an unset variable without a default is an error (always so for Jinja)")
    group.add_argument("--lenient", "--no-strict", dest="strict", action="store_false",
                       help="an unset variable renders as empty, Jinja included")


def selection_from(ns: argparse.Namespace, settings: EntrypointSettings) -> Selection:
    only = _comma(ns.only) if ns.only is not None else settings.only
    prefixes = _comma(ns.prefix) if ns.prefix is not None else settings.prefix
    braced = ns.braced_only if ns.braced_only is not None else settings.braced_only
    return Selection(names=frozenset(only) if only else None, prefixes=tuple(prefixes), braced_only=braced)


def _comma(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def plan_from(
    arguments: Sequence[str], ns: argparse.Namespace, settings: EntrypointSettings
) -> list[TemplateSpec]:
    """TEMPLATE arguments if any, else ENTRYPOINT_TEMPLATES plus the templates directory."""
    syntax = ns.syntax or settings.syntax
    app = None if ns.marathon_app is None else str(ns.marathon_app)
    if arguments:
        return plan_templates(arguments, syntax, env_files=ns.env_file, marathon_app=app)
    directory = (ns.templates_dir or settings.templates_dir, ns.output_dir or settings.output_dir)
    return plan_templates(settings.templates, syntax, directory=directory, env_files=ns.env_file,
                          marathon_app=app)


def report_errors(errors: Sequence[TemplateError]) -> None:
    for error in errors:
        log.error(error.location_message())


def render_to_files(
    specs: list[TemplateSpec], env: dict[str, str], *, strict: bool | None, selection: Selection
) -> tuple[list[str], list[TemplateError]]:
    """Render all in memory, then write all; on any error write nothing."""
    outputs, errors = render_specs(specs, env, strict=strict, selection=selection)
    if errors:
        return [], errors
    return [str(path) for path in write_all(rendered_files(outputs))], []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrypoint render",
        description="Render templates to DEST (or standard output). All or nothing: on any error "
                    "no file is changed and the exit code is 78.")
    add_context_arguments(parser)
    add_render_options(parser)
    add_strictness(parser)
    parser.add_argument("--variables", action="store_true",
                        help="list the variables each template uses instead of rendering")
    parser.add_argument("-v", "--verbose", action="store_true", help="name the files that changed")
    add_watch_options(parser)
    parser.add_argument("templates", nargs="*", metavar="TEMPLATE[:DEST]")
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    if ns.watch:
        from entrypoint.commands.watching import watch_command  # only with --watch

        return watch_command(ns, render_once, command="render")
    return render_once(ns)


def render_once(ns: argparse.Namespace) -> int:
    """One render of the parsed command line (what ``--watch`` repeats)."""
    if ns.verbose:
        log.set_level(log.VERBOSE)
    settings = load_settings()
    selection = selection_from(ns, settings)
    specs = plan_from(ns.templates, ns, settings)
    if ns.variables:
        return print_variables(specs, selection)
    env = environment_from_args(ns)
    strict = ns.strict if ns.strict is not None else settings.strict
    to_stdout = [spec for spec in specs if spec.dest is None]
    if to_stdout and len(specs) > 1:
        raise OutputError("several templates need a DEST each (TEMPLATE:DEST); "
                          "only a single template can go to standard output")
    if to_stdout:
        outputs, errors = render_specs(specs, env, strict=strict, selection=selection)
        if errors:
            report_errors(errors)
            return EX_CONFIG
        stdio.write(outputs[0][1])
        return 0
    changed, errors = render_to_files(specs, env, strict=strict, selection=selection)
    if errors:
        report_errors(errors)
        return EX_CONFIG
    for path in changed:
        log.info(f"wrote {path}")
    return 0


def print_variables(specs: list[TemplateSpec], selection: Selection) -> int:
    errors: list[TemplateError] = []
    lines: list[str] = []
    for spec in specs:
        name = spec.src
        try:
            with open(spec.src, "rb") as fh:
                data = fh.read()
            uses = list_template_variables(data, filename=name, syntax=spec.syntax, selection=selection)
        except TemplateError as exc:
            errors.append(exc)
            continue
        except OSError as exc:
            errors.append(TemplateError(f"cannot read template: {exc.strerror}", filename=name))
            continue
        lines.extend(f"{name}:{use.line}:{use.column}: {describe_use(use)}" for use in uses)
    stdio.write("".join(line + "\n" for line in lines))
    if errors:
        report_errors(errors)
        return EX_CONFIG
    return 0


def describe_use(use: VariableUse) -> str:
    if use.operator is None:
        return use.name
    return f"{use.name} (${{{use.name}{use.operator}{use.default or ''}}})"
