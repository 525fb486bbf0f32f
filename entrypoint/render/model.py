"""Shared vocabulary of the rendering layer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Syntax(StrEnum):
    ENVSUBST = "envsubst"  # byte-for-byte GNU envsubst
    SHELL = "shell"  # GNU rules + POSIX parameter expansion + `$$` escape
    JINJA = "jinja"  # sandboxed Jinja2


JINJA_SUFFIXES = (".j2", ".jinja")
TEMPLATE_SUFFIXES = (".template", ".tmpl", ".j2", ".jinja")


def syntax_for(filename: str, requested: str = "auto") -> Syntax:
    """`auto` picks by suffix: .j2/.jinja -> jinja, anything else -> shell."""
    if requested != "auto":
        return Syntax(requested)
    return Syntax.JINJA if filename.endswith(JINJA_SUFFIXES) else Syntax.SHELL


@dataclass(frozen=True)
class Selection:
    """Which references a `shell`/`envsubst` template substitutes.

    Everything not selected is copied verbatim (braces included), so an nginx
    config's own ``$host`` or ``$http_proxy`` survives.  The default selects
    every name.
    """

    names: frozenset[str] | None = None  # only these names (None: no restriction)
    prefixes: tuple[str, ...] = ()  # only names starting with one of these
    braced_only: bool = False  # only ``${NAME}`` forms; bare ``$name`` stays

    def selects(self, name: str, *, braced: bool) -> bool:
        if self.braced_only and not braced:
            return False
        if self.names is not None and name not in self.names:
            return False
        return not self.prefixes or name.startswith(self.prefixes)

    @property
    def is_everything(self) -> bool:
        return self.names is None and not self.prefixes and not self.braced_only


EVERYTHING = Selection()


@dataclass(frozen=True)
class VariableUse:
    """One reference found in a template (for `--variables` listings)."""

    name: str
    line: int
    column: int
    default: str | None = None  # the word of ${X:-word} etc., unexpanded
    operator: str | None = None  # '-', ':-', '=', ':=', '+', ':+', '?', ':?' or None
