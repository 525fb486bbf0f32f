"""The package's layout (docs/layout.md) held against its imports.

Every import of every module — at the top, inside functions, and under ``TYPE_CHECKING`` — is read
with :mod:`ast`: an import may stay in its room or go down, never up; the top-level imports of the
package form no circle; and the PID-1 room (``supervise/``) imports nothing but the standard library
and the package itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "entrypoint"

#: Room → floor, as docs/layout.md draws them (the ground floor is 1).
FLOORS = {
    "entrypoint.options": 1, "entrypoint.errors": 1, "entrypoint.log": 1, "entrypoint.stdio": 1,
    "entrypoint.signames": 1, "entrypoint.fdio": 1, "entrypoint.extras": 1, "entrypoint": 1,
    "entrypoint.context": 2,
    "entrypoint.render": 3,
    "entrypoint.supervise": 4,
    "entrypoint.status": 5,
    "entrypoint.commands": 6,
    "entrypoint.cli": 7,
    "entrypoint.__main__": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    """The floor of the longest room name that ``module`` is in."""
    best = ""
    for room in FLOORS:
        if (module == room or module.startswith(room + ".")) and len(room) > len(best):
            best = room
    return FLOORS[best]


def imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import of the file (``from X import name`` counts as X and X.name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def own_modules(found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The package's own modules among ``found`` (``from X import name`` where name is a module)."""
    return [(line, name) for line, name in found if name in MODULES]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module: str) -> None:
    mine = floor(module)
    found = own_modules(imports(MODULES[module]))
    upward = [f"line {line}: {name} (floor {floor(name)})" for line, name in found if floor(name) > mine]
    assert upward == [], f"{module} (floor {mine}) imports from above"


def test_no_import_circles() -> None:
    graph = {module: {name for _, name in own_modules(imports(path, top_level_only=True)) if name != module}
             for module, path in MODULES.items()}
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in sorted(graph[module]):
            if seen.get(target) == 1:
                cycle = [*path[path.index(target):], target] if target in path else [module, target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in seen:
                visit(target, [*path, target])
        seen[module] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("entrypoint.supervise")))
def test_pid1_room_is_standard_library_only(module: str) -> None:
    """What PID 1 may load: the standard library and the package (whose heavy parts run in forks)."""
    tops = {name.split(".")[0] for _, name in imports(MODULES[module])}
    foreign = sorted(top for top in tops if top not in sys.stdlib_module_names and top != "entrypoint")
    assert foreign == [], f"{module} imports {foreign}"


def test_the_map_names_every_room() -> None:
    """docs/layout.md lists each room and ground-floor module that exists."""
    text = (PACKAGE.parent / "docs" / "layout.md").read_text(encoding="utf-8")
    rooms = {path.parent.name for path in PACKAGE.rglob("__init__.py") if path.parent != PACKAGE}
    ground = {path.name for path in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py", "cli.py"}
    missing = sorted(name for name in rooms | ground if name not in text)
    assert missing == []
