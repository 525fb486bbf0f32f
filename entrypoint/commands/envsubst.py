"""`entrypoint envsubst`: a drop-in for GNU envsubst (gettext-runtime 0.21).

Arguments, output, exit codes and messages match GNU byte for byte, so the
command line is parsed by hand the way glibc's getopt_long does it (argparse
words its errors differently).  I/O goes straight to file descriptors 0/1:
Python replaces a closed stdout with ``None``, while GNU only fails when it
actually has something to write.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

from entrypoint import __version__
from entrypoint.render.envsubst import collect_names, iter_substituted
from entrypoint.render.model import EVERYTHING, Selection

PROG = "envsubst"
READ_SIZE = 1 << 16
LONG_OPTIONS = ("help", "variables", "version")  # getopt order: ambiguity lists follow it
SHORT_OPTIONS = {"h": "help", "v": "variables", "V": "version"}

HELP = f"""\
Usage: entrypoint envsubst [OPTION] [SHELL-FORMAT]

Substitutes the values of environment variables.

Operation mode:
  -v, --variables             output the variables occurring in SHELL-FORMAT

Informative output:
  -h, --help                  display this help and exit
  -V, --version               output version information and exit

In normal operation mode, standard input is copied to standard output,
with references to environment variables of the form $VARIABLE or ${{VARIABLE}}
being replaced with the corresponding values.  If a SHELL-FORMAT is given,
only those environment variables that are referenced in SHELL-FORMAT are
substituted; otherwise all environment variables references occurring in
standard input are substituted.

When --variables is used, standard input is ignored, and the output consists
of the environment variables that are referenced in SHELL-FORMAT, one per line.

This is entrypoint {__version__}'s byte-exact reimplementation of GNU envsubst
(gettext-runtime 0.21); report bugs to the entrypoint project, not to GNU.
"""

VERSION = f"""\
envsubst (entrypoint) {__version__}
Behaves as envsubst (GNU gettext-runtime) 0.21, byte for byte.
This is an independent reimplementation, not GNU software.
"""


class _Exit(Exception):
    """Ends the command with GNU's exit status after its message was printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Options:
    help: bool = False
    version: bool = False
    variables: bool = False
    operands: list[str] = field(default_factory=list)


def _stderr(text: str | bytes) -> None:
    try:
        os.write(2, text if isinstance(text, bytes) else os.fsencode(text))
    except OSError:
        pass


def _fail(message: str) -> _Exit:
    """GNU ``error (EXIT_FAILURE, ...)``: ``envsubst: message``, exit 1."""
    _stderr(f"{PROG}: {message}\n")
    return _Exit(1)


def _usage_error(message: str | bytes) -> _Exit:
    """A getopt complaint followed by GNU's ``usage (EXIT_FAILURE)`` hint."""
    raw = message if isinstance(message, bytes) else os.fsencode(message)
    _stderr(PROG.encode() + b": " + raw + f"\nTry '{PROG} --help' for more information.\n".encode())
    return _Exit(1)


def _long_option(arg: str, opts: _Options) -> None:
    body = arg[2:]
    name, has_value, _ = body.partition("=")
    # An exact name wins over being a prefix of another (getopt_long's rule).
    matches = [name] if name in LONG_OPTIONS else [o for o in LONG_OPTIONS if o.startswith(name)]
    if not matches:
        raise _usage_error(f"unrecognized option '{arg}'")
    if len(matches) > 1:
        listed = " ".join(f"'--{m}'" for m in matches)
        raise _usage_error(f"option '{arg}' is ambiguous; possibilities: {listed}")
    if has_value:
        raise _usage_error(f"option '--{matches[0]}' doesn't allow an argument")
    setattr(opts, matches[0], True)


def _short_options(arg: str, opts: _Options) -> None:
    # getopt walks bytes: `-é` is reported by its first byte, as C's %c prints it.
    for code in os.fsencode(arg)[1:]:
        option = SHORT_OPTIONS.get(chr(code))
        if option is None:
            raise _usage_error(b"invalid option -- '" + bytes([code]) + b"'")
        setattr(opts, option, True)


def parse_args(argv: list[str]) -> _Options:
    """glibc getopt_long with optstring "hvV": permutes unless POSIXLY_CORRECT."""
    opts = _Options()
    permute = "POSIXLY_CORRECT" not in os.environ
    args = iter(argv)
    for arg in args:
        if arg == "--":
            opts.operands.extend(args)
        elif arg.startswith("--"):
            _long_option(arg, opts)
        elif arg.startswith("-") and arg != "-":
            _short_options(arg, opts)
        else:
            opts.operands.append(arg)
            if not permute:  # POSIX order: the first operand ends the options
                opts.operands.extend(args)
    return opts


class _Output:
    """Unbuffered writes to fd 1 that turn failures into GNU's ``write error``."""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(1, view)
            except OSError as exc:
                raise _fail(f"write error: {os.strerror(exc.errno or 0)}") from None
            view = view[written:]


def _read_stdin() -> Iterator[bytes]:
    while True:
        try:
            chunk = os.read(0, READ_SIZE)
        except OSError as exc:
            raise _fail(f'error while reading "standard input": {os.strerror(exc.errno or 0)}') from None
        if not chunk:
            return
        yield chunk


def _selection(operands: list[str]) -> Selection:
    if not operands:
        return EVERYTHING
    names = collect_names(os.fsencode(operands[0]))
    return Selection(names=frozenset(n.decode("ascii") for n in names))


def _run(argv: list[str]) -> None:
    opts = parse_args(argv)
    out = _Output()
    if opts.version:
        out.write(VERSION.encode())
        return
    if opts.help:
        out.write(HELP.encode())
        return
    if len(opts.operands) > 1:
        raise _fail("too many arguments")
    if opts.variables:
        if not opts.operands:
            raise _fail("missing arguments")
        names = collect_names(os.fsencode(opts.operands[0]))
        if names:
            out.write(b"".join(name + b"\n" for name in names))
        return
    for chunk in iter_substituted(_read_stdin(), os.environb, _selection(opts.operands)):
        out.write(chunk)


def _default_sigpipe() -> None:
    """Die of SIGPIPE on a closed pipe, as the C program does (Python ignores it)."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    except (ValueError, OSError):
        pass  # not the main thread: keep Python's behaviour


def main(argv: list[str]) -> int:
    _default_sigpipe()
    try:
        _run(argv)
    except _Exit as done:
        return done.code
    return 0
