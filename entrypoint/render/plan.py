"""What is rendered where: ``--template SRC[:DEST]`` and the templates directory.

Every path question is settled here, before anything is rendered, so that a
bad layout (a destination escaping the output dir through ``..`` or a symlink,
a FIFO posing as a template, a symlink loop) is refused up front and nothing
is written.

Paths are strings handled with :mod:`os.path`, not :mod:`pathlib`: this is on
the light path of ``render`` and of ``run``'s render fork, and pathlib (with
the :mod:`re`, :mod:`fnmatch` and :mod:`urllib.parse` it imports) would cost
more than rendering a small template.
"""

from __future__ import annotations

import os
import stat

from entrypoint.errors import ConfigError, OutputError
from entrypoint.render.model import TEMPLATE_SUFFIXES, syntax_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeAlias

    from entrypoint.render.writer import RenderedFile

    StrPath: TypeAlias = str | os.PathLike[str]


class TemplateSpec:
    """One template: where it comes from, where it goes, which syntax.  Immutable by convention."""

    __slots__ = ("create_dirs_under", "dest", "src", "syntax")

    def __init__(self, src: str, dest: str | None, syntax: str, create_dirs_under: str | None = None) -> None:
        self.src = src
        self.dest = dest  # None: standard output (render) or nowhere (check)
        self.syntax = syntax
        self.create_dirs_under = create_dirs_under  # directory mode: mirrored subdirs may be created below

    def _key(self) -> tuple[object, ...]:
        return (self.src, self.dest, self.syntax, self.create_dirs_under)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemplateSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"TemplateSpec(src={self.src!r}, dest={self.dest!r}, syntax={self.syntax!r})"


def clean_path(path: StrPath) -> str:
    """The path as :class:`pathlib.PurePosixPath` would print it: no ``//``, ``/./`` or trailing ``/``."""
    text = os.fspath(path)
    lead = "/" if text.startswith("/") else ""
    parts = [part for part in text.split("/") if part and part != "."]
    return lead + "/".join(parts) if parts else (lead or ".")


def _parent(path: str) -> str:
    return os.path.dirname(path) or "."


def split_template_arg(arg: str) -> tuple[str, str | None]:
    """``SRC[:DEST]``; the first colon separates (as dockerize does)."""
    src, sep, dest = arg.partition(":")
    if not src:
        raise ConfigError(f"--template {arg!r}: empty source")
    if sep and not dest:
        raise ConfigError(f"--template {arg!r}: empty destination after ':'")
    return clean_path(src), (clean_path(dest) if sep else None)


def strip_suffix(name: str) -> str | None:
    for suffix in TEMPLATE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def plan_argument(arg: str, syntax: str = "auto") -> list[TemplateSpec]:
    """One ``SRC[:DEST]``: a file, or a directory rendered into DEST in directory mode."""
    src, dest = split_template_arg(arg)
    try:
        st = os.stat(src)
    except FileNotFoundError:
        raise ConfigError(f"{src}: template not found") from None
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read template: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        specs = plan_directory(src, dest, syntax)
        if not specs:  # an explicit directory with nothing to render is a mistake, not a no-op
            suffixes = ", ".join(TEMPLATE_SUFFIXES)
            raise ConfigError(f"{src}: no template in this directory (searched it and its subdirectories "
                              f"for files ending in {suffixes})")
        return specs
    _require_regular(src, st.st_mode)
    if dest is not None:
        _check_file_destination(dest)
    return [TemplateSpec(src=src, dest=dest, syntax=syntax_for(os.path.basename(src), syntax))]


def plan_directory(
    templates_dir: StrPath, output_dir: StrPath | None, syntax: str = "auto", *, missing_ok: bool = False
) -> list[TemplateSpec]:
    """nginx convention: known suffix stripped, subdirectories mirrored into ``output_dir``."""
    root = clean_path(templates_dir)
    out = clean_path(output_dir) if output_dir is not None else None
    if not os.path.exists(root):
        if missing_ok:
            return []
        raise ConfigError(f"{root}: template directory not found")
    output_root = ""
    if out is not None:
        if os.path.exists(out) and not os.path.isdir(out):
            raise OutputError(f"{out}: output directory is not a directory")
        output_root = os.path.realpath(out)  # a missing one is created by the writer, with its parents
    specs: list[TemplateSpec] = []
    for rel in _walk_templates(root):
        name = os.path.basename(rel)
        out_name = strip_suffix(name)
        assert out_name is not None
        dest = None
        if out is not None:
            rel_dest = os.path.join(os.path.dirname(rel), out_name)
            dest = clean_path(os.path.join(out, rel_dest))
            _check_inside(dest, rel_dest, out, output_root)
        specs.append(TemplateSpec(src=clean_path(os.path.join(root, rel)), dest=dest,
                                  syntax=syntax_for(name, syntax), create_dirs_under=out))
    return specs


def is_hidden_by_kubelet(name: str) -> bool:
    """``..data``, ``..2026_12_01_10_00_00.123``, ``..data_tmp``: a ConfigMap/Secret volume's internals.

    The kubelet's AtomicWriter keeps the real files in a ``..<timestamp>``
    directory, points ``..data`` at it and exposes each key as a visible
    symlink through ``..data``; rendering the internals too would render
    every template three times (and, mounted at the templates root, write
    ``/..data/`` at the filesystem root).  Nothing else legitimately starts
    with ``..``, so such entries are neither rendered nor descended into.
    """
    return name.startswith("..")


