"""Optional libraries, each behind the pip extra that installs it (pyproject.toml).

psutil (``entrypoint[status]``) and watchdog (``entrypoint[watch]``) serve
one command each, never PID 1, so images that only run ``entrypoint run``
need neither.  A command that needs a missing one fails with one line naming
the extra instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from entrypoint.errors import MissingExtra

#: import name -> the extra in pyproject.toml that installs it
EXTRAS: dict[str, str] = {"psutil": "status", "watchdog": "watch"}


def require(module: str, command: str) -> ModuleType:
    """Import ``module`` (at the point of use) or raise :class:`MissingExtra` for ``command``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise  # the library is there but broken: that is not a missing extra
        raise MissingExtra(command, top, EXTRAS.get(top, top)) from None
