"""Byte-exact GNU envsubst (gettext-runtime 0.21) substitution.

Everything here works on bytes and never decodes: GNU envsubst is a getc/putc
filter, so NUL, invalid UTF-8, CR and a missing final newline must survive
untouched.  The grammar (see templating-anchors.md §1):

* a reference is ``$NAME`` or ``${NAME}``; NAME is an ASCII letter or ``_``
  followed by ASCII letters, digits and ``_``, longest match;
* ``${NAME`` not immediately followed by ``}`` is literal text and scanning
  resumes right after the ``$`` (so ``${X:-$Y}`` still expands ``$Y``);
* any other ``$`` is literal; there is no escape;
* unset and empty both give the empty string; values are never re-scanned.

Speed comes from doing the per-reference work in C: one ``re.split`` yields
the references, each distinct reference text is resolved once in Python, and
``map`` over a dict replaces them all.  Standard library only.
"""

from __future__ import annotations

import re

from entrypoint.render.model import EVERYTHING, Selection

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the envsubst command more start-up than GNU envsubst takes in all
    from collections.abc import Iterable, Mapping
    from typing import BinaryIO

NAME_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")

_NAME = rb"[A-Za-z_][A-Za-z0-9_]*"
# Whole reference as the single capture group: re.split interleaves them with text.
_SPLIT_RE = re.compile(rb"(\$(?:\{" + _NAME + rb"\}|" + _NAME + rb"))")
# Braced name in group 1, bare name in group 2.
_REF_RE = re.compile(rb"\$(?:\{(" + _NAME + rb")\}|(" + _NAME + rb"))")
# What may still grow into a reference once more input arrives.
_TAIL_RE = re.compile(rb"\$\{?(?:" + _NAME + rb")?")
_NAME_CHARS_RE = re.compile(rb"[A-Za-z0-9_]*")

DEFAULT_CHUNK_SIZE = 1 << 16


def collect_names(fmt: bytes) -> list[bytes]:
    """Names of the valid references of a SHELL-FORMAT, in order, duplicates kept."""
    return [m.group(1) or m.group(2) for m in _REF_RE.finditer(fmt)]


def list_references(data: bytes) -> list[tuple[bytes, int, int, bool]]:
    """Every valid reference as (name, line, column, braced); 1-based, byte columns."""
    found: list[tuple[bytes, int, int, bool]] = []
    line, line_start, scanned = 1, 0, 0
    for m in _REF_RE.finditer(data):
        pos = m.start()
        newlines = data.count(b"\n", scanned, pos)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", scanned, pos) + 1
        scanned = pos
        braced = m.group(1) is not None
        found.append((m.group(1) if braced else m.group(2), line, pos - line_start + 1, braced))
    return found


class _Resolver:
    """Maps reference texts (``$X``/``${X}``) to their replacement, memoised.

    A template typically repeats a handful of names many times, so each
    distinct reference is decided once and the bulk work is a C-level map.
    """

    def __init__(self, env: Mapping[bytes, bytes], selection: Selection) -> None:
        self._env = env
        self._selection = selection
        self._table: dict[bytes, bytes] = {}

    def _decide(self, ref: bytes) -> bytes:
        braced = ref[1:2] == b"{"
        name = ref[2:-1] if braced else ref[1:]
        if not self._selection.is_everything and not self._selection.selects(
            name.decode("ascii"), braced=braced
        ):
            return ref
        return self._env.get(name, b"")

    def replace(self, refs: list[bytes]) -> list[bytes]:
        table = self._table
        for ref in set(refs).difference(table):
            table[ref] = self._decide(ref)
        return list(map(table.__getitem__, refs))


def _substitute(data: bytes, resolver: _Resolver) -> bytes:
    parts = _SPLIT_RE.split(data)
    if len(parts) == 1:
        return data
    parts[1::2] = resolver.replace(parts[1::2])
    return b"".join(parts)


def substitute_bytes(data: bytes, env: Mapping[bytes, bytes], selection: Selection = EVERYTHING) -> bytes:
    """Substitute a whole template held in memory (GNU envsubst semantics)."""
    return _substitute(data, _Resolver(env, selection))


def _split_tail(buf: bytes) -> int:
    """Where the trailing, possibly unfinished reference starts (len(buf) if none).

    Only the last ``$`` can begin it: an earlier one would be cut off by that
    ``$``, which is not a name character.
    """
    pos = buf.rfind(b"$")
    if pos >= 0 and _TAIL_RE.fullmatch(buf, pos) is not None:
        return pos
    return len(buf)


def _is_all_name_chars(chunk: bytes) -> bool:
    m = _NAME_CHARS_RE.match(chunk)
    return m is not None and m.end() == len(chunk)


def iter_substituted(
    chunks: Iterable[bytes], env: Mapping[bytes, bytes], selection: Selection = EVERYTHING
) -> Iterable[bytes]:
    """Substitute a stream of chunks, yielding output as soon as it is decided.

    Memory stays bounded by the chunk size, except inside one reference whose
    name keeps going: its outcome (value, or the verbatim ``${NAME`` text when
    no ``}`` follows) depends on every byte of it, so it is held -- GNU does
    the same.  Such a name grows in a bytearray (amortised linear), never by
    re-concatenating the whole carry for every chunk.
    """
    resolver = _Resolver(env, selection)
    carry = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        if len(carry) > 2 and _is_all_name_chars(chunk):
            carry += chunk  # still inside the same name
            continue
        buf = bytes(carry) + chunk if carry else chunk
        cut = _split_tail(buf)
        carry = bytearray(buf[cut:])
        if cut:
            out = _substitute(buf[:cut], resolver)
            if out:
                yield out
    if carry:
        out = _substitute(bytes(carry), resolver)
        if out:
            yield out


def _read_chunks(src: BinaryIO, chunk_size: int) -> Iterable[bytes]:
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            return
        yield chunk


def substitute_stream(
    src: BinaryIO,
    dst: BinaryIO,
    env: Mapping[bytes, bytes],
    selection: Selection = EVERYTHING,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Copy ``src`` to ``dst`` substituting references, in bounded memory."""
    for out in iter_substituted(_read_chunks(src, chunk_size), env, selection):
        dst.write(out)
