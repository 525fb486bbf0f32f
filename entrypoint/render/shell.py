"""The ``shell`` template syntax: GNU envsubst plus POSIX parameter expansion.

GNU envsubst's grammar is kept for everything it recognises (``$NAME``,
``${NAME}``) and everything it leaves literal stays literal, so envsubst
templates render the same.  On top of that come the eight POSIX operators
(``-  :-  =  :=  +  :+  ?  :?``) with their word expanded lazily as bash
does, and ``$$`` as the escape for a literal ``$``.  The guiding rule: any
text bash would read as one of those eight expansions either means exactly
what bash means or is an error, never silently something else.  See
``docs/shell-syntax.md``.

Both the parser and the evaluator use explicit stacks, never Python
recursion, so nesting depth is bounded by memory only.
"""

from __future__ import annotations

from entrypoint.errors import TemplateError, TemplateErrors
from entrypoint.render.model import EVERYTHING, Selection, VariableUse

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Mapping

# Neither :mod:`re` nor :mod:`dataclasses` on the common path: ``render`` of a
# small template and ``run``'s render fork import this module, and those two
# would cost more than the render.  Names are scanned by hand (``str.find``
# does the searching in C); only the rare malformed ``${...`` needs a regex.
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_TWO_CHAR_OPS = (":-", ":=", ":+", ":?")
_ONE_CHAR_OPS = "-=+?"
# Things bash reads as one of the eight operators applied to a parameter we
# do not support (positional/special parameters, indirection, arrays, length).
# ``${#-}`` / ``${#?}`` are bash's length of ``$-`` / ``$?``, not an operator.
_UNSUPPORTED_WITH_OP = (
    r"(?!#[-?]\})[!#]?(?:[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]\n]{0,256}\])?|[0-9]+|[@*#?$!-]):?[-=+?]"
)
_unsupported_re: re.Pattern[str] | None = None
# After ``$`` inside a word, bash would expand these (positional/special
# parameters, command substitution, arithmetic); we refuse rather than differ.
_WORD_SPECIALS = frozenset("0123456789@*#?-!([")

MSG_UNTERMINATED = "unterminated ${"
_DIGIT_CHARS = frozenset("0123456789")
_PREFIX_STOPS = "#%^,~:=?+/@-"  # where bash stops reading the name after ${!
_SPECIAL_PARAMETERS = "@*#?-$!"
_TRANSFORMS = frozenset("QEPAKaUuLk")  # ${X@Q} and friends
_OPERATOR_STARTS = "-=+?#%/^,"  # after a parameter: the eight, pattern removal, replacement, case
# ``list_variables`` shows each word; nested words contain each other, so
# copying them whole would be quadratic in the nesting depth (10,000 levels
# of ``${A:-${B:-...}}`` took gigabytes).  Longer words are cut and end in "...".
MAX_DEFAULT_SHOWN = 200


def _name_end(text: str, k: int) -> int:
    """End of the shell name starting at ``k`` (ASCII ``[A-Za-z_][A-Za-z0-9_]*``), or ``k`` if none."""
    n = len(text)
    if k >= n or text[k] not in _NAME_START:
        return k
    e = k + 1
    while e < n and text[e] in _NAME_CHARS:
        e += 1
    return e


def _unsupported_end(text: str, k: int) -> int | None:
    """Where a bash-only ``${...OP`` form starting at ``k`` ends, or None (rare: compiles a regex)."""
    global _unsupported_re
    if _unsupported_re is None:
        import re

        _unsupported_re = re.compile(_UNSUPPORTED_WITH_OP)
    m = _unsupported_re.match(text, k)
    return None if m is None else m.end()


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Ref:
    """``$NAME`` or ``${NAME}``; the span lets an unselected one be copied verbatim."""

    __slots__ = ("braced", "end", "name", "start")

    def __init__(self, name: str, braced: bool, start: int, end: int) -> None:
        self.name = name
        self.braced = braced
        self.start = start
        self.end = end


class _Expansion:
    """``${NAME OP word}``; ``valid`` is False for a consumed-but-rejected form."""

    __slots__ = ("end", "name", "op", "start", "valid", "word", "word_end", "word_start")

    def __init__(self, name: str, op: str, start: int, word_start: int, valid: bool = True) -> None:
        self.name = name
        self.op = op
        self.start = start
        self.word_start = word_start
        self.valid = valid
        self.word: list[_Node] = []
        self.word_end = -1
        self.end = -1


