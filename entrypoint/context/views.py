"""Typed objects exposed to Jinja templates next to ``env`` and ``getenv``.

Shell-syntax templates keep plain variables; Jinja gets objects so that a
template can say ``{{ orchestrator.port_for(8080) }}`` or
``-Xmx{{ jvm_heap() }}`` instead of re-parsing strings.  Everything here is
lazy: building the objects validates nothing, so a malformed variable only
fails the templates that actually read it (with a ContextError naming it).
"""

from __future__ import annotations

from collections.abc import Mapping


def template_objects(env: Mapping[str, str]) -> dict[str, object]:
    """Objects added to the Jinja context next to ``env`` and ``getenv``."""
    from entrypoint.context import orchestrator as orch

    current = orch.detect(env)
    marathon = current if isinstance(current, orch.MarathonAdapter) else orch.MarathonAdapter(env)

    def jvm_heap(fraction: float = 0.75, overhead_mib: float = 0.0, default: str | None = None) -> str:
        return current.jvm_heap(fraction, overhead_mib, default)

    return {
        "orchestrator": current,
        "marathon": marathon,
        "mesos": _LazyMesos(marathon),
        "nomad": orch.NomadAdapter(env),
        "kubernetes": orch.KubernetesAdapter(env),
        "jvm_heap": jvm_heap,
    }


class _LazyMesos:
    """``mesos.sandbox`` etc. without validating the Marathon groups."""

    def __init__(self, marathon: object) -> None:
        self._marathon = marathon

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        settings = self._marathon.mesos  # type: ignore[attr-defined]
        return getattr(settings, "MESOS_" + name.upper())
