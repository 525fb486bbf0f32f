"""Allow ``python -m entrypoint``."""

from entrypoint.cli import console

console()
