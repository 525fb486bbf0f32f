"""What ``entrypoint check`` found, and its three output formats (``--format text|json|github``).

Kept apart from the command so that a caller running the check repeatedly
(``check --watch``) or another front end can format the same list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from entrypoint.errors import ConfigError, TemplateError

FORMATS = ("text", "json", "github")


@dataclass(frozen=True)
class Problem:
    """One problem: where (as far as known), which variable (if any), and what."""

    file: str | None
    line: int | None
    col: int | None
    variable: str | None
    message: str

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
        return json.dumps([asdict(p) for p in problems], ensure_ascii=False, indent=2) + "\n"
    lines = [p.github() if fmt == "github" else p.text() for p in problems]
    return "".join(line + "\n" for line in lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
