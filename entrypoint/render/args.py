"""``--expand-args``: a command's arguments expanded with the ``shell`` template syntax.

A pure function of (argv, variables), on purpose: Marathon hands ``args`` to
the ENTRYPOINT without a shell, so ``"args": ["--port", "$PORT0"]`` only
works if someone expands them, and that someone must agree with the
templates exactly.  So each argument is rendered by the one engine the
templates use (:func:`entrypoint.render.shell.render_shell`, strict: an
unset variable without a default is an error), against the same variables
(environment, env files, ``NAME_FILE`` secrets).  Each argument is one word:
no field splitting, no globbing; the result is never expanded again; and, as
on one shell command line, what ``${X:=v}`` assigns holds for the words after it.

``run`` calls this in a fork of PID 1 (PID 1 never imports the renderers);
``check --marathon-app APP.json --expand-args`` calls it on the app's ``args``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from entrypoint.errors import ArgumentError, ArgumentErrors, ContextError, TemplateError, TemplateErrors
from entrypoint.render.shell import render_shell


def expand_words(words: Sequence[str], env: Mapping[str, str], *, first: int = 1) -> list[str]:
    """Each word expanded; positions count from ``first``.  Raises ArgumentErrors listing every problem."""
    out: list[str] = []
    problems: list[ArgumentError] = []
    assigned: dict[str, str] = {}  # ${X:=v} holds for the words after it, as on a shell command line
    for position, word in enumerate(words, start=first):
        if "$" not in word:  # nothing to expand: the engine would return it unchanged
            out.append(word)
            continue
        try:
            out.append(render_shell(word, env, filename=f"argument {position}", strict=True,
                                    assignments=assigned))
        except TemplateErrors as exc:
            problems.extend(_problem(position, word, error) for error in exc.errors)
        except ContextError as exc:  # an unreadable NAME_FILE: names the variable, never a value
            problems.append(ArgumentError(position, word, exc.message, variable=exc.variable))
    if problems:
        raise ArgumentErrors(problems)
    return out


def expand_args(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """COMMAND stays as given; each ARG after it is expanded (argument 1 is argv[1])."""
    return [*argv[:1], *expand_words(argv[1:], env)]


def _problem(position: int, word: str, error: TemplateError) -> ArgumentError:
    column = error.column if word.count("\n") == 0 else None  # a column means little across lines
    return ArgumentError(position, word, error.message, column=column, variable=error.variable)


def app_args_problems(app_file: str, args: Sequence[str], env: Mapping[str, str]) -> list[TemplateError]:
    """``check``: the app definition's ``args`` as check problems (``APP.json: args[N] ...``)."""
    try:
        expand_words(args, env, first=0)
    except ArgumentErrors as exc:
        return [TemplateError(e.describe(f"args[{e.position}]"), filename=app_file, variable=e.variable)
                for e in exc.errors]
    return []
