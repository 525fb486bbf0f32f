"""Where variables come from, merged in the documented order.

Later sources win: process environment (unless ``clean_env``) < env files <
Marathon synthesis < ``--set``; the app definition's own ``env`` overrides the
variables Marathon generates (Marathon does the same).  After merging, the
``NAME_FILE`` convention (Docker/Kubernetes secrets) fills ``NAME`` from the
file ``NAME_FILE`` points to, unless ``NAME`` is set explicitly.
"""

from __future__ import annotations

import os

# The one reader of NAME_FILE secrets lives in secretfile (PID 1 uses it too); re-exported here.
from entrypoint.context.secretfile import FILE_SUFFIX as FILE_SUFFIX
from entrypoint.context.secretfile import MAX_SECRET_BYTES as MAX_SECRET_BYTES
from entrypoint.context.secretfile import read_secret_file as read_secret_file
from entrypoint.errors import ContextError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypeAlias

    from entrypoint.context.choices import ContextOptions

    StrPath: TypeAlias = str | os.PathLike[str]

MAX_ENV_FILE_CHARS = 64 << 20


def parse_dotenv(path: StrPath) -> dict[str, str]:
    """Parse a dotenv file: ``NAME=value``, optional ``export``, quotes, comments."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_ENV_FILE_CHARS + 1)  # bounded: the path may be /dev/zero or a pipe
    except FileNotFoundError:
        raise ContextError("env file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextError(f"cannot read env file: {exc}", source=str(path)) from None
    if len(text) > MAX_ENV_FILE_CHARS:
        raise ContextError(f"env file is larger than {MAX_ENV_FILE_CHARS >> 20} Mi characters",
                           source=str(path))
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


def _unquote(value: str, path: StrPath, lineno: int) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = _unescape_double(inner)
        return inner
    if value[:1] in ("'", '"'):
        raise ContextError(f"line {lineno}: unterminated quote", source=str(path))
    # an unquoted value ends at an inline comment introduced by " #"
    hash_at = value.find(" #")
    return value[:hash_at].rstrip() if hash_at >= 0 else value


_DOUBLE_ESCAPES = {"n": "\n", "r": "\r", '"': '"', "\\": "\\"}


def _unescape_double(inner: str) -> str:
    """One left-to-right pass, so an escaped backslash before ``n`` stays literal."""
    out: list[str] = []
    i = 0
    while i < len(inner):
        char = inner[i]
        if char == "\\" and i + 1 < len(inner) and inner[i + 1] in _DOUBLE_ESCAPES:
            out.append(_DOUBLE_ESCAPES[inner[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _is_name(name: str) -> bool:
    return (
        bool(name) and not name[0].isdigit() and all(c.isalnum() or c == "_" for c in name) and name.isascii()
    )


def parse_set(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not _is_name(name):
        raise ContextError(f"--set expects NAME=VALUE, got {item!r}")
    return name, value


def resolve_file_variables(env: Mapping[str, str]) -> dict[str, str]:
    """Apply the ``NAME_FILE`` convention eagerly to every such variable.

    Only for callers that know every ``*_FILE`` is a secret reference; the
    renderers use :class:`Environment`, which resolves lazily.
    """
    result = dict(env)
    for key, path in env.items():
        name = key[: -len(FILE_SUFFIX)]
        if key.endswith(FILE_SUFFIX) and name and name not in env and path:
            result[name] = read_secret_file(key, path)
    return result


class Environment(dict[str, str]):
    """Variables, with ``NAME`` filled from the file ``NAME_FILE`` points to on first use.

    Lazy on purpose: an inherited environment is full of ``*_FILE`` variables
    that are not secrets (``SSL_CERT_FILE``, ``TF_CLI_CONFIG_FILE``...), and
    reading them all would slurp CA bundles into the context, or fail on a
    path that only matters to another program.  A template that asks for
    ``NAME`` gets the secret, and an unreadable file is then an error naming
    ``NAME_FILE``.  An explicitly set ``NAME`` always wins.  Iteration lists
    only the variables really set, so ``entrypoint env`` never prints a
    secret's content.
    """

    def _secret(self, name: str) -> str | None:
        path = dict.get(self, name + FILE_SUFFIX)
        if not path or not name:
            return None
        value = read_secret_file(name + FILE_SUFFIX, path)
        dict.__setitem__(self, name, value)
        return value

    def __missing__(self, name: str) -> str:
        value = self._secret(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        return isinstance(name, str) and self._secret(name) is not None

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        value = self._secret(name)
        return default if value is None else value


def build_environment(options: ContextOptions) -> dict[str, str]:
    """Merge every source into one mapping of names to string values.

    The result is an :class:`Environment`: ``NAME_FILE`` secrets resolve when
    a template reads ``NAME`` (``resolve_files=False`` turns that off).
    """
    env: dict[str, str] = {} if options.clean_env else dict(os.environ)
    for path in options.env_files:
        env.update(parse_dotenv(path))
    if options.marathon is not None:
        from entrypoint.context.marathon import environment_for_options

        env.update(environment_for_options(options.marathon))
    for item in options.sets:
        name, value = parse_set(item)
        env[name] = value
    return Environment(env) if options.resolve_files else env