_Node = _Text | _Ref | _Expansion


class _Problem:
    """An error before line/column are known (computed only if there are errors)."""

    __slots__ = ("message", "pos", "variable")

    def __init__(self, pos: int, message: str, variable: str | None = None) -> None:
        self.pos = pos
        self.message = message
        self.variable = variable


class _Parsed:
    __slots__ = ("nodes", "problems", "uses")

    def __init__(self, nodes: list[_Node], uses: list[_Ref | _Expansion], problems: list[_Problem]) -> None:
        self.nodes = nodes
        self.uses = uses
        self.problems = problems


def _newlines(text: str) -> list[int]:
    found: list[int] = []
    i = text.find("\n")
    while i >= 0:
        found.append(i)
        i = text.find("\n", i + 1)
    return found


def _operator_at(text: str, i: int) -> str | None:
    two = text[i : i + 2]
    if two in _TWO_CHAR_OPS:
        return two
    one = text[i : i + 1]
    return one if one and one in _ONE_CHAR_OPS else None


def _first_line(fragment: str) -> str:
    """A quoted source fragment stops before any line break, so each problem stays one line."""
    for index, char in enumerate(fragment):
        if not char.isprintable():
            return fragment[:index]
    return fragment


def _flattened(message: str) -> str:
    """A ``${X:?msg}`` message may span lines in the template; the report is one line."""
    return "".join(char if char.isprintable() else " " for char in message)


def _word_special_message(ch: str) -> str:
    if ch == "(":
        what = "command substitution $(...)"
    elif ch == "[":
        what = "arithmetic expansion $[...]"
    elif ch.isdigit():
        what = f"positional parameter ${ch}"
    else:
        what = f"special parameter ${ch}"
    return f"{what} is not supported in a word (use a variable)"


