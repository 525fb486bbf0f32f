"""Service directories for the ``--services-dir`` runtime tests, and reading what they left.

Each service writes what happens to it into one shared event log (one line per
event, appended with O_APPEND so lines from several processes never mix):
the tests read the order of events from there instead of timing anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.pid1_helpers import read_lines, wait_until

PY = sys.executable


def service(root: Path, name: str, run: str, **files: str | None) -> Path:
    """DIR/NAME with an executable ``run`` (a /bin/sh script body) and more files:
    ``finish=`` (a script body, made executable), ``dependencies=``, ``notification_fd=``,
    ``ready=``, ``timeout_up=``, ``restart=``, ``down_signal=``, ``user=`` (file contents) and
    ``essential=""`` (an empty file)."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "run").write_text("#!/bin/sh\n" + run)
    (directory / "run").chmod(0o755)
    for key, text in files.items():
        if text is None:
            continue
        path = directory / key.replace("_", "-")
        if key == "finish":
            path.write_text("#!/bin/sh\n" + text)
            path.chmod(0o755)
        else:
            path.write_text(text)
    return directory


def events(log: Path) -> list[str]:
    return read_lines(log)


def wait_event(log: Path, line: str, timeout: float = 15) -> list[str]:
    return wait_until(lambda: line in events(log) and events(log), timeout, f"{line!r} in the event log")


def state(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return document


def service_state(path: Path, name: str) -> dict[str, Any]:
    for entry in state(path).get("services", []):
        if entry["name"] == name:
            found: dict[str, Any] = entry
            return found
    return {}


def wait_service(path: Path, name: str, wanted: str, timeout: float = 15) -> dict[str, Any]:
    """Poll the state file until service NAME is in state ``wanted``; its entry."""
    found: dict[str, Any] = wait_until(lambda: service_state(path, name).get("state") == wanted
                                       and service_state(path, name), timeout, f"{name} {wanted}")
    return found
