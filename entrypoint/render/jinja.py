"""Sandboxed Jinja2 rendering with errors that point at FILE:LINE.

Templates may come from an image author we do not fully trust, so they run in
:class:`SandboxedEnvironment`: attribute tricks such as
``().__class__.__subclasses__()`` raise a clean :class:`TemplateError`
instead of reaching Python internals.  Undefined names are errors by default
(a silently empty ``bind_address =`` is the bug this project exists to stop).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NamedTuple, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from entrypoint import log
from entrypoint.context.sources import Environment
from entrypoint.context.views import template_objects
from entrypoint.errors import ContextError, EntrypointError, TemplateError, TemplateErrors
from entrypoint.render.jinja_names import CONTEXT_NAMES, EnvNamesContext, suggestion
from entrypoint.render.model import VariableUse

_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n", ""})


class EnvDict(Environment):
    """The ``env`` mapping; its own type so an undefined key reads as a variable.

    An :class:`Environment`, so ``env.NAME`` gets the secret behind
    ``NAME_FILE`` exactly as the shell syntax does.  ``scope_names`` are the
    render context's other names, offered as "did you mean" suggestions.
    """

    scope_names: tuple[str, ...] = ()


class MissingVariable(jinja2.UndefinedError):
    """An undefined variable, with its name kept for the error message."""

    def __init__(self, message: str, name: object) -> None:
        super().__init__(message)
        self.variable = _name_text(name)


def _name_text(name: object) -> str | None:
    """Jinja's undefined name is whatever the template used as a key: ``ports[0]`` gives 0."""
    return None if name is None else str(name)


class _StrictUndefined(jinja2.StrictUndefined):
    def _describe(self) -> str:
        if self._undefined_exception is not jinja2.UndefinedError:
            return f"refused by the sandbox: {self._undefined_message}"
        if self._undefined_hint is None and (
            isinstance(self._undefined_obj, EnvDict) or self._undefined_obj is jinja2.utils.missing
        ):
            name = _name_text(self._undefined_name) or ""
            return f"undefined variable {name if name.isprintable() else repr(name)}{_did_you_mean(self)}"
        return self._undefined_message

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._raise_refusal()
        raise MissingVariable(self._describe(), self._undefined_name)

    def _raise_refusal(self) -> None:
        """Raise the sandbox's SecurityError if this undefined, or one it was derived from, is a refusal.

        ``()|attr('__class__')|attr('__base__')`` looks the next attribute up
        on the refusal itself, which yields a plain undefined; without this
        the refusal would turn into "no attribute" and be reported twice.
        """
        if self._undefined_exception is not jinja2.UndefinedError:
            super()._fail_with_undefined_error()  # SecurityError and friends
        origin = self._undefined_obj
        if isinstance(origin, _StrictUndefined):
            origin._raise_refusal()

    # StrictUndefined sets these to the failing function; subclasses must re-bind.
    __iter__ = __str__ = __len__ = __eq__ = __ne__ = __bool__ = __hash__ = __contains__ = __call__ = (
        _fail_with_undefined_error
    )


class _Use(NamedTuple):
    filename: str | None
    line: int | None
    name: str | None
    message: str


class _RecordingUndefined(_StrictUndefined):
    """Strict, but printing, iterating or testing an undefined is recorded and rendering goes on.

    That way one pass finds every undefined name of a template (``check``
    reports them all); arithmetic and calls on an undefined still raise.
    """

    sink: ClassVar[list[_Use]]

    def _record(self) -> None:
        self._raise_refusal()  # the sandbox refused something: stop right here
        frame = sys._getframe(1)
        filename, line = None, None
        while frame is not None:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                filename, line = template.filename, template.get_corresponding_lineno(frame.f_lineno)
                break
            frame = frame.f_back  # type: ignore[assignment]
        if line is None:
            # Not inside a template: Jinja's optimizer is folding a constant
            # such as ``[1][5]`` or ``"a" ~ [1][5]`` at compile time.  Impossible
            # makes it emit the expression as code, so the render reports it
            # with its line.
            raise nodes.Impossible()
        self.sink.append(_Use(filename, line, _name_text(self._undefined_name), self._describe()))

    def __str__(self) -> str:  # type: ignore[override]
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self._record()
        return iter(())

    def __bool__(self) -> bool:  # type: ignore[override]
        self._record()
        return False

    def __len__(self) -> int:  # type: ignore[override]
        self._record()
        return 0

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, _name: str) -> Any:
        return self


