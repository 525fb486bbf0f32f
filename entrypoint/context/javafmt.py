"""Java's ``Double.toString``, because Marathon formats resources with it.

A template compared against ``MARATHON_APP_RESOURCE_MEM`` must see ``32.0``,
not ``32``; large and tiny values switch to ``1.0E7`` / ``5.0E-4``.  Python's
``repr`` already yields the shortest round-tripping digits (as JDK 19+ does),
so only the layout differs.
"""

from __future__ import annotations

import math
from decimal import Decimal

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
    shortest = Decimal(repr(magnitude)).normalize()
    if _SCI_LOW <= magnitude < _SCI_HIGH:
        plain = format(shortest, "f")
        return sign + (plain if "." in plain else plain + ".0")
    digits_tuple = shortest.as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    assert isinstance(digits_tuple.exponent, int)
    exponent = len(digits) - 1 + digits_tuple.exponent
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def int_to_string(value: int) -> str:
    """Java ``Integer.toString``: plain decimal (kept for symmetry with GPUs)."""
    return str(value)
