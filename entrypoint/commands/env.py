"""``entrypoint env``: print the resolved environment (cli.md).

The offline half of validation: what a template will see, in a form a shell
can ``eval``, a dotenv reader can load, or a test can compare as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from entrypoint import log, stdio
from entrypoint.commands import lightargs as argparse  # argparse's interface, not its import cost
from entrypoint.commands.context_args import add_context_arguments, environment_from_args
from entrypoint.errors import EX_OK

FORMATS = ("json", "shell", "dotenv")

# str.splitlines() breaks on these; our dotenv reader escapes only \n and \r.
_UNWRITABLE_IN_DOTENV = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrypoint env",
        description="Print the environment a template would see.",
    )
    add_context_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="json (default): one object; shell: eval-able export lines; dotenv: --env-file")
    return parser


def is_shell_name(name: str) -> bool:
    return (
        bool(name)
        and name.isascii()
        and not name[0].isdigit()
        and all(c.isalnum() or c == "_" for c in name)
    )


def shell_quote(value: str) -> str:
    """Single quotes, with ``'`` as ``'\\''``: nothing inside is expanded by the shell."""
    return "'" + value.replace("'", "'\\''") + "'"


def dotenv_quote(value: str) -> str | None:
    """Quote so that :func:`entrypoint.context.sources.parse_dotenv` returns ``value``.

    Single quotes are verbatim in our reader, so they are used whenever the
    value fits on one line; multi-line values use double quotes with
    backslash escapes.  None: not representable (rare line separators).
    """
    if any(c in _UNWRITABLE_IN_DOTENV for c in value):
        return None
    if "\n" not in value and "\r" not in value:
        return "'" + value + "'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped + '"'


def format_json(env: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(env.items())), indent=2, ensure_ascii=False) + "\n"


def format_lines(env: Mapping[str, str], fmt: str) -> str:
    lines: list[str] = []
    for name in sorted(env):
        value = env[name]
        if not is_shell_name(name):
            log.warn(f"{name}: not a valid {fmt} variable name, skipped")
            lines.append(f"# skipped {name}: not a valid variable name")
            continue
        if fmt == "shell":
            lines.append(f"export {name}={shell_quote(value)}")
            continue
        quoted = dotenv_quote(value)
        if quoted is None:
            log.warn(f"{name}: value contains a line separator dotenv cannot carry, skipped")
            lines.append(f"# skipped {name}: value not representable in dotenv")
            continue
        lines.append(f"{name}={quoted}")
    return "".join(line + "\n" for line in lines)


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    env = environment_from_args(ns)
    text = format_json(env) if ns.format == "json" else format_lines(env, ns.format)
    stdio.write(text.encode("utf-8", "surrogateescape"))
    return EX_OK
