"""The golden case files shipped in tests/data (copies of the shared reference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    """Every record; an absent or empty file is an error, never a silent skip."""
    records = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    if not records:
        raise AssertionError(f"{name}: no golden cases")
    return records
