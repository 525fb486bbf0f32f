"""Typed objects exposed to Jinja templates next to ``env`` and ``getenv``.

Shell-syntax templates keep plain variables; Jinja gets objects so that a
template can say ``{{ orchestrator.port_for(8080) }}`` or
``-Xmx{{ jvm_heap() }}`` instead of re-parsing strings.  Everything here is
lazy twice over: the objects are proxies that import
:mod:`entrypoint.context.orchestrator` (and with it pydantic-settings) only
when a template first reads one of them, so a Jinja template that uses
``env`` alone never pays for pydantic; and building the real objects
validates nothing, so a malformed variable only fails the templates that
actually read it (with a ContextError naming it).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any


class _Lazy:
    """Stands for the object ``factory()`` returns, built on first use."""

    __slots__ = ("_factory", "_target")

    def __init__(self, factory: Callable[[], object]) -> None:
        self._factory = factory
        self._target: object = None

    def _get(self) -> object:
        if self._target is None:
            self._target = self._factory()
        return self._target

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def __getitem__(self, key: object) -> object:
        return self._get()[key]  # type: ignore[index]

    def __iter__(self) -> Iterator[object]:
        target: Any = self._get()
        return iter(target)

    def __len__(self) -> int:
        return len(self._get())  # type: ignore[arg-type]

    def __contains__(self, key: object) -> bool:
        return key in self._get()  # type: ignore[operator]

    def __bool__(self) -> bool:
        return bool(self._get())

    def __str__(self) -> str:
        return str(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __eq__(self, other: object) -> bool:
        return self._get() == (other._get() if isinstance(other, _Lazy) else other)

    def __hash__(self) -> int:
        return hash(self._get())


def template_objects(env: Mapping[str, str]) -> dict[str, object]:
    """Objects added to the Jinja context next to ``env`` and ``getenv``."""
    def current() -> object:
        from entrypoint.context import orchestrator as orch

        return orch.detect(env)

    def marathon() -> object:
        from entrypoint.context import orchestrator as orch

        found = orchestrator._get()
        return found if isinstance(found, orch.MarathonAdapter) else orch.MarathonAdapter(env)

    def nomad() -> object:
        from entrypoint.context import orchestrator as orch

        return orch.NomadAdapter(env)

    def kubernetes() -> object:
        from entrypoint.context import orchestrator as orch

        return orch.KubernetesAdapter(env)

    orchestrator = _Lazy(current)
    marathon_view = _Lazy(marathon)

    def jvm_heap(fraction: float = 0.75, overhead_mib: float = 0.0, default: str | None = None) -> str:
        target: Any = orchestrator._get()
        heap: str = target.jvm_heap(fraction, overhead_mib, default)
        return heap

    return {
        "orchestrator": orchestrator,
        "marathon": marathon_view,
        "mesos": _LazyMesos(marathon_view),
        "nomad": _Lazy(nomad),
        "kubernetes": _Lazy(kubernetes),
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
