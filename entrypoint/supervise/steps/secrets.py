"""``--secret NAME``: the postgres ``file_env`` rule, done once in PID 1 before anything starts.

NAME gets the contents of the file ``NAME_FILE`` names (one trailing
newline removed, by the one reader in :mod:`entrypoint.context.secretfile`),
and ``NAME_FILE`` leaves the app's environment.  Both set is ambiguous and
an error, as in the official images; a ``NAME`` set on its own is kept (a
development run without secret files); neither set is an error, because a
declared secret the app will not get would otherwise surface much later.

Values are never logged and never part of a message: errors name NAME and
the path.  PID 1 does not ``setenv`` them either, so its own
``/proc/1/environ`` keeps showing only ``NAME_FILE``.
"""

from __future__ import annotations

from entrypoint.context.secretfile import FILE_SUFFIX, read_secret_file
from entrypoint.errors import ConfigError, ContextError, UsageError


def _is_name(name: str) -> bool:
    return name.isascii() and (name[:1].isalpha() or name[:1] == "_") and name.replace("_", "a").isalnum()


def read_secrets(names: list[str], environ: dict[str, str]) -> dict[str, str]:
    """NAME -> value for each ``--secret``; exit 78 (naming NAME) on the first bad one."""
    values: dict[str, str] = {}
    for name in names:
        if not _is_name(name):
            raise UsageError(f"--secret: {name!r} is not a variable name")
        file_var = name + FILE_SUFFIX
        if file_var not in environ:
            if name in environ:
                continue
            raise ConfigError(f"--secret {name}: neither {name} nor {file_var} is set")
        if name in environ:
            raise ConfigError(f"--secret {name}: both {name} and {file_var} are set; set only one")
        try:
            values[name] = read_secret_file(file_var, environ[file_var])
        except ContextError as exc:
            raise ConfigError(f"--secret {name}: {exc.message}") from None
    return values


def app_environment(env: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """The app's environment: each NAME set, its NAME_FILE removed."""
    out = {key: value for key, value in env.items()
           if not (key.endswith(FILE_SUFFIX) and key[: -len(FILE_SUFFIX)] in values)}
    out.update(values)
    return out
