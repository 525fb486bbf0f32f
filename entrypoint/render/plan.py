"""What is rendered where: ``--template SRC[:DEST]`` and the templates directory.

Every path question is settled here, before anything is rendered, so that a
bad layout (a destination escaping the output dir through ``..`` or a symlink,
a FIFO posing as a template, a symlink loop) is refused up front and nothing
is written.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import ConfigError, OutputError
from entrypoint.render.model import TEMPLATE_SUFFIXES, Syntax, syntax_for


@dataclass(frozen=True)
class TemplateSpec:
    src: Path
    dest: Path | None  # None: standard output (render) or nowhere (check)
    syntax: Syntax
    create_dirs_under: Path | None = None  # directory mode: mirrored subdirs may be created below this


def split_template_arg(arg: str) -> tuple[Path, Path | None]:
    """``SRC[:DEST]``; the first colon separates (as dockerize does)."""
    src, sep, dest = arg.partition(":")
    if not src:
        raise ConfigError(f"--template {arg!r}: empty source")
    if sep and not dest:
        raise ConfigError(f"--template {arg!r}: empty destination after ':'")
    return Path(src), (Path(dest) if sep else None)


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
    return [TemplateSpec(src=src, dest=dest, syntax=syntax_for(src.name, syntax))]


def plan_directory(
    templates_dir: Path, output_dir: Path | None, syntax: str = "auto", *, missing_ok: bool = False
) -> list[TemplateSpec]:
    """nginx convention: known suffix stripped, subdirectories mirrored into ``output_dir``."""
    if not templates_dir.exists():
        if missing_ok:
            return []
        raise ConfigError(f"{templates_dir}: template directory not found")
    if output_dir is not None:
        if output_dir.exists() and not output_dir.is_dir():
            raise OutputError(f"{output_dir}: output directory is not a directory")
        output_root = output_dir.resolve()  # a missing one is created by the writer, with its parents
    specs: list[TemplateSpec] = []
    for rel in _walk_templates(templates_dir):
        src = templates_dir / rel
        out_name = strip_suffix(rel.name)
        assert out_name is not None
        dest = None
        if output_dir is not None:
            dest = output_dir / rel.parent / out_name
            _check_inside(dest, output_dir, output_root)
        specs.append(TemplateSpec(src=src, dest=dest, syntax=syntax_for(rel.name, syntax),
                                  create_dirs_under=output_dir))
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


def _walk_templates(root: Path) -> list[Path]:
    """Relative paths of template files, following symlinked dirs but refusing loops."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def visit(directory: Path, rel: Path) -> None:
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
            path = Path(entry.path)
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
                visit(path, rel / entry.name)
            elif strip_suffix(entry.name) is not None:
                _require_regular(path, mode)
                found.append(rel / entry.name)
        seen.discard(key)

    visit(root, Path())
    return found


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    raise ConfigError(f"{path}: template is {kind}")


def _check_inside(dest: Path, output_dir: Path, output_root: Path) -> None:
    """Resolve the deepest existing ancestor (and dest itself) and require it inside output_dir."""
    if ".." in dest.relative_to(output_dir).parts:
        raise OutputError(f"{dest}: destination outside the output directory {output_dir}")
    probe = dest
    while not probe.exists() and not probe.is_symlink() and probe != output_dir:
        probe = probe.parent
    resolved = probe.resolve()
    if not resolved.is_relative_to(output_root):
        raise OutputError(f"{dest}: destination leads outside the output directory {output_dir} "
                          f"(through a symlink)")
    if dest.is_dir():
        raise OutputError(f"{dest}: destination is a directory")


def _check_file_destination(dest: Path) -> None:
    parent = dest.parent
    if not parent.is_dir():
        raise OutputError(f"{dest}: destination directory {parent} does not exist")
    if dest.is_dir():
        raise OutputError(f"{dest}: destination is a directory")


def refuse_duplicate_destinations(specs: list[TemplateSpec]) -> None:
    """Two templates writing one file would make the result depend on their order."""
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.dest is None:
            continue
        key = os.path.abspath(spec.dest)
        if key in seen:
            raise OutputError(f"{spec.dest}: destination of both {seen[key]} and {spec.src}")
        seen[key] = spec.src
