"""Top-level names in Jinja templates: ``{{ FEEDS_CLIENT_ID }}`` as j2cli and dockerize write it.

Templates written for j2cli, dockerize-style tools and many docker images
address environment variables as bare names.  Jinja looks a name up in the
template's own variables, then in the render context (``env``, ``getenv``,
the typed objects), then in its globals (``range``, ``dict``, ``namespace``,
...); only a name found nowhere falls through to the environment, so every
name a template could use before keeps its meaning.  The lookup is the
``env`` mapping's own, so ``NAME`` also reads the secret behind ``NAME_FILE``.

A name that is defined nowhere but is close to a variable gets a
"did you mean" in its message (the case differs, a letter is missing, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.runtime import Context
from jinja2.utils import missing

FILE_SUFFIX = "_FILE"
# What the render context itself defines (render/jinja.py template_context, context/views.py):
# a bare name that is one of these is not a variable.
CONTEXT_NAMES = frozenset({"env", "getenv", "orchestrator", "marathon", "mesos", "nomad", "kubernetes",
                           "jvm_heap"})
MIN_LENGTH = 3  # no guesses for one- or two-letter names


class EnvNamesContext(Context):
    """A Jinja context whose last resort for an unknown name is the ``env`` mapping."""

    def resolve_or_missing(self, key: str) -> Any:
        value = super().resolve_or_missing(key)
        if value is not missing:
            return value
        variables = self.parent.get("env")
        if not isinstance(variables, Mapping):
            return missing
        found = variables.get(key)
        if found is not None:
            return found
        # Undefined with the mapping as its object: reported as "undefined variable NAME",
        # with suggestions taken from the mapping.
        return self.environment.undefined(obj=variables, name=key)


def suggestion(name: str, variables: Mapping[str, str], scope: Iterable[str] = ()) -> str | None:
    """The variable (or context name) ``name`` most likely meant, or None."""
    candidates: dict[str, str] = {}
    for key in [*scope, *variables.keys()]:
        for option in (key, key[: -len(FILE_SUFFIX)] if key.endswith(FILE_SUFFIX) else None):
            if option and option != name and option.isidentifier():
                candidates.setdefault(option.upper(), option)
    wanted = name.upper()
    if wanted in candidates:
        return candidates[wanted]  # only the case differs
    if len(wanted) < MIN_LENGTH:
        return None
    limit = _allowed_edits(len(wanted))
    best: tuple[int, int, str] | None = None  # fewest edits, then the closest length
    for upper, original in candidates.items():
        length_gap = abs(len(upper) - len(wanted))
        if length_gap > limit:
            continue
        distance = _edit_distance(wanted, upper, limit)
        if distance <= limit and (best is None or (distance, length_gap) < best[:2]):
            best = (distance, length_gap, original)
    return best[2] if best else None


def _allowed_edits(length: int) -> int:
    """One typo in a short name, two in a medium one, three in a long one."""
    return 1 if length <= 5 else 2 if length <= 12 else 3


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a transposition is one edit), cut off above ``limit``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]
