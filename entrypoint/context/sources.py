"""Where variables come from, merged in the documented order.

Later sources win: process environment (unless ``clean_env``) < env files <
Marathon synthesis < ``--set``; the app definition's own ``env`` overrides the
variables Marathon generates (Marathon does the same).  After merging, the
``NAME_FILE`` convention (Docker/Kubernetes secrets) fills ``NAME`` from the
file ``NAME_FILE`` points to, unless ``NAME`` is set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint.errors import ContextError

FILE_SUFFIX = "_FILE"
MAX_SECRET_BYTES = 1 << 20


@dataclass
class MarathonOptions:
    """What `--marathon-app` and its companion flags say (see cli.md)."""

    app_path: Path
    host: str = "localhost"
    task_id: str | None = None
    ports: list[int | None] | None = None
    version: str = "1.10"
    enforce_role: bool = False
    env_vars_prefix: str | None = None


@dataclass
class ContextOptions:
    clean_env: bool = False
    env_files: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    marathon: MarathonOptions | None = None
    resolve_files: bool = True


def parse_dotenv(path: Path) -> dict[str, str]:
    """Parse a dotenv file: ``NAME=value``, optional ``export``, quotes, comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContextError("env file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextError(f"cannot read env file: {exc}", source=str(path)) from None
    result: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _is_name(name):
            raise ContextError(f"line {lineno}: expected NAME=VALUE", source=str(path))
        result[name] = _unquote(value.strip(), path, lineno)
    return result


def _unquote(value: str, path: Path, lineno: int) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = (
                inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            )
        return inner
    if value[:1] in ("'", '"'):
        raise ContextError(f"line {lineno}: unterminated quote", source=str(path))
    # an unquoted value ends at an inline comment introduced by " #"
    hash_at = value.find(" #")
    return value[:hash_at].rstrip() if hash_at >= 0 else value


def _is_name(name: str) -> bool:
    return bool(name) and not name[0].isdigit() and all(c.isalnum() or c == "_" for c in name) and name.isascii()


def parse_set(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not _is_name(name):
        raise ContextError(f"--set expects NAME=VALUE, got {item!r}")
    return name, value


def resolve_file_variables(env: Mapping[str, str]) -> dict[str, str]:
    """Apply the ``NAME_FILE`` convention: NAME gets the file's content.

    An explicitly set NAME wins over NAME_FILE.  One trailing newline is
    stripped (secret files are usually written with one).  The value itself
    is never logged.
    """
    result = dict(env)
    for key, path in env.items():
        if not key.endswith(FILE_SUFFIX) or len(key) == len(FILE_SUFFIX):
            continue
        name = key[: -len(FILE_SUFFIX)]
        if name in env or not path:
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise ContextError(
                f"{key} points to {path!r}, which cannot be read: {exc.strerror}", variable=key
            ) from None
        if len(data) > MAX_SECRET_BYTES:
            raise ContextError(f"{key}: file {path!r} is larger than 1 MiB", variable=key)
        text = data.decode("utf-8", "surrogateescape")
        result[name] = text[:-1] if text.endswith("\n") else text
    return result


def build_environment(options: ContextOptions) -> dict[str, str]:
    """Merge every source into one mapping of names to string values."""
    env: dict[str, str] = {} if options.clean_env else dict(os.environ)
    for path in options.env_files:
        env.update(parse_dotenv(path))
    if options.marathon is not None:
        from entrypoint.context.marathon import environment_for_options

        env.update(environment_for_options(options.marathon))
    for item in options.sets:
        name, value = parse_set(item)
        env[name] = value
    if options.resolve_files:
        env = resolve_file_variables(env)
    return env