def _recording_class() -> type[_RecordingUndefined]:
    return type("RecordingUndefined", (_RecordingUndefined,), {"sink": []})


class FilterError(ValueError):
    """A filter could not convert its input (the message never shows the value)."""


def _did_you_mean(undefined: jinja2.Undefined) -> str:
    """`` (did you mean FEEDS_CLIENT_ID?)`` when the undefined name is close to a variable."""
    variables = undefined._undefined_obj
    name = _name_text(undefined._undefined_name)
    if not isinstance(variables, EnvDict) or not name:
        return ""
    close = suggestion(name, variables, variables.scope_names)
    return f" (did you mean {close}?)" if close else ""


class _LenientUndefined(jinja2.ChainableUndefined):
    """Renders as the empty string, like an unset shell variable; a likely typo is still reported.

    ``--lenient`` is for variables that may really be unset, not for hiding
    ``{{ FEEDS_CLIENTID }}`` next to a set ``FEEDS_CLIENT_ID``: that gets a
    warning (the render goes on).
    """

    def _warn_if_typo(self, what: str) -> None:
        hint = _did_you_mean(self)
        if hint:
            name = _name_text(self._undefined_name)
            log.warn(f"{_template_position()}undefined variable {name} {what}{hint}")

    def __str__(self) -> str:
        self._warn_if_typo("rendered empty")
        return ""

    def __bool__(self) -> bool:
        self._warn_if_typo("taken as false")
        return False

    def __iter__(self) -> Iterator[Any]:
        self._warn_if_typo("taken as empty")
        return iter(())


def _template_position() -> str:
    """``FILE:LINE: `` of the template code running now (empty outside a template)."""
    frame = sys._getframe(2)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return f"{template.filename}:{template.get_corresponding_lineno(frame.f_lineno)}: "
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FilterError(f"bool: cannot read {_describe(value)} as a boolean (true/false/yes/no/on/off/1/0)")


def _to_int(value: object, base: int = 10) -> int:
    if isinstance(value, bool):
        raise FilterError("int: got a boolean")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text, base)
    except ValueError:
        pass
    # Marathon writes resources as Java doubles ("32.0"): accept integral ones.
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if base == 10 and number.is_integer():
        return int(number)
    raise FilterError(f"int: cannot read {_describe(value)} as an integer")


def _describe(value: object) -> str:
    """Never echo a value (it may be a secret): say only what kind it was."""
    text = str(value)
    return "an empty value" if not text.strip() else f"a value of {len(text)} characters"


def _split(value: object, sep: str | None = None) -> list[str]:
    """Whitespace split without sep; with sep, items are stripped and empty ones dropped."""
    text = str(value)
    if sep is None:
        return text.split()
    return [item.strip() for item in text.split(sep) if item.strip()]


def _json(value: object) -> str:
    import json  # only a template that uses the filter pays for it (~2.5 ms of every Jinja render)

    return json.dumps(value, ensure_ascii=False)


def _yaml_quote(value: object) -> str:
    # A JSON string with only ASCII is a valid YAML (1.1 and 1.2) double-quoted scalar.
    import json

    return json.dumps(str(value), ensure_ascii=True)


def _shell_quote(value: object) -> str:
    import shlex  # only for templates that use the filter

    return shlex.quote(str(value))


def _passing_undefined(function: Callable[..., object]) -> Callable[..., object]:
    """An undefined input stays undefined, so it is reported once, as undefined, where it is used."""

    @functools.wraps(function)
    def wrapper(value: object, *args: object) -> object:
        if isinstance(value, jinja2.Undefined):
            return value
        return function(value, *args)

    return wrapper


