"""Shared vocabulary of the rendering layer.

Plain classes, no :mod:`enum` or :mod:`dataclasses`: the shell path of
``render`` and the render fork of ``run`` import this, and those two modules
alone would cost more start-up than the whole render of a small template.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.options import RunOptions


class Syntax:
    """The template syntaxes; the values are plain strings (``Syntax.SHELL == "shell"``)."""

    ENVSUBST = "envsubst"  # byte-for-byte GNU envsubst
    SHELL = "shell"  # GNU rules + POSIX parameter expansion + `$$` escape
    JINJA = "jinja"  # sandboxed Jinja2
    ALL = (ENVSUBST, SHELL, JINJA)


JINJA_SUFFIXES = (".j2", ".jinja")
TEMPLATE_SUFFIXES = (".template", ".tmpl", ".j2", ".jinja")


def syntax_for(filename: str, requested: str = "auto") -> str:
    """`auto` picks by suffix: .j2/.jinja -> jinja, anything else -> shell."""
    if requested != "auto":
        if requested not in Syntax.ALL:
            raise ValueError(f"unknown syntax {requested!r}")
        return requested
    return Syntax.JINJA if filename.endswith(JINJA_SUFFIXES) else Syntax.SHELL


class Selection:
    """Which references a `shell`/`envsubst` template substitutes.

    Everything not selected is copied verbatim (braces included), so an nginx
    config's own ``$host`` or ``$http_proxy`` survives.  The default selects
    every name.  Immutable by convention.
    """

    __slots__ = ("braced_only", "names", "prefixes")

    def __init__(self, names: frozenset[str] | None = None, prefixes: tuple[str, ...] = (),
                 braced_only: bool = False) -> None:
        self.names = names  # only these names (None: no restriction)
        self.prefixes = prefixes  # only names starting with one of these
        self.braced_only = braced_only  # only ``${NAME}`` forms; bare ``$name`` stays

    def selects(self, name: str, *, braced: bool) -> bool:
        if self.braced_only and not braced:
            return False
        if self.names is not None and name not in self.names:
            return False
        return not self.prefixes or name.startswith(self.prefixes)

    @property
    def is_everything(self) -> bool:
        return self.names is None and not self.prefixes and not self.braced_only

    def _key(self) -> tuple[object, ...]:
        return (self.names, self.prefixes, self.braced_only)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selection) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Selection(names={self.names!r}, prefixes={self.prefixes!r}, "
                f"braced_only={self.braced_only!r})")


EVERYTHING = Selection()


class VariableUse:
    """One reference found in a template (for `--variables` listings)."""

    __slots__ = ("column", "default", "line", "name", "operator")

    def __init__(self, name: str, line: int, column: int, default: str | None = None,
                 operator: str | None = None) -> None:
        self.name = name
        self.line = line
        self.column = column
        self.default = default  # the word of ${X:-word} etc., unexpanded
        self.operator = operator  # '-', ':-', '=', ':=', '+', ':+', '?', ':?' or None

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.line, self.column, self.default, self.operator)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VariableUse) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"VariableUse(name={self.name!r}, line={self.line}, column={self.column}, "
                f"default={self.default!r}, operator={self.operator!r})")


def selection_of(settings: RunOptions) -> Selection:
    """What a shell/envsubst template substitutes (``--only``, ``--prefix``, ``--braced-only``)."""
    return Selection(
        names=frozenset(settings.only) if settings.only else None,
        prefixes=tuple(settings.prefix),
        braced_only=settings.braced_only,
    )
