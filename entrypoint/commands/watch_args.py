"""The ``--watch`` options of ``render`` and ``check``, apart from the watcher itself.

Declaring them must not import :mod:`entrypoint.commands.watching` (threads,
queues, dataclasses, pathlib, and watchdog when used): a plain ``render`` of a
shell template pays only for what it uses.  The watcher is imported when
``--watch`` is given.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from entrypoint.commands.lightargs import ArgumentParser


def add_watch_options(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("watch (for template authors; needs entrypoint[watch])")
    group.add_argument("--watch", action="store_true",
                       help="run once, then again after every change to a template, an env file or the "
                            "--marathon-app file; Ctrl-C (or TERM) ends it with exit 0")
    group.add_argument("--watch-quiet", type=float, default=0.2, metavar="SECONDS",
                       help="run again once changes have paused this long (default 0.2)")
    group.add_argument("--watch-max-wait", type=float, default=2.0, metavar="SECONDS",
                       help="... but at most this long after the first change of a burst (default 2)")
