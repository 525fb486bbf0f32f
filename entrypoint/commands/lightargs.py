"""The subset of :mod:`argparse` that ``render``, ``check`` and ``env`` use, at a fraction of its cost.

``entrypoint render`` of a small shell template competes with
``envsubst < t > out``; argparse (with the :mod:`re`, :mod:`gettext` and
:mod:`shutil` it imports) alone costs about as much as the whole render.  The
command modules import this one *as* ``argparse`` so that their option
declarations stay ordinary argparse calls: ``add_argument`` with ``action``
``store``/``store_true``/``store_false``/``append``, ``choices``, ``default``,
``dest``, ``type``, ``metavar``, ``help``, one positional with ``nargs``;
argument groups and mutually exclusive groups; ``--opt=value``, unique
prefixes of long options, ``--`` and ``-h``/``--help``.

A usage error is a :class:`~entrypoint.errors.UsageError` (exit 2, one line).
"""

from __future__ import annotations

import sys

from entrypoint import stdio
from entrypoint.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

SUPPRESS = "==SUPPRESS=="


class Namespace:
    """Parsed values as attributes, like :class:`argparse.Namespace`."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # typed like argparse.Namespace: any attribute
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Namespace({self.__dict__!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and vars(self) == vars(other)


class _Action:
    __slots__ = (
        "action",
        "choices",
        "default",
        "dest",
        "group",
        "help",
        "metavar",
        "names",
        "nargs",
        "title",
        "type",
    )

    def __init__(self, names: tuple[str, ...], dest: str, action: str, default: Any,
                 choices: Sequence[Any] | None,
                 type: Callable[[str], Any] | None, help: str | None, metavar: str | None, nargs: str | None,
                 group: int | None, title: str | None) -> None:
        self.names = names
        self.dest = dest
        self.action = action
        self.default = default
        self.choices = choices
        self.type = type
        self.help = help
        self.metavar = metavar
        self.nargs = nargs
        self.group = group  # mutually exclusive group number
        self.title = title  # argument group title (help only)

    @property
    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class _Group:
    """What ``add_argument_group``/``add_mutually_exclusive_group`` return."""

    def __init__(self, parser: ArgumentParser, title: str | None, exclusive: int | None) -> None:
        self._parser = parser
        self._title = title
        self._exclusive = exclusive

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        self._parser._add(names, kwargs, title=self._title, group=self._exclusive)


class ArgumentParser:
    def __init__(self, prog: str | None = None, description: str | None = None, epilog: str | None = None,
                 **_ignored: Any) -> None:
        self.prog = prog or "entrypoint"
        self.description = description
        self.epilog = epilog
        self._actions: list[_Action] = []
        self._positional: _Action | None = None
        self._groups = 0
        self._add(("-h", "--help"), {"action": "help", "help": "show this help message and exit"}, None, None)

    # -- declaring --------------------------------------------------------------------

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        self._add(names, kwargs, title=None, group=None)

    def add_argument_group(self, title: str | None = None, description: str | None = None) -> _Group:
        return _Group(self, title, None)

    def add_mutually_exclusive_group(self, required: bool = False) -> _Group:
        self._groups += 1
        return _Group(self, None, self._groups)

    def _add(self, names: tuple[str, ...], kwargs: dict[str, Any], title: str | None,
             group: int | None) -> None:
        action = kwargs.get("action") or "store"
        if action not in ("store", "store_true", "store_false", "append", "help"):
            raise TypeError(f"lightargs: unsupported action {action!r}")
        if not names[0].startswith("-"):
            dest = kwargs.get("dest") or names[0]
            self._positional = _Action(names, dest, "positional", kwargs.get("default"),
                                       kwargs.get("choices"),
                                       kwargs.get("type"), kwargs.get("help"), kwargs.get("metavar"),
                                       kwargs.get("nargs"), None, title)
            return
        long_names = [n for n in names if n.startswith("--")]
        dest = kwargs.get("dest") or (long_names[0] if long_names else names[0]).lstrip("-").replace("-", "_")
        default = kwargs.get("default")
        if "default" not in kwargs:
            default = {"store_true": False, "store_false": True}.get(action)
        self._actions.append(_Action(names, dest, action, default, kwargs.get("choices"), kwargs.get("type"),
                                     kwargs.get("help"), kwargs.get("metavar"), None, group, title))

    # -- parsing ----------------------------------------------------------------------

    def _find(self, word: str) -> _Action:
        for action in self._actions:
            if word in action.names:
                return action
        if word.startswith("--"):
            matches = [a for a in self._actions for n in a.names if n.startswith(word) and n.startswith("--")]
            if len({id(a) for a in matches}) == 1:
                return matches[0]
            if matches:
                self.error(f"ambiguous option: {word}")
        self.error(f"unrecognized argument {word!r}")

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def parse_args(self, args: Sequence[str] | None = None) -> Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        values: dict[str, Any] = {}
        for action in self._actions:
            if action.action != "help" and action.dest not in values:
                default = action.default
                values[action.dest] = list(default) if isinstance(default, list) else default
        positional: list[str] = []
        seen_in_group: dict[int, _Action] = {}
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if word == "--":
                positional.extend(argv[i:])
                break
            if not word.startswith("-") or word == "-":
                positional.append(word)
                continue
            name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
            action = self._find(name)
            if action.action == "help":
                stdio.write(self.format_help())
                raise SystemExit(0)
            if action.group is not None:
                other = seen_in_group.setdefault(action.group, action)
                if other is not action:
                    self.error(f"argument {action.names[-1]}: not allowed with argument {other.names[-1]}")
            if not action.takes_value:
                if eq:
                    self.error(f"argument {name}: ignored explicit argument {inline!r}")
                values[action.dest] = action.action == "store_true"
                continue
            if eq:
                raw = inline
            elif i < len(argv):
                raw = argv[i]
                i += 1
            else:
                self.error(f"argument {action.names[-1]}: expected one argument")
            value = self._convert(action, raw)
            if action.action == "append":
                current = values.get(action.dest)
                values[action.dest] = [*(current or []), value]
            else:
                values[action.dest] = value
        self._positionals(positional, values)
        return Namespace(**values)

    def _convert(self, action: _Action, raw: str) -> Any:
        value: Any = raw
        if action.type is not None:
            try:
                value = action.type(raw)
            except (TypeError, ValueError):
                self.error(f"argument {action.names[-1]}: invalid value {raw!r}")
        if action.choices is not None and value not in action.choices:
            shown = ", ".join(repr(c) for c in action.choices)
            self.error(f"argument {action.names[-1]}: invalid choice: {raw!r} (choose from {shown})")
        return value

    def _positionals(self, words: list[str], values: dict[str, Any]) -> None:
        spec = self._positional
        if spec is None:
            if words:
                self.error(f"unrecognized arguments: {' '.join(words)}")
            return
        converted = [self._convert(spec, w) for w in words]
        if spec.nargs in ("*", "+"):
            if spec.nargs == "+" and not converted:
                self.error(f"the following arguments are required: {spec.metavar or spec.dest}")
            values[spec.dest] = converted if converted else (spec.default if spec.default is not None else [])
        elif spec.nargs == "?":
            if len(converted) > 1:
                self.error(f"unrecognized arguments: {' '.join(words[1:])}")
            values[spec.dest] = converted[0] if converted else spec.default
        else:
            if len(converted) != 1:
                self.error(f"expected exactly one {spec.metavar or spec.dest}")
            values[spec.dest] = converted[0]

    # -- help -------------------------------------------------------------------------

    def format_usage(self) -> str:
        tail = ""
        if self._positional is not None:
            meta = self._positional.metavar or self._positional.dest
            tail = f" [{meta} ...]" if self._positional.nargs == "*" else f" {meta}"
        return f"usage: {self.prog} [options]{tail}\n"

    def format_help(self) -> str:
        lines = [self.format_usage().rstrip("\n"), ""]
        if self.description:
            lines += [self.description, ""]
        if self._positional is not None and self._positional.help:
            lines += ["positional arguments:",
                      _row(self._positional.metavar or self._positional.dest, self._positional.help), ""]
        title: str | None = "options"
        lines.append("options:")
        for action in self._actions:
            if action.title != title and action.title is not None:
                title = action.title
                lines += ["", f"{title}:"]
            if action.help == SUPPRESS:
                continue
            label = ", ".join(action.names)
            if action.takes_value:
                meta = action.metavar or (
                    "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
                label += f" {meta}"
            lines.append(_row(label, action.help or ""))
        if self.epilog:
            lines += ["", self.epilog]
        return "\n".join(lines) + "\n"

    def print_help(self) -> None:
        stdio.write(self.format_help())


def _row(label: str, text: str) -> str:
    label = f"  {label}"
    if len(label) >= 24:
        return f"{label}\n{'':24}{text}"
    return f"{label:<24}{text}"
