"""Java's ``Double.toString``, because Marathon formats resources with it.

A template compared against ``MARATHON_APP_RESOURCE_MEM`` must see ``32.0``,
not ``32``; large and tiny values switch to ``1.0E7`` / ``5.0E-4``.  Python's
``repr`` already yields the shortest round-tripping digits (as JDK 19+ does),
so only the layout differs.  The digits are taken from ``repr`` as a string
(no :mod:`decimal`, whose import would cost ``check --marathon-app`` more than
the formatting of three numbers).
"""

from __future__ import annotations

import math

_SCI_LOW = 1e-3
_SCI_HIGH = 1e7


def double_to_string(value: float) -> str:
    """Format like ``java.lang.Double.toString(value)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    digits, exp10 = _shortest_digits(magnitude)  # magnitude == int(digits) * 10**exp10
    if _SCI_LOW <= magnitude < _SCI_HIGH:
        return sign + _plain(digits, exp10)
    exponent = len(digits) - 1 + exp10
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _shortest_digits(magnitude: float) -> tuple[str, int]:
    """The shortest round-tripping significant digits (no leading or trailing zeros) and their exponent."""
    mantissa, _, exp = repr(magnitude).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exp10 = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    return stripped, exp10 + len(digits) - len(stripped)


def _plain(digits: str, exp10: int) -> str:
    """``digits * 10**exp10`` in positional notation, always with a fraction (``32.0``, ``0.001``)."""
    if exp10 >= 0:
        return digits + "0" * exp10 + ".0"
    point = len(digits) + exp10
    if point > 0:
        return f"{digits[:point]}.{digits[point:]}"
    return "0." + "0" * -point + digits


def int_to_string(value: int) -> str:
    """Java ``Integer.toString``: plain decimal (kept for symmetry with GPUs)."""
    return str(value)
