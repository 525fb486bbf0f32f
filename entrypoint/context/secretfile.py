"""Reading one ``NAME_FILE`` secret: the one definition, for the renderers and for PID 1.

Standard library only (``os``), so ``run --secret`` can use it inside PID 1
without pulling in the rest of the context layer (pathlib, dataclasses).
Error messages name the variable and the path, never the contents.
"""

from __future__ import annotations

from entrypoint.errors import ContextError

FILE_SUFFIX = "_FILE"
MAX_SECRET_BYTES = 1 << 20


def read_secret_file(key: str, path: str) -> str:
    """The file's contents with one trailing newline removed (as ``$(cat FILE)`` would, once)."""
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
    return text[:-1] if text.endswith("\n") else text
