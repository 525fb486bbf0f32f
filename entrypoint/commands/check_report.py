"""What ``entrypoint check`` found, and its three output formats (``--format text|json|github``).

Kept apart from the command so that a caller running the check repeatedly
(``check --watch``) or another front end can format the same list.  A plain
``check`` is on the light path (tests/test_imports.py): no :mod:`dataclasses`
here, and :mod:`json` is imported only for ``--format json``.
"""

from __future__ import annotations

from entrypoint.errors import ConfigError, TemplateError

TYPE_CHECKING = False  # not `typing`: one import less on the light path
if TYPE_CHECKING:
    from collections.abc import Sequence

FORMATS = ("text", "json", "github")
_FIELDS = ("file", "line", "col", "variable", "message")


class Problem:
    """One problem: where (as far as known), which variable (if any), and what.  Immutable by convention."""

    __slots__ = _FIELDS

    def __init__(self, file: str | None, line: int | None, col: int | None, variable: str | None,
                 message: str) -> None:
        self.file = file
        self.line = line
        self.col = col
        self.variable = variable
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The JSON object of ``--format json``: {file, line, col, variable, message}."""
        return {name: getattr(self, name) for name in _FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().values()))

    def __repr__(self) -> str:
        return "Problem(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"

    @classmethod
    def from_template_error(cls, error: TemplateError) -> Problem:
        return cls(error.filename, error.line, error.column, error.variable, error.message)

    @classmethod
    def from_config_error(cls, error: ConfigError, file: str | None) -> Problem:
        """A planning error (missing template, empty directory...): its text already names the path."""
        text = str(error)
        message = text[len(file) + 2:] if file and text.startswith(f"{file}: ") else text
        return cls(file, None, None, getattr(error, "variable", None), message)

    def text(self) -> str:
        """``FILE:LINE:COL: message``, what editors and CI problem matchers read."""
        if self.file is None:
            return self.message
        where = self.file + (f":{self.line}" if self.line is not None else "")
        where += f":{self.col}" if self.line is not None and self.col is not None else ""
        return f"{where}: {self.message}"

    def github(self) -> str:
        """A workflow command: ``::error file=F,line=L,col=C::message`` marks the template line."""
        props = [f"{key}={_escape_property(str(value))}" for key, value in
                 (("file", self.file), ("line", self.line), ("col", self.col)) if value is not None]
        return f"::error {','.join(props)}::{_escape_data(self.message)}" if props else \
            f"::error::{_escape_data(self.message)}"


def format_problems(problems: Sequence[Problem], fmt: str) -> str:
    """The report body: one line per problem (text, github) or one JSON list."""
    if fmt == "json":
        import json  # only for --format json

        return json.dumps([p.as_dict() for p in problems], ensure_ascii=False, indent=2) + "\n"
    lines = [p.github() if fmt == "github" else p.text() for p in problems]
    return "".join(line + "\n" for line in lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
