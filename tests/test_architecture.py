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


def test_walk_counts_each_return_to_a_file_already_read(tmp_path):
    """scripts/walk.py: from a.run a reader reads b.helper (`from .b import`) and comes back to a, reads c.Model's
    __init__ (a constructor call) and back, its forward (calling the typed local) and from there b.other
    (`module.name`), back to c, back to a: nine file visits of three files, six re-entries, two of them by a call."""
    import importlib.util
    import sys

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import helper\nfrom .c import Model\n\n"
                              "def run(x):\n    helper(x)\n    m = Model()\n    return m(x)\n")
    (pkg / "b.py").write_text("def helper(x):\n    return x\n\n\ndef other(x):\n    return x\n")
    (pkg / "c.py").write_text("from . import b\n\n\nclass Model:\n    def __init__(self):\n        self.k = 1\n\n"
                              "    def forward(self, x):\n        return b.other(x)\n")
    spec = importlib.util.spec_from_file_location("walk", Path(__file__).resolve().parents[1] / "scripts" / "walk.py")
    walk = importlib.util.module_from_spec(spec)
    sys.modules["walk"] = walk
    spec.loader.exec_module(walk)
    mods = walk.load_modules(pkg)
    visits = walk.walk(mods, ("pkg.a", None, "run"))
    assert [f for f, _ in visits] == ["pkg/a.py", "pkg/b.py", "pkg/a.py", "pkg/c.py", "pkg/a.py", "pkg/c.py",
                                      "pkg/b.py", "pkg/c.py", "pkg/a.py"]
    # the two re-entries by a call (c's forward, b.other); the other four return to a caller
    assert [call for _, call in visits] == [True, True, False, True, False, True, True, False, False]
