"""The design's "nevers", checked on the source: a one-way data path with no import cycle (imports inside
functions included), and modules that know only what they must."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / "lumina"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, mod: str | None = None) -> set[str]:
    """Every lumina module `path` (module `mod`) imports, at any depth of the file (functions included)."""
    mod = mod or module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("lumina")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("lumina"):
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


def graph() -> nx.DiGraph:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for mod, path in files.items():
        for target in imports(path):
            while target and target not in files:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != mod and not mod.startswith(target + ".") and target != "lumina":
                g.add_edge(mod, target)
    return g


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(graph()))
    assert not cycles, f"import cycles in lumina/: {cycles[:3]}"


def test_each_layer_knows_only_what_it_must():
    g = graph()
    reach = lambda m: nx.descendants(g, m)
    never = {
        "lumina.model": {"lumina.loop", "lumina.results", "lumina.viz", "lumina.optim", "lumina.evolution.policy"},
        "lumina.topology": {"lumina.model", "lumina.loop"},
        "lumina.evolution.ops": {"lumina.loop", "lumina.results", "lumina.optim"},
        "lumina.checkpoint": {"lumina.build", "lumina.loop", "lumina.results", "lumina.model"},
        "lumina.loop": {"lumina.results", "lumina.report", "lumina.viz"},
    }
    for mod, banned in never.items():
        assert not reach(mod) & banned, f"{mod} reaches {sorted(reach(mod) & banned)}"
    for data_mod in [m for m in g if m.startswith("lumina.data")]:
        bad = {m for m in reach(data_mod) if not m.startswith("lumina.data") and m != "lumina.paths"}
        assert not bad, f"{data_mod} (data) reaches {sorted(bad)}: data knows no model, results or config"


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    """The way v1 hid its loop: an import inside a function still counts."""
    f = tmp_path / "model.py"
    f.write_text("import torch\n\ndef f():\n    from .results import load_result\n    return load_result\n")
    assert "lumina.results" in imports(f, "lumina.model")
