"""Error types and the exit codes they map to (see cli.md).

Errors are types, not strings: every layer raises a subclass of
:class:`EntrypointError`, and only the CLI turns one into a one-line message
and an exit code.  Standard library only: PID 1 imports this module.
"""

from __future__ import annotations

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69  # a --wait dependency did not come up in time
EX_CONFIG = 78  # template or configuration error; nothing started, nothing changed
EX_NOEXEC = 126  # COMMAND exists but cannot be executed
EX_NOTFOUND = 127  # COMMAND not found
EX_SIGPIPE = 141  # 128 + SIGPIPE: what a filter ends with when its reader goes away


class EntrypointError(Exception):
    """Base of every error the CLI reports as one line without a traceback."""

    exit_code: int = EX_FAILURE


class UsageError(EntrypointError):
    """The command line itself is wrong."""

    exit_code = EX_USAGE


class ConfigError(EntrypointError):
    """Configuration or template problem: exit 78, nothing started or written."""

    exit_code = EX_CONFIG


class SettingError(ConfigError, UsageError):
    """A bad ``ENTRYPOINT_*`` value: configuration (exit 78) in every command, named by its variable.

    Also a :class:`UsageError`, the kind the same value gets on the command line.
    """

    exit_code = EX_CONFIG


class ContextError(ConfigError):
    """A variable or an app definition could not be read (names the culprit)."""

    def __init__(self, message: str, *, variable: str | None = None, source: str | None = None) -> None:
        self.variable = variable
        self.source = source
        self.message = message
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{message}")


class TemplateError(ConfigError):
    """A template cannot be rendered; carries FILE:LINE:COL and the variable."""

    def __init__(
        self,
        message: str,
        *,
        filename: str = "<template>",
        line: int | None = None,
        column: int | None = None,
        variable: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.variable = variable
        super().__init__(self.location_message())

    def location_message(self) -> str:
        """``FILE:LINE:COL: message`` (LINE/COL omitted when unknown)."""
        where = self.filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class TemplateErrors(ConfigError):
    """Several template problems found in one pass (``check`` reports them all)."""

    def __init__(self, errors: list[TemplateError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.location_message() for e in errors))


class OutputError(ConfigError):
    """A destination cannot be written (missing directory, outside the output dir, ...)."""


class ServicesError(ConfigError):
    """The services directory has problems (``--services-dir``): exit 78, nothing started.

    Carries every problem found in one pass; ``str()`` is one ``DIR/NAME/FILE: message`` line each.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class WaitTimeout(EntrypointError):
    """A ``--wait`` dependency did not come up in time."""

    exit_code = EX_UNAVAILABLE


class HookError(EntrypointError):
    """A hook script failed; the app is not started."""

    exit_code = EX_CONFIG


class ArgumentError(ConfigError):
    """``--expand-args``: one argument cannot be expanded; names its position and the variable."""

    def __init__(self, position: int, word: str, message: str, *, column: int | None = None,
                 variable: str | None = None) -> None:
        self.position = position
        self.word = word
        self.message = message
        self.column = column
        self.variable = variable
        super().__init__(self.describe(f"argument {position}"))

    def describe(self, name: str) -> str:
        """``NAME ('WORD'), column C: message``; the word is the unexpanded text, never a value."""
        shown = self.word if len(self.word) <= 60 else self.word[:57] + "..."
        where = f", column {self.column}" if self.column is not None else ""
        return f"{name} ({shown!r}){where}: {self.message}"


class ArgumentErrors(ConfigError):
    """Every argument problem found in one pass, one line each."""

    def __init__(self, errors: list[ArgumentError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class MissingExtra(EntrypointError):
    """A command needs an optional library that is not installed (names the pip extra)."""

    def __init__(self, command: str, module: str, extra: str) -> None:
        self.command = command
        self.module = module
        self.extra = extra
        super().__init__(f"entrypoint {command} needs {module}, which is not installed: "
                         f"pip install 'entrypoint[{extra}]'")


class StatusUnavailable(EntrypointError):
    """``status`` cannot tell: no state file, a garbage one, or PID 1 is not entrypoint (exit 1)."""


class StdoutError(EntrypointError):
    """Standard output could not be written (a full disk, an I/O error): one line, exit 1, as GNU envsubst."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"write error on standard output: {reason}")


class StdoutClosed(EntrypointError):
    """Whoever read standard output went away (``| head``): no message, the status of a filter
    that SIGPIPE ended (141), as GNU envsubst and coreutils end."""

    exit_code = EX_SIGPIPE
