"""Typed objects exposed to Jinja templates (filled by the context layer)."""

from __future__ import annotations

from collections.abc import Mapping


def template_objects(env: Mapping[str, str]) -> dict[str, object]:
    """Objects added to the Jinja context next to ``env`` and ``getenv``."""
    return {}
