"""Reading one ``NAME_FILE`` secret: the one definition, for the renderers and for PID 1.

Standard library only (``os``), so ``run --secret`` can use it inside PID 1
without pulling in the rest of the context layer (pathlib, dataclasses).
Error messages name the variable and the path, never the contents.
"""

from __future__ import annotations

import os
import stat

from entrypoint.errors import ContextError

FILE_SUFFIX = "_FILE"
MAX_SECRET_BYTES = 1 << 20


def read_secret_file(key: str, path: str) -> str:
    """The file's contents with one trailing newline removed (as ``$(cat FILE)`` would, once).

    Regular files only (Docker and Kubernetes secrets are; symlinks to them are followed): a FIFO
    or a device would block or never end, and in PID 1 that would hang the start with every
    signal blocked.  Opened non-blocking so that not even the open can wait.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ContextError(f"{key} points to {path!r}, which is not a regular file", variable=key)
            data = fh.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ContextError(
            f"{key} points to {path!r}, which cannot be read: {exc.strerror}", variable=key
        ) from None
    if len(data) > MAX_SECRET_BYTES:
        raise ContextError(f"{key}: file {path!r} is larger than 1 MiB", variable=key)
    text = data.decode("utf-8", "surrogateescape")
    return text[:-1] if text.endswith("\n") else text