def make_environment(
    *, undefined: type[jinja2.Undefined] = _StrictUndefined, include_dir: str | os.PathLike[str] | None = None
) -> SandboxedEnvironment:
    """A sandbox with our filters; includes only from ``include_dir`` (None: none at all)."""
    loader = jinja2.FileSystemLoader(str(include_dir)) if include_dir is not None else None
    environment = SandboxedEnvironment(
        undefined=undefined,
        keep_trailing_newline=True,
        autoescape=False,
        loader=loader,
    )
    environment.context_class = EnvNamesContext  # bare {{ NAME }} falls back to the variables
    filters = {"json": _json, "yaml_quote": _yaml_quote, "bool": _to_bool, "int": _to_int, "split": _split,
               "shell_quote": _shell_quote}
    environment.filters.update({name: _passing_undefined(f) for name, f in filters.items()})
    return environment


def template_context(env: Mapping[str, str], environment: jinja2.Environment) -> dict[str, object]:
    variables = EnvDict(env)

    def getenv(name: str, default: object = None) -> object:
        try:
            value = variables.get(name)
        except ContextError:
            value = None  # getenv is the forgiving lookup: an unreadable NAME_FILE means the default
        if value is not None:
            return value
        if default is not None:
            return default
        return environment.undefined(obj=variables, name=name)

    context: dict[str, object] = {"env": variables, "getenv": getenv}
    context.update(template_objects(env))
    variables.scope_names = tuple(context)  # for "did you mean" on a misspelt object name
    return context


