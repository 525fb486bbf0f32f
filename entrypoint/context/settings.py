"""Render settings from ``ENTRYPOINT_*`` environment variables, for ``render`` and ``check``.

Images bake their configuration into the environment (``ENV
ENTRYPOINT_TEMPLATES_DIR=...``) so the same ``ENTRYPOINT`` line works
everywhere; command-line flags override these.  There is one definition of
these variables, the option table in :mod:`entrypoint.options`,
which ``run`` (PID 1) parses too: the same names, defaults, list rule
(commas or whitespace; commas only for the path lists) and errors (a bad value is exit 78 naming the
variable), whichever command reads them.  Standard library only, so a shell
template never pays for a settings library.

The default output directory is ``/`` so the templates directory mirrors the
filesystem: ``templates/etc/app/app.conf.template`` becomes ``/etc/app/app.conf``.
"""

from __future__ import annotations

import os

from entrypoint.options import RunOptions, options_from_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "ENTRYPOINT_"

#: The settings are :class:`RunOptions` read from the environment alone.
EntrypointSettings = RunOptions


def load_settings(environ: Mapping[str, str] | None = None) -> RunOptions:
    """Read the settings; a bad value becomes a SettingError (exit 78) naming the variable."""
    return options_from_env(os.environ if environ is None else environ)
