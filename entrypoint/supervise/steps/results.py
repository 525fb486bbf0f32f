"""What a forked start-up step hands back to PID 1: named records in an anonymous memory file.

The render step of ``run`` (and a ``--watch`` re-render) runs in a fork of
PID 1 and reports through a ``memfd``: unlike a pipe it cannot fill up and
block the child while PID 1 waits for signals, and it needs no second
interpreter.  The format is the kernel's own for environments: ``key=value``
entries separated by NUL bytes.  Values are paths, environment entries or
arguments, none of which can contain NUL; a key may repeat (a list).
Parsing it needs neither :mod:`json` nor :mod:`re`, which would otherwise stay
in PID 1 for good.

Keys in use: ``changed`` / ``unchanged`` (destination paths of the render).
A step may add its own (``--expand-args`` and ``--secret`` are meant to add
``arg`` and ``env`` records from the same render fork); readers ignore keys
they do not know.
"""

from __future__ import annotations

import os

from entrypoint.fdio import read_all, write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class StepResult:
    """The records a step sent, in order."""

    __slots__ = ("records",)

    def __init__(self, records: list[tuple[str, str]] | None = None) -> None:
        self.records: list[tuple[str, str]] = records if records is not None else []

    def values(self, key: str) -> list[str]:
        """Every value recorded under ``key``, in order."""
        return [value for name, value in self.records if name == key]

    @property
    def changed(self) -> list[str]:
        """Destinations the render replaced (``--watch`` reloads only when there are any)."""
        return self.values("changed")


def encode(records: Iterable[tuple[str, str]]) -> bytes:
    entries = []
    for key, value in records:
        if "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"record {key!r}: '=' in the key or NUL anywhere cannot be carried")
        entries.append(os.fsencode(key) + b"=" + os.fsencode(value))
    return b"\0".join(entries)


def write_records(fd: int, records: Iterable[tuple[str, str]]) -> None:
    """Append records to ``fd`` (the child side)."""
    data = encode(records)
    write_all(fd, data + b"\0" if data else data)


def read_records(fd: int) -> StepResult:
    """Everything written to ``fd`` (the parent side, after the child exited)."""
    os.lseek(fd, 0, os.SEEK_SET)
    records: list[tuple[str, str]] = []
    for entry in read_all(fd).split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            records.append((os.fsdecode(key), os.fsdecode(value)))
    return StepResult(records)
