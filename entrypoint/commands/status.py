"""``entrypoint status``: is the app up?  For ``docker exec``, health checks and probes.

Exit 0 only while PID 1's phase is ``running`` and the app is alive, 1 in
every other case -- including "this container's PID 1 is not entrypoint",
a missing or garbage state file, and a missing psutil -- so the command can
be a Marathon COMMAND health check or a Kubernetes exec probe as is.
Imports psutil (``entrypoint[status]``), never pydantic or jinja2.
"""

from __future__ import annotations

import argparse
import json

from entrypoint import stdio
from entrypoint.errors import EX_FAILURE, EX_OK, StatusUnavailable
from entrypoint.extras import require
from entrypoint.status.cgroup import read_cgroup
from entrypoint.status.report import as_json, as_text, build_report, unavailable_json
from entrypoint.status.statefile import STATE_FILE_VARIABLE, read_state, state_file_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrypoint status",
        description="Show PID 1's published state, the process tree below it and the cgroup's "
                    "memory and CPU limits. Exit 0 while the app runs, 1 otherwise.")
    parser.add_argument("--state-file", metavar="PATH", default=None,
                        help=f"the state file PID 1 writes (default ${STATE_FILE_VARIABLE}, "
                             "else /run/entrypoint/state.json)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--interval", type=float, default=0.1, metavar="SECONDS",
                        help="CPU %% sampling window (default 0.1; 0 = average since each process started)")
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        state = read_state(state_file_path(ns.state_file))
        psutil = require("psutil", "status")
        report = build_report(state, psutil, read_cgroup(state.runtime_pid), interval=max(ns.interval, 0.0))
    except StatusUnavailable as exc:
        _say(ns.format, str(exc))
        return EX_FAILURE
    if ns.format == "json":
        stdio.write(json.dumps(as_json(report)) + "\n")
    else:
        stdio.write(as_text(report))
    return EX_OK if report.healthy else EX_FAILURE


def _say(fmt: str, message: str) -> None:
    """The one line of an unanswerable status: JSON for tools, text for people."""
    if fmt == "json":
        stdio.write(json.dumps(unavailable_json(message)) + "\n")
    else:
        stdio.write(f"entrypoint status: {message}\n")