def _walk_templates(root: str) -> list[str]:
    """Relative paths of template files, following symlinked dirs but refusing loops."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()

    def visit(directory: str, rel: str) -> None:
        try:
            st = os.stat(directory)
        except OSError as exc:
            raise ConfigError(f"{directory}: cannot read template directory: {exc.strerror}") from None
        key = (st.st_dev, st.st_ino)
        if key in seen:
            raise ConfigError(f"{directory}: symlink loop in the template directory")
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ConfigError(f"{directory}: cannot list template directory: {exc.strerror}") from None
        for entry in entries:
            if is_hidden_by_kubelet(entry.name):
                continue
            path = clean_path(entry.path)
            child = os.path.join(rel, entry.name) if rel else entry.name
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:
                if strip_suffix(entry.name) is not None:
                    raise ConfigError(f"{path}: template not found (dangling symlink)") from None
                continue
            except OSError as exc:
                if exc.errno == 40:  # ELOOP: a symlink pointing at itself
                    raise ConfigError(f"{path}: symlink loop in the template directory") from None
                raise ConfigError(f"{path}: cannot read template: {exc.strerror}") from None
            if stat.S_ISDIR(mode) and strip_suffix(entry.name) is None:
                visit(path, child)
            elif strip_suffix(entry.name) is not None:
                _require_regular(path, mode)
                found.append(child)
        seen.discard(key)

    visit(root, "")
    return found


def _require_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    raise ConfigError(f"{path}: template is {kind}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_inside(dest: str, rel_dest: str, output_dir: str, output_root: str) -> None:
    """Resolve the deepest existing ancestor (and dest itself) and require it inside output_dir."""
    if ".." in rel_dest.split("/"):
        raise OutputError(f"{dest}: destination outside the output directory {output_dir}")
    probe = dest
    while not os.path.exists(probe) and not os.path.islink(probe) and probe != output_dir:
        probe = _parent(probe)
    if not _inside(os.path.realpath(probe), output_root):
        raise OutputError(f"{dest}: destination leads outside the output directory {output_dir} "
                          f"(through a symlink)")
    if os.path.isdir(dest):
        raise OutputError(f"{dest}: destination is a directory")


def _check_file_destination(dest: str) -> None:
    parent = _parent(dest)
    if not os.path.isdir(parent):
        raise OutputError(f"{dest}: destination directory {parent} does not exist")
    if os.path.isdir(dest):
        raise OutputError(f"{dest}: destination is a directory")


def plan_templates(
    explicit: Iterable[str],
    syntax: str,
    *,
    directory: tuple[StrPath, StrPath | None] | None = None,
    env_files: Iterable[str] = (),
    marathon_app: str | None = None,
) -> list[TemplateSpec]:
    """The set one render works on, as ``render`` and ``run`` both build it.

    ``explicit`` ``SRC[:DEST]`` arguments, then, with ``directory`` = (templates dir, output dir),
    that directory's templates mirrored into the output directory (a missing templates dir is
    nothing to do).  The whole set is refused if a destination conflicts with another or with an
    input — a template, an env file, the Marathon app file (:func:`refuse_conflicting_destinations`).
    """
    specs = [spec for arg in explicit for spec in plan_argument(arg, syntax)]
    if directory is not None:
        specs.extend(plan_directory(*directory, syntax, missing_ok=True))
    inputs = {path: "the env file" for path in env_files}
    if marathon_app is not None:
        inputs[marathon_app] = "the Marathon app definition"
    refuse_conflicting_destinations(specs, inputs)
    return specs


def refuse_conflicting_destinations(specs: list[TemplateSpec], inputs: dict[str, str] | None = None) -> None:
    """Destinations that cannot be written without losing something, refused before anything is.

    Two templates writing one file would make the result depend on their order.  A destination
    that is the directory entry of something the render reads — a template of the set (its own or
    another's), or one of ``inputs`` (path -> what it is: "the env file") — would be replaced by a
    rendering: the input lost, and under ``--watch`` that write is a change of an input, rendered
    again, forever.  Also through a symlinked directory.  (A DEST that is a symlink or a hard link
    *to* an input is fine: the atomic rename replaces the link, never the file behind it.)
    """
    others = {_entry(path): f"{what} {path}" for path, what in (inputs or {}).items()}
    templates = {_entry(spec.src): spec.src for spec in specs}
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.dest is None:
            continue
        key = os.path.abspath(spec.dest)
        if key in seen:
            raise OutputError(f"{spec.dest}: destination of both {seen[key]} and {spec.src}")
        seen[key] = spec.src
        template = templates.get(_entry(spec.dest))
        if template == spec.src:
            raise OutputError(f"{spec.dest}: destination is the template {spec.src} itself; rendering would "
                              "replace it (give it another DEST)")
        if template is not None:
            raise OutputError(f"{spec.dest}: destination is the template {template}, which rendering "
                              f"{spec.src} would replace (give it another DEST)")
        other = others.get(_entry(spec.dest))
        if other is not None:
            raise OutputError(f"{spec.dest}: destination is {other}, which rendering {spec.src} would "
                              "replace (give it another DEST)")


def _entry(path: str) -> str:
    """The directory entry ``path`` names: its directory resolved, its last component as it is."""
    absolute = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))


def rendered_files(outputs: list[tuple[TemplateSpec, bytes, int]]) -> list[RenderedFile]:
    """What the writer installs: every rendered template that has a destination."""
    from entrypoint.render.writer import RenderedFile  # `check` never writes: it does not load the writer

    return [RenderedFile(dest=spec.dest, data=data, mode=mode, create_dirs_under=spec.create_dirs_under)
            for spec, data, mode in outputs if spec.dest is not None]
