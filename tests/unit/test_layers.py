"""The import graph of ``src/interlink``, read with :mod:`ast` (nothing is imported).

Three rules (docs/architecture.md, "Layers"):

- the core imports nothing from ``interlink.features``: only the shells (``web``, ``cli``,
  ``demo``) may, to mount what the registry lists;
- a feature may import another feature one way only: no cycle between feature packages;
- no cycle between packages at all: a *package* is ``interlink.<top>`` (a top-level module or
  sub-package) or, under ``features/``, ``interlink.features.<name>``. The shells ``web`` and
  ``cli`` count module by module: their mounting modules (``web.api``, ``web.console``,
  ``cli``) import the registry, and features import their helper modules (``web.deps``,
  ``web.console.render``, ``cli.common``), which must then never reach the registry.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a cycle
hidden in a function is still a cycle for whoever reads the code. Run as a script to print
the graph's cycles for any source tree: ``python tests/unit/test_layers.py [src/interlink]``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "interlink"
FEATURES = "interlink.features"
# What may import the features: the shells that mount what the registry lists.
SHELLS = ("interlink.web", "interlink.cli", "interlink.demo", FEATURES)
SHELL_PACKAGES = (["interlink", "web"], ["interlink", "cli"])


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path) -> dict[str, set[str]]:
    """module → the ``interlink`` modules it imports (``from a import b`` counts as ``a.b``
    when ``a/b.py`` exists, else as ``a``)."""
    names = {module_name(root, p) for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(root, path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in names else base)
        graph[name] = {m for m in found if m.split(".")[0] == "interlink" and m != name}
    return graph


def unit(module: str) -> str:
    """The package a module belongs to, for the cycle rule."""
    parts = module.split(".")
    if module.startswith(FEATURES + ".") and len(parts) > 2:
        return ".".join(parts[:3])
    if parts[:2] in SHELL_PACKAGES:
        return module
    return ".".join(parts[:2])


def unit_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(package a, package b) → the module imports that make a import b."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for src, targets in graph.items():
        for dst in targets:
            a, b = unit(src), unit(dst)
            if a != b and a != "interlink" and b != "interlink":
                edges[(a, b)].append((src, dst))
    return edges


def cycles(edges: dict[tuple[str, str], list[tuple[str, str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted({a for a, _ in edges} | {b for _, b in edges}):
        if v not in index:
            visit(v)
    return groups


def mutual_pairs(edges: dict[tuple[str, str], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Pairs of packages that import each other directly."""
    return sorted((a, b) for a, b in edges if a < b and (b, a) in edges)


def _describe(group: list[str], edges: dict[tuple[str, str], list[tuple[str, str]]]) -> str:
    lines = [" ↔ ".join(group)]
    for a in group:
        for b in group:
            for src, dst in edges.get((a, b), []):
                lines.append(f"    {src} → {dst}")
    return "\n".join(lines)


def test_core_imports_nothing_from_features() -> None:
    graph = imports(SRC)
    bad = sorted(
        (src, dst)
        for src, targets in graph.items()
        for dst in targets
        if (dst == FEATURES or dst.startswith(FEATURES + "."))
        and not any(src == s or src.startswith(s + ".") for s in SHELLS)
    )
    assert not bad, "the core imports features:\n" + "\n".join(f"  {s} → {d}" for s, d in bad)


def test_no_cycle_between_features() -> None:
    edges = unit_edges(imports(SRC))
    feature_edges = {k: v for k, v in edges.items() if all(p.startswith(FEATURES + ".") for p in k)}
    found = cycles(feature_edges)
    assert not found, "features import each other:\n" + "\n".join(
        _describe(g, feature_edges) for g in found
    )


def test_no_cycle_between_packages() -> None:
    edges = unit_edges(imports(SRC))
    found = cycles(edges)
    assert not found, "package cycles:\n" + "\n".join(_describe(g, edges) for g in found)


def test_the_graph_sees_a_bad_import(tmp_path: Path) -> None:
    """The rules catch what they are for: a core module importing a feature, and a cycle."""
    root = tmp_path / "interlink"
    for rel, text in {
        "__init__.py": "",
        "config.py": "from interlink.features.a import tables\n",
        "features/__init__.py": "",
        "features/a/__init__.py": "",
        "features/a/tables.py": "def f():\n    from interlink.features.b import api\n",
        "features/b/__init__.py": "",
        "features/b/api.py": "from ..a import tables\nimport interlink.config\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    graph = imports(root)
    assert graph["interlink.config"] == {"interlink.features.a.tables"}
    assert graph["interlink.features.b.api"] == {"interlink.features.a.tables", "interlink.config"}
    found = cycles(unit_edges(graph))
    assert found == [["interlink.config", "interlink.features.a", "interlink.features.b"]]


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else SRC
    edges = unit_edges(imports(root))
    groups = cycles(edges)
    pairs = mutual_pairs(edges)
    print(f"{len(groups)} cyclic groups, {len(pairs)} pairs of packages importing each other")
    for pair in pairs:
        print("  ", " ↔ ".join(pair))
    for group in groups:
        print(_describe(group, edges))