class _Parser:
    """Single left-to-right pass; ``stack`` holds the open ``${NAME OP`` words."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root: list[_Node] = []
        self.stack: list[_Expansion] = []
        self.uses: list[_Ref | _Expansion] = []
        self.problems: list[_Problem] = []
        self.find = _Finder(text)
        # next index of each word-stop character at or after the last search (-1: none left)
        self._next: dict[str, int] = {"$": -2, "}": -2, "`": -2}

    def _word_stop(self, i: int) -> int:
        """First ``$``, ``}`` or backquote at or after ``i``; each found once, so the scan stays linear."""
        best = -1
        text, nxt = self.text, self._next
        for ch in "$}`":
            at = nxt[ch]
            if at != -1 and at < i:
                at = nxt[ch] = text.find(ch, i)
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best

    @property
    def out(self) -> list[_Node]:
        return self.stack[-1].word if self.stack else self.root

    def parse(self) -> _Parsed:
        text, i = self.text, 0
        while True:
            j = self._word_stop(i) if self.stack else text.find("$", i)
            if j < 0:
                self._finish(i)
                return _Parsed(self.root, self.uses, self.problems)
            if j > i:
                self.out.append(_Text(text[i:j]))
            ch = text[j]
            if ch == "}":
                i = self._close(j)
            elif ch == "`":
                i = self._backquote(j)
            else:
                i = self._dollar(j)

    def _backquote(self, j: int) -> int:
        """Report `...` once (at the opening backquote) and skip to its closing one."""
        self.problems.append(_Problem(j, "command substitution `...` is not supported in a word"))
        close = self.text.find("`", j + 1)
        end = len(self.text) if close < 0 else close + 1
        # The closing backquote may lie beyond this word; only skip within it.
        if self.text.find("}", j + 1, end) >= 0:
            end = j + 1
        self.out.append(_Text(self.text[j:end]))
        return end

    def _finish(self, i: int) -> None:
        if i < len(self.text):
            self.out.append(_Text(self.text[i:]))
        if self.stack:
            self.problems.append(_Problem(self.stack[0].start, MSG_UNTERMINATED, self.stack[0].name or None))
            self.stack.clear()

    def _close(self, j: int) -> int:
        exp = self.stack.pop()
        exp.word_end, exp.end = j, j + 1
        if exp.valid:
            self.out.append(exp)
        return j + 1

    def _dollar(self, j: int) -> int:
        text = self.text
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            self.out.append(_Text("$"))
            return j + 2
        if nxt == "{":
            return self._brace(j)
        e = _name_end(text, j + 1)
        if e > j + 1:
            ref = _Ref(text[j + 1 : e], False, j, e)
            self.out.append(ref)
            self.uses.append(ref)
            return e
        if self.stack and nxt and nxt in _WORD_SPECIALS:
            self.problems.append(_Problem(j, _word_special_message(nxt)))
        self.out.append(_Text("$"))
        return j + 1

    def _brace(self, j: int) -> int:
        text, k = self.text, j + 2
        e = _name_end(text, k)
        name = text[k:e] if e > k else None
        if e >= len(text) and not self.stack:
            # `${` or `${NAME` cut off by the end of the file: GNU copies it,
            # but here it is almost always a truncated template, so say so.
            self.problems.append(_Problem(j, MSG_UNTERMINATED, name))
            self.out.append(_Text(text[j:]))
            return len(text)
        if name is not None:
            if text.startswith("}", e):
                ref = _Ref(name, True, j, e + 1)
                self.out.append(ref)
                self.uses.append(ref)
                return e + 1
            op = _operator_at(text, e)
            if op is not None:
                exp = _Expansion(name, op, j, e + len(op))
                self.uses.append(exp)
                self.stack.append(exp)
                return exp.word_start
        bad = _unsupported_end(text, k)
        if bad is not None or self.stack:
            shown = bad if bad is not None else (e + 1 if name is not None else k + 1)
            what = _first_line(text[j:shown])
            where = "" if bad is not None else " in a word"
            self.problems.append(_Problem(j, f"unsupported parameter expansion{where}: {what}..."))
            # Consume up to the matching '}' so nesting stays in step with bash.
            self.stack.append(_Expansion("", "", j, bad if bad is not None else k, valid=False))
            return self.stack[-1].word_start
        rejected = _bash_rejects_at(text, k, self.find)
        if rejected is not None:
            # bash says "bad substitution": never copy what bash refuses (``${PORT`` then a newline).
            message = _bad_substitution(text, j, rejected, self.find)
            self.problems.append(_Problem(j, message, name))
        self.out.append(_Text("$"))  # GNU: not a reference, copied; rescan from '{'
        return j + 1


class _Finder:
    """``text.find(char, start)`` remembering each answer (the scan moves forward), so it stays linear.

    Without it ``${a[`` repeated 100,000 times would search the rest of the
    text once per occurrence: quadratic.
    """

    __slots__ = ("cache", "closed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.cache: dict[str, tuple[int, int]] = {}  # char -> (searched from, found at or -1)
        self.closed: set[int] | None = None  # positions of the ``${`` that are closed

    def closes(self, j: int) -> bool:
        """Whether the ``${`` at ``j`` has its own ``}`` (nested ``${...}`` counted, as bash counts)."""
        if self.closed is None:
            self.closed = _closed_braces(self.text)
        return j in self.closed

    def __call__(self, char: str, start: int) -> int:
        cached = self.cache.get(char)
        if cached is not None:
            since, found = cached
            if since <= start and (found < 0 or start <= found):
                return found
        found = self.text.find(char, start)
        self.cache[char] = (start, found)
        return found

    def first_of(self, chars: str, start: int) -> int:
        """The first of ``chars`` at or after ``start`` (-1: none); each character's search is remembered."""
        best = -1
        for char in chars:
            at = self(char, start)
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best


def _closed_braces(text: str) -> set[int]:
    """Positions of every ``${`` that has its own ``}``, matched the way bash matches them.

    Outside any ``${`` our ``$$`` escape is one token (``$${`` opens
    nothing); inside one, bash reads ``$${`` as ``$`` + a nested ``${``.
    """
    closed: set[int] = set()
    opened: list[int] = []
    i, dollar, brace = 0, -2, -2  # next '$' and '}' at or after the last search (-1: none left)
    while True:
        if dollar != -1 and dollar < i:
            dollar = text.find("$", i)
        if brace != -1 and brace < i:
            brace = text.find("}", i)
        if dollar < 0 and brace < 0:
            return closed
        i = brace if dollar < 0 or 0 <= brace < dollar else dollar
        if text[i] == "}":
            if opened:
                closed.add(opened.pop())
            i += 1
        elif text.startswith("{", i + 1):
            opened.append(i)
            i += 2
        else:
            i += 2 if not opened and text.startswith("$", i + 1) else 1


def _digits_end(text: str, i: int) -> int:
    """End of the run of ASCII digits starting at ``i`` (``i`` if none)."""
    n = len(text)
    while i < n and text[i] in _DIGIT_CHARS:
        i += 1
    return i


def _parameter_end(text: str, i: int) -> int | None:
    """End of a bash parameter starting at ``i`` (NAME, digits or one special character), else None."""
    end = _name_end(text, i)
    if end == i:
        end = _digits_end(text, i)
    if end > i:
        return end
    if text[i : i + 1] and text[i] in _SPECIAL_PARAMETERS:
        return i + 1
    return None


def _is_name_at(text: str, i: int) -> bool:
    return i < len(text) and text[i] in _NAME_START


def _subscript_end(i: int, find: _Finder) -> int | None:
    """After ``NAME[``...``]``; None when the ``]`` is missing before the closing brace."""
    close = find("]", i)
    brace = find("}", i)
    return None if close < 0 or (0 <= brace < close) else close + 1


def _after_parameter_rejected_at(text: str, j: int, p: int, find: _Finder) -> int | None:
    """What may follow a parameter inside ``${``: ``}``, an operator, ``:offset``, ``@Q``..."""
    c = text[p : p + 1]
    if c == "}":
        return None
    if c == ":":
        nxt = text[p + 1 : p + 2]
        if nxt in ("", "}"):
            return p + 1  # ${A:} is a bad substitution
        return None if find.closes(j) else len(text)
    if c in ("^", ",") and text[p - 1 : p] in ("?", "-", "#"):
        return p  # bash reads ``?^`` as one (invalid) name: ${?^} ${-,} ${#^x}
    if c and c in _OPERATOR_STARTS:
        return None if find.closes(j) else len(text)
    if c == "@":
        if text[p + 1 : p + 2] in _TRANSFORMS and text[p + 2 : p + 3] == "}":
            return None
        return p + 1
    return p  # any other character (a newline, a blank, '!', '.', ...) cannot follow the parameter


def _bash_rejects_at(text: str, k: int, find: _Finder) -> int | None:
    """Where bash would stop reading the ``${`` before ``k`` with "bad substitution"; None if it accepts it.

    bash accepts ``${PARAM}`` and ``${PARAM<operator>...}`` for every
    operator it knows, plus the length ``${#PARAM}`` and the indirection
    ``${!PARAM}`` forms with their own quirks (bash 5.2, checked against
    bash by tests/test_shell_bash_differential.py); anything else is refused,
    which ``len(text)`` means when the closing brace is missing altogether.
    Scanned with string methods, not :mod:`re` (see the top of this module).
    """
    first = text[k : k + 1]
    if first == "#":
        return _length_rejected_at(text, k, find)
    if first == "!":
        return _indirection_rejected_at(text, k, find)
    return _parameter_rejected_at(text, k - 2, k, find)


def _parameter_rejected_at(
    text: str, j: int, i: int, find: _Finder, *, operator_after: bool = True
) -> int | None:
    """PARAM (with ``[subscript]`` for a name) at ``i``, then ``}`` or an operator (``${`` at ``j``)."""
    end = _parameter_end(text, i)
    if end is None:
        return i
    if _is_name_at(text, i) and text[end : end + 1] == "[":
        sub = _subscript_end(end, find)
        if sub is None:
            return end
        end = sub
    if not operator_after:
        return None if text[end : end + 1] == "}" else end
    return _after_parameter_rejected_at(text, j, end, find)


def _length_rejected_at(text: str, k: int, find: _Finder) -> int | None:
    """``${#}``, ``${#PARAM}``, or ``$#`` with an operator (``${#:-x}``; not ``${#^x}``, ``${#%}``)."""
    if text[k + 1 : k + 2] == "}":
        return None
    as_length = _parameter_rejected_at(text, k - 2, k + 1, find, operator_after=False)
    if as_length is None:
        return None
    op, after = text[k + 1 : k + 2], text[k + 2 : k + 3]
    if op and op in "-?=+/:#%":
        if after in ("", "}"):
            return k + 2
        return None if find.closes(k - 2) else len(text)
    if op == "@" and after in _TRANSFORMS and text[k + 3 : k + 4] == "}":
        return None
    return as_length


def _indirection_rejected_at(text: str, k: int, find: _Finder) -> int | None:
    """``${!}``, ``${!#}``, ``${!NAME}``, ``${!NAME*}``, ``${!1:x}``, ``$!`` with an operator (``${!-x}``)."""
    nxt = text[k + 1 : k + 2]
    if nxt == "}" or (nxt and nxt in "#?@*" and text[k + 2 : k + 3] == "}"):
        return None
    if nxt and nxt in "-=+:%/^,":
        return _after_parameter_rejected_at(text, k - 2, k + 1, find)
    named = _is_name_at(text, k + 1)
    if named:
        close = find("}", k)
        if close > k + 1 and text[close - 1] in "@*":
            stop = find.first_of(_PREFIX_STOPS, k + 1)
            if stop < 0 or stop >= close - 1:
                return None  # ${!prefix@}: names starting with the prefix (bash checks no more than this)
    if nxt == "@" and text[k + 2 : k + 3] == "@":
        return None if find.closes(k - 2) else len(text)  # ${!@@...}: bash takes it
    if nxt and nxt in "#?@*":  # indirection through $# $? $@ $*, then an operator
        if nxt != "*" and text[k + 2 : k + 3] in ("^", ","):
            return k + 2
        if nxt != "@" and text[k + 2 : k + 3] == "@" and text[k + 3 : k + 4] != "}":
            return None if find.closes(k - 2) else len(text)  # ${!*@Q}: checked by bash only when set
        return _after_parameter_rejected_at(text, k - 2, k + 2, find)
    end = _parameter_end(text, k + 1)
    if end is None or not (named or nxt in _DIGIT_CHARS):
        return k + 1 if end is None else end
    if text[end : end + 1] in ("*", "@") and text[end + 1 : end + 2] == "}":
        return None if named else end  # ${!X*} lists names; ${!1*} is nothing
    if text[end : end + 1] == "@":
        # ${!X@Q}: a transformation of X's target, which bash checks only when it runs
        return None if find.closes(k - 2) else len(text)
    return _parameter_rejected_at(text, k - 2, k + 1, find)


def _bad_substitution(text: str, j: int, bad: int, find: _Finder) -> str:
    """One line: the offending ``${...``, what is wrong with it, and how to write a literal ``${``."""
    literal = "(write $${ for a literal ${)"
    if bad >= len(text):
        return f"{MSG_UNTERMINATED}: no closing }} {literal}"
    if text[bad] in "\r\n":
        return f"{MSG_UNTERMINATED}{text[j + 2 : bad]}: the line ends before its }} {literal}"
    close = find("}", bad)
    end = close + 1 if 0 <= close - j <= 60 else min(bad + 1, j + 60)
    shown = _first_line(text[j:end]) + ("" if end == close + 1 else "...")
    if bad == j + 2:
        why = "a name must follow ${"
    else:
        char = text[bad]
        what = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
        why = f"{what} cannot follow {_first_line(text[j:bad])}"
    return f"bad substitution {shown}: {why} {literal}"


class _EvalFrame:
    __slots__ = ("index", "nodes", "parts", "pending")

    def __init__(self, nodes: list[_Node], pending: _Expansion | None) -> None:
        self.nodes = nodes
        self.pending = pending
        self.index = 0
        self.parts: list[str] = []


class _Evaluator:
    """Expands the parse tree with an explicit stack; words only when needed (bash's laziness)."""

    def __init__(self, text: str, env: Mapping[str, str], strict: bool, selection: Selection) -> None:
        self.text = text
        self.env = env
        self.strict = strict
        self.selection = selection
        self.overlay: dict[str, str] = {}
        self.problems: list[_Problem] = []

    def lookup(self, name: str) -> str | None:
        value = self.overlay.get(name)
        return value if value is not None else self.env.get(name)

    def run(self, nodes: list[_Node]) -> str:
        stack = [_EvalFrame(nodes, None)]
        while True:
            frame = stack[-1]
            if frame.index == len(frame.nodes):
                result = "".join(frame.parts)
                stack.pop()
                if frame.pending is None:
                    return result
                stack[-1].parts.append(self._complete(frame.pending, result))
                continue
            node = frame.nodes[frame.index]
            frame.index += 1
            if isinstance(node, _Text):
                frame.parts.append(node.text)
            elif isinstance(node, _Ref):
                frame.parts.append(self._ref(node))
            else:
                immediate = self._start(node)
                if immediate is None:
                    stack.append(_EvalFrame(node.word, node))
                else:
                    frame.parts.append(immediate)

    def _ref(self, ref: _Ref) -> str:
        if not self.selection.selects(ref.name, braced=ref.braced):
            return self.text[ref.start : ref.end]
        value = self.lookup(ref.name)
        if value is None:
            if self.strict:
                self.problems.append(_Problem(ref.start, f"{ref.name}: not set", ref.name))
            return ""
        return value

    def _start(self, exp: _Expansion) -> str | None:
        """The result if the word is not needed, else None (the word gets expanded)."""
        if not self.selection.selects(exp.name, braced=True):
            return self.text[exp.start : exp.end]
        value = self.lookup(exp.name)
        colon = exp.op.startswith(":")
        missing = value is None or (colon and value == "")
        if exp.op in ("+", ":+"):
            return "" if missing else None
        if missing:
            return None
        assert value is not None
        return value

    def _complete(self, exp: _Expansion, word: str) -> str:
        if exp.op in ("=", ":="):
            self.overlay[exp.name] = word
        elif exp.op in ("?", ":?"):
            default = "parameter null or not set" if exp.op == ":?" else "parameter not set"
            self.problems.append(_Problem(exp.start, f"{exp.name}: {_flattened(word) or default}", exp.name))
            return ""
        return word


def _errors(text: str, filename: str, problems: list[_Problem]) -> TemplateErrors:
    newlines = _newlines(text)
    errors = []
    for p in sorted(problems, key=lambda p: p.pos):
        line, column = _line_col(newlines, p.pos)
        errors.append(
            TemplateError(p.message, filename=filename, line=line, column=column, variable=p.variable)
        )
    return TemplateErrors(errors)


def _line_col(newlines: list[int], pos: int) -> tuple[int, int]:
    import bisect  # error and listing paths only

    before = bisect.bisect_left(newlines, pos)
    line_start = newlines[before - 1] + 1 if before else 0
    return before + 1, pos - line_start + 1


def render_shell(
    text: str,
    env: Mapping[str, str],
    *,
    filename: str = "<template>",
    strict: bool = False,
    selection: Selection = EVERYTHING,
    assignments: dict[str, str] | None = None,
) -> str:
    """Render ``text``; every problem in the file is reported together in one TemplateErrors.

    ``assignments`` collects what ``${X:=w}`` assigns, and is read first: passing one dict to
    several calls makes them one command line (``--expand-args``: ``${X:=v} $X`` is ``v v``).
    """
    parsed = _Parser(text).parse()
    evaluator = _Evaluator(text, env, strict, selection)
    if assignments is not None:
        evaluator.overlay = assignments
    result = evaluator.run(parsed.nodes)
    problems = parsed.problems + evaluator.problems
    if problems:
        raise _errors(text, filename, problems)
    return result


def list_variables(text: str, *, filename: str = "<template>") -> list[VariableUse]:
    """Every reference in source order, nested ones inside words included.

    Raises TemplateErrors for syntax errors (the same ones ``render_shell`` reports).
    """
    parsed = _Parser(text).parse()
    if parsed.problems:
        raise _errors(text, filename, parsed.problems)
    newlines = _newlines(text)
    uses = []
    for use in parsed.uses:
        line, column = _line_col(newlines, use.start)
        if isinstance(use, _Ref):
            uses.append(VariableUse(use.name, line, column))
        else:
            word = text[use.word_start : min(use.word_end, use.word_start + MAX_DEFAULT_SHOWN)]
            if use.word_end - use.word_start > MAX_DEFAULT_SHOWN:
                word += "..."
            uses.append(VariableUse(use.name, line, column, default=word, operator=use.op))
    return uses
