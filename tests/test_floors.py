"""The floors of the house (README, "The house"): each package imports only the floors below it,
and no module imports itself round a cycle. Read from the source (AST), so it also sees the
imports inside functions; ``if TYPE_CHECKING:`` imports (type names only) do not count.

    app.py
    ui, cli                 the dashboard's pages; the ``wangge`` command
    webapp                  tiles, sign-in, sessions, the Starlette routes
    grid, analysis          grid editing and staffing; figures, coverage, siting
    layers                  one module per layer, the importer, users, audit
    gis                     settings, database, scope, CRS, readers, measuring, errors, messages
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = {"gis": 0, "layers": 1, "grid": 2, "analysis": 2, "webapp": 3, "ui": 4, "cli": 4, "app": 5}
# Allowed exceptions, each with its reason.
ALLOWED = {
    # The sign-in form shows the dashboard's words; ui/i18n.py is a table that imports nothing.
    ("webapp.signin", "ui.i18n"),
    # The leader's plain first view (webapp/glance.py) shows the dashboard's words and numbers as
    # the screens format them; ui/fmt.py imports only gis.settings (and pandas).
    ("webapp.glance", "ui.i18n"),
    ("webapp.glance", "ui.fmt"),
}


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for pkg in FLOOR:
        if pkg == "app":
            continue
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING")


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import statement in the file."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno) for a in child.names if a.name.split(".")[0] in FLOOR)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module \
                    and child.module.split(".")[0] in FLOOR:
                subs = [f"{child.module}.{a.name}" for a in child.names if f"{child.module}.{a.name}" in modules]
                out.extend((s, child.lineno) for s in subs)  # ``from pkg import module`` imports the module
                if len(subs) < len(child.names):
                    out.append((child.module, child.lineno))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = _modules()
    return modules, {name: _imports(path, modules) for name, path in modules.items()}


def test_each_floor_imports_only_the_floors_below() -> None:
    modules, graph = _graph()
    broken = []
    for src, targets in graph.items():
        a = src.split(".")[0]
        for dst, line in targets:
            b = dst.split(".")[0]
            if a == b or (src, dst) in ALLOWED:
                continue
            if FLOOR[b] >= FLOOR[a]:  # upward, or sideways (grid <-> analysis, ui <-> cli)
                broken.append(f"{modules[src].relative_to(ROOT)}:{line} imports {dst}")
    assert not broken, "imports against the floors:\n" + "\n".join(sorted(broken))


def test_no_import_cycles() -> None:
    modules, graph = _graph()
    edges = {m: sorted({d for d, _ in ts if d in modules and d != m}) for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_check_sees_a_broken_floor(tmp_path: Path) -> None:
    """The floor check is not vacuous: an upward import in a gis module is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from layers.users import User\n", encoding="utf-8")
    modules, _ = _graph()
    assert ("layers.users", 2) in _imports(probe, modules)
