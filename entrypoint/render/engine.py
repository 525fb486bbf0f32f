"""One entry point for the three template syntaxes: bytes in, bytes out.

The envsubst syntax stays on bytes end to end (it must be byte-exact with
GNU).  Shell and Jinja work on text, so their templates must be UTF-8 without
NUL bytes; anything else is refused with a message pointing at the bad byte
instead of being silently mangled.
"""

from __future__ import annotations

import os
import stat

from entrypoint.errors import TemplateError, TemplateErrors
from entrypoint.render.model import EVERYTHING, Selection, Syntax, VariableUse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from entrypoint.render.plan import TemplateSpec


def render_template(
    data: bytes,
    *,
    filename: str,
    syntax: str,
    env: Mapping[str, str],
    strict: bool | None = None,
    selection: Selection = EVERYTHING,
    include_dir: str | None = None,
) -> bytes:
    """Render one template; raises TemplateError/TemplateErrors with FILE:LINE:COL.

    ``strict=None`` means the syntax's own default: Jinja is strict (an
    undefined name is an error), shell and envsubst are not (GNU behaviour).
    """
    if syntax == Syntax.JINJA:
        from entrypoint.render.jinja import render_jinja

        text = decode_template(data, filename=filename)
        jinja_strict = True if strict is None else strict
        out = render_jinja(text, env, filename=filename, strict=jinja_strict, include_dir=include_dir)
        return out.encode("utf-8", "surrogateescape")
    strict = bool(strict)
    if syntax == Syntax.ENVSUBST:
        return _render_envsubst(data, filename=filename, env=env, strict=strict, selection=selection)
    text = decode_template(data, filename=filename)
    from entrypoint.render.shell import render_shell

    out = render_shell(text, env, filename=filename, strict=strict, selection=selection)
    return out.encode("utf-8", "surrogateescape")


def _render_envsubst(
    data: bytes, *, filename: str, env: Mapping[str, str], strict: bool, selection: Selection
) -> bytes:
    from entrypoint.render.envsubst import substitute_bytes

    if strict:
        missing = [use for use in _envsubst_uses(data, selection) if use.name not in env]
        if missing:
            raise TemplateErrors([
                TemplateError(f"undefined variable {use.name}", filename=filename, line=use.line,
                              column=use.column, variable=use.name)
                for use in missing
            ])
    benv = {os.fsencode(name): os.fsencode(value) for name, value in env.items()}
    return substitute_bytes(data, benv, selection)


def _envsubst_uses(data: bytes, selection: Selection) -> list[VariableUse]:
    from entrypoint.render.envsubst import list_references

    uses = []
    for name, line, column, braced in list_references(data):
        text = name.decode("ascii")
        if selection.selects(text, braced=braced):
            uses.append(VariableUse(name=text, line=line, column=column))
    return uses


def decode_template(data: bytes, *, filename: str) -> str:
    """UTF-8 text or a TemplateError naming where it stops being text."""
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        raise TemplateError("binary template (NUL byte); use --syntax envsubst for binary files",
                            filename=filename, line=line, column=column)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise TemplateError("not valid UTF-8 (use --syntax envsubst for non-UTF-8 files)",
                            filename=filename, line=line, column=column) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def list_template_variables(
    data: bytes, *, filename: str, syntax: str, selection: Selection = EVERYTHING
) -> list[VariableUse]:
    """Which names a template reads, in order (for ``render --variables``)."""
    if syntax == Syntax.ENVSUBST:
        return _envsubst_uses(data, selection)
    text = decode_template(data, filename=filename)
    if syntax == Syntax.SHELL:
        from entrypoint.render.shell import list_variables

        uses = list_variables(text, filename=filename)
        return [u for u in uses if selection.selects(u.name, braced=True)]
    from entrypoint.render.jinja import list_jinja_variables

    return list_jinja_variables(text, filename=filename)


def render_specs(
    specs: list[TemplateSpec],
    env: Mapping[str, str],
    *,
    strict: bool | None,
    selection: Selection = EVERYTHING,
) -> tuple[list[tuple[TemplateSpec, bytes, int]], list[TemplateError]]:
    """Render every spec in memory; collect every error instead of stopping at the first.

    Returns (spec, output, template mode) for the successes and all errors.
    """
    outputs: list[tuple[TemplateSpec, bytes, int]] = []
    errors: list[TemplateError] = []
    for spec in specs:
        name = spec.src
        try:
            with open(spec.src, "rb") as fh:
                mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
                data = fh.read()
        except OSError as exc:
            errors.append(TemplateError(f"cannot read template: {exc.strerror}", filename=name))
            continue
        try:
            out = render_template(data, filename=name, syntax=spec.syntax, env=env, strict=strict,
                                  selection=selection,
                                  include_dir=os.path.dirname(spec.src) or ".")
        except TemplateErrors as exc:
            errors.extend(exc.errors)
            continue
        except TemplateError as exc:
            errors.append(exc)
            continue
        outputs.append((spec, out, mode))
    return outputs, errors