def render_jinja(
    text: str,
    env: Mapping[str, str],
    *,
    filename: str,
    strict: bool = True,
    include_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Render ``text``; failures become TemplateError (one) or TemplateErrors (several).

    In strict mode every undefined name met during the render is reported,
    not just the first, each with FILE:LINE:COL.
    """
    undefined: type[jinja2.Undefined] = _recording_class() if strict else _LenientUndefined
    environment = make_environment(undefined=undefined, include_dir=include_dir)
    problems: list[TemplateError] = []
    out = ""
    try:
        code = environment.compile(text, name=os.path.basename(filename), filename=filename)
        template = environment.template_class.from_code(environment, code, environment.make_globals(None))
        out = template.render(template_context(env, environment))
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or filename
        message = f"syntax error: {exc.message}"
        problems.append(TemplateError(message, filename=where, line=exc.lineno, column=1))
    except jinja2.TemplateNotFound as exc:
        problems.append(_runtime_error(exc, text, filename, f"include not found: {exc.name}"))
    except RecursionError as exc:
        problems.append(_too_deep(exc, text, filename))
    except Exception as exc:  # the sandbox, filters and user code can raise anything
        problems.append(_runtime_error(exc, text, filename, _message_for(exc)))
    if issubclass(undefined, _RecordingUndefined):
        recorded = _recorded_errors(undefined.sink, text, filename)
        keys = {(e.filename, e.line, e.variable) for e in recorded}
        problems = recorded + [p for p in problems if (p.filename, p.line, p.variable) not in keys]
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise TemplateErrors(problems)
    return out


def _recorded_errors(uses: list[_Use], text: str, filename: str) -> list[TemplateError]:
    errors: list[TemplateError] = []
    seen: set[tuple[str | None, int | None, str | None]] = set()
    for use in uses:
        key = (use.filename, use.line, use.name)
        if key in seen:
            continue  # the same reference inside a loop
        seen.add(key)
        where = use.filename or filename
        column = None
        if use.line is not None:
            column = _column_of(text if where == filename else _read_text(where), use.line, use.name)
        errors.append(TemplateError(use.message, filename=where, line=use.line, column=column,
                                    variable=use.name))
    return errors


MSG_TOO_DEEP = "nested too deeply (Jinja's parser and macros recurse; Python's recursion limit was hit)"


def _too_deep(exc: RecursionError, text: str, filename: str) -> TemplateError:
    """Jinja's parser, compiler and macro calls recurse in Python, so deep nesting ends here.

    A parse-time overflow has no template frame to point at; line 1, column 1
    still gives editors and CI a position (as for Jinja syntax errors).
    """
    error = _runtime_error(exc, text, filename, MSG_TOO_DEEP)
    if error.line is None:
        error = TemplateError(MSG_TOO_DEEP, filename=filename, line=1, column=1)
    return error


def _message_for(exc: Exception) -> str:
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, (jinja2.UndefinedError, FilterError, EntrypointError)):
        return str(exc)  # already says what is wrong, naming the variable
    return f"{type(exc).__name__}: {exc}"


def _runtime_error(exc: BaseException, text: str, filename: str, message: str) -> TemplateError:
    where, line = _template_frame(exc, filename)
    variable = exc.variable if isinstance(exc, MissingVariable) else None
    column = None
    if line is not None:
        column = _column_of(text if where == filename else _read_text(where), line, variable)
    return TemplateError(message, filename=where, line=line, column=column, variable=variable)


def _template_frame(exc: BaseException, filename: str) -> tuple[str, int | None]:
    """The innermost traceback frame that Jinja rewrote to point into a template."""
    import traceback  # the error path only

    found: tuple[str, int | None] = (filename, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.name == "top-level template code" or frame.name.startswith(("block ", "macro ", "template")):
            found = (frame.filename, frame.lineno)
    return found


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _column_of(text: str, line: int, variable: str | None) -> int:
    lines = text.splitlines()
    if variable is None or not 0 < line <= len(lines):
        return 1
    index = lines[line - 1].find(variable)
    return index + 1 if index >= 0 else 1


def list_jinja_variables(text: str, *, filename: str) -> list[VariableUse]:
    """Names read through ``env.X``, ``env['X']`` and ``getenv('X', default)``."""
    environment = make_environment()
    try:
        tree = environment.parse(text, filename=filename)
    except jinja2.TemplateSyntaxError as exc:
        message = f"syntax error: {exc.message}"
        raise TemplateError(message, filename=filename, line=exc.lineno, column=1) from None
    except RecursionError:
        raise TemplateError(MSG_TOO_DEEP, filename=filename, line=1, column=1) from None
    lines = text.splitlines()
    found: list[VariableUse] = []
    try:  # find_all recurses too: ``1+1+...`` parses iteratively but is a deep tree
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
            use = _variable_use(node, lines)
            if use is not None:
                found.append(use)
        found.extend(_top_level_uses(tree, environment, lines))
    except RecursionError:
        raise TemplateError(MSG_TOO_DEEP, filename=filename, line=1, column=1) from None
    found.sort(key=lambda use: (use.line, use.column))
    return found


def _top_level_uses(
    tree: nodes.Template, environment: jinja2.Environment, lines: list[str]
) -> list[VariableUse]:
    """Bare ``{{ NAME }}`` reads of a variable: names the template never sets and the context lacks."""
    from jinja2 import meta

    free = meta.find_undeclared_variables(tree) - CONTEXT_NAMES - set(environment.globals)
    text = "\n".join(lines)
    uses = []
    seen: set[tuple[str, int]] = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in free and (node.name, node.lineno) not in seen:
            seen.add((node.name, node.lineno))
            uses.append(VariableUse(name=node.name, line=node.lineno,
                                    column=_column_of(text, node.lineno, node.name)))
    return uses


def _variable_use(node: nodes.Node, lines: list[str]) -> VariableUse | None:
    name: str | None = None
    default: str | None = None
    if isinstance(node, nodes.Getattr) and _is_name(node.node, "env"):
        name = node.attr
    elif isinstance(node, nodes.Getitem) and _is_name(node.node, "env") and isinstance(node.arg, nodes.Const):
        name = str(node.arg.value)
    elif isinstance(node, nodes.Call) and _is_name(node.node, "getenv") and node.args:
        first = node.args[0]
        if not isinstance(first, nodes.Const):
            return None
        name = str(first.value)
        if len(node.args) > 1 and isinstance(node.args[1], nodes.Const):
            default = str(node.args[1].value)
    if name is None:
        return None
    line = node.lineno
    column = _column_of("\n".join(lines), line, name)
    return VariableUse(name=name, line=line, column=column, default=default,
                       operator="-" if default is not None else None)


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name
