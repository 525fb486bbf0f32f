"""Thin command dispatcher: picks the subcommand and turns errors into exit codes.

Imports stay lazy: ``entrypoint run`` is PID 1 and must not pay for Jinja2 or
pydantic, so each subcommand module is imported only when chosen.
"""

from __future__ import annotations

import importlib
import os
import sys

from entrypoint import __version__, log, stdio
from entrypoint.errors import EX_USAGE, EntrypointError, StdoutClosed

SUBCOMMANDS: dict[str, str] = {
    "run": "entrypoint.commands.run",
    "render": "entrypoint.commands.render",
    "check": "entrypoint.commands.check",
    "env": "entrypoint.commands.env",
    "envsubst": "entrypoint.commands.envsubst",
    "status": "entrypoint.commands.status",
}

USAGE = """\
usage: entrypoint run [OPTIONS] [--] COMMAND [ARG...]
       entrypoint COMMAND [ARG...]
       entrypoint render [CONTEXT] [--syntax S] [--strict] TEMPLATE[:DEST]...
       entrypoint check  [CONTEXT] [--syntax S] TEMPLATE...
       entrypoint env    [CONTEXT] [--format json|shell|dotenv]
       entrypoint envsubst [-v|--variables] [SHELL-FORMAT]
       entrypoint status [--state-file PATH] [--format text|json]
       entrypoint --version | --help

A container entrypoint: renders config templates from the orchestrator's
variables, then runs COMMAND as a well-behaved PID 1.
Run `entrypoint SUBCOMMAND --help` for the options of each subcommand.

exit codes: the child's code; 128+N when it died of signal N; 126/127 when it
cannot be executed / is not found; 78 template or configuration error;
69 a --wait dependency timed out; 2 usage error; 1 `status`: the app is not
running.
"""


def main(argv: list[str] | None = None) -> int:
    """The exit code of the chosen command; its errors become one line each (none for a closed stdout).

    Standard output is flushed last, on every path, with the same errors as any output.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        code = _dispatch(args)
    except EntrypointError as exc:
        code = _failed(exc)
    except KeyboardInterrupt:
        code = 130
    try:
        stdio.flush()
    except EntrypointError as exc:
        code = _failed(exc)
    return code


def _failed(exc: EntrypointError) -> int:
    """One line for the error (none when stdout's reader went away), and its exit code."""
    if not isinstance(exc, StdoutClosed):
        log.error(str(exc))
    return exc.exit_code


def console() -> None:
    """The ``entrypoint`` executable: :func:`main`, then exit without tearing the interpreter down.

    A short command's last act would otherwise be finalisation, freeing every
    module it imported: about a fifth of a Jinja ``check``.  Nothing depends
    on it: files are closed where they are written, no atexit hooks are ours,
    and :func:`main` has flushed standard output, with :mod:`entrypoint.stdio`'s errors.
    """
    os._exit(main())  # never returns


def _flavour() -> str:
    """`` (bundle, CPython 3.11.7)`` when this runs from the self-contained tree, else nothing.

    ``scripts/bundle`` leaves a ``BUNDLE`` file at the tree's root, which the bundle's
    interpreter has as ``sys.prefix``; a pip install's prefix (a venv, /usr) has none.
    """
    if not os.path.isfile(os.path.join(sys.prefix, "BUNDLE")):
        return ""
    name = "CPython" if sys.implementation.name == "cpython" else sys.implementation.name
    return f" (bundle, {name} {'.'.join(map(str, sys.version_info[:3]))})"


def _dispatch(args: list[str]) -> int:
    if not args:
        log.report(USAGE)
        return EX_USAGE
    head = args[0]
    if head in ("--version", "-V"):
        stdio.write(f"entrypoint {__version__}{_flavour()}\n")
        return 0
    if head in ("--help", "-h"):
        stdio.write(USAGE)
        return 0
    if head in SUBCOMMANDS:
        module_name, rest = SUBCOMMANDS[head], args[1:]
    else:
        # `entrypoint COMMAND ...` and `entrypoint --opt ... -- COMMAND` mean `run`.
        module_name, rest = SUBCOMMANDS["run"], args
    code: int = importlib.import_module(module_name).main(rest)
    return code
