#!/usr/bin/env python3
"""How often a reader following the code from one function has to come back to a file already read.

    python scripts/walk.py                                  # from lumina.results.train_or_load
    python scripts/walk.py lumina.loop.train --path lumina  # any start, any copy of the package

A static walk of the call graph: from the start function, depth first and in source order, every call that
resolves to a function of the package is read once, the first time it is met. A call resolves when it names a
function defined or imported in the module, `module.name`, `Class(...)` (its `__init__`), or a method of an
object whose class the code states: `self`, a parameter's annotation, a local `x = Class(...)`, an attribute
`self.x` assigned so in the class; calling such an object runs its `forward` (torch modules). Reading order
gives a sequence of files (returning from a callee back to the caller counts too); each time the sequence
comes back to a file it had left, that is one re-entry; those made by a call (not by returning to the caller)
are counted apart, as the files a reader must open again. Calls the code does not type (callbacks, objects
returned by other calls) are not followed: the count is a lower bound on what a reader meets.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path


def load_modules(root: Path) -> dict[str, dict]:
    """{module: {"file", "defs" {name: node}, "methods" {(class, name): node}, "imports" {alias: (module, attr|None)}}}."""
    pkg = root.name
    mods = {}
    for f in sorted(root.rglob("*.py")):
        parts = [pkg, *f.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = name if is_pkg else name.rsplit(".", 1)[0]
        tree = ast.parse(f.read_text(encoding="utf-8"))
        m = {"file": str(f.relative_to(root.parent)), "defs": {}, "methods": {}, "imports": {}}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                m["defs"][node.name] = node
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        m["methods"][(node.name, sub.name)] = sub
        for node in ast.walk(tree):  # imports anywhere (some are local to a function, to keep start-up light)
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[:len(base) - node.level + 1]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                for a in node.names:
                    m["imports"][a.asname or a.name] = (src, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    m["imports"][a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
        mods[name] = m
    return mods


def resolve_name(mods: dict, module: str, name: str, seen=()) -> tuple[str, str] | str | None:
    """(module, top-level name) of `name` as seen from `module`, a module name, or None (outside the package)."""
    if (module, name) in seen or module not in mods:
        return None
    m = mods[module]
    if name in m["defs"]:
        return module, name
    if name in m["imports"]:
        src, attr = m["imports"][name]
        if attr is None:
            return src if src in mods else None
        if f"{src}.{attr}" in mods:
            return f"{src}.{attr}"
        return resolve_name(mods, src, attr, (*seen, (module, name)))
    return None


def calls_in(node: ast.AST) -> list[ast.Call]:
    """The calls of a function body in source order, nested definitions included."""
    return sorted((n for n in ast.walk(node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))


def class_of(mods: dict, module: str, expr: ast.AST | None) -> tuple[str, str] | None:
    """(module, class) that an annotation or a constructor call names, if it is a class of the package."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):  # a string annotation
        try:
            expr = ast.parse(expr.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(expr, ast.BinOp):  # X | None
        return class_of(mods, module, expr.left) or class_of(mods, module, expr.right)
    if isinstance(expr, ast.IfExp):  # X(...) if cond else None
        return class_of(mods, module, expr.body) or class_of(mods, module, expr.orelse)
    if isinstance(expr, ast.Call):
        expr = expr.func
    r = None
    if isinstance(expr, ast.Name):
        r = resolve_name(mods, module, expr.id)
    elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        owner = resolve_name(mods, module, expr.value.id)
        r = resolve_name(mods, owner, expr.attr) if isinstance(owner, str) else None
    return r if isinstance(r, tuple) and isinstance(mods[r[0]]["defs"][r[1]], ast.ClassDef) else None


def local_types(mods: dict, module: str, node: ast.AST) -> dict[str, tuple[str, str]]:
    """{name: (module, class)} of a function's annotated parameters and its `x = Class(...)` assignments."""
    out = {}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            if (c := class_of(mods, module, a.annotation)) is not None:
                out[a.arg] = c
    for n in ast.walk(node):
        if isinstance(n, ast.Assign) and isinstance(n.value, (ast.Call, ast.IfExp)) and (c := class_of(mods, module, n.value)):
            out.update({t.id: c for t in n.targets if isinstance(t, ast.Name)})
    return out


def attribute_types(mods: dict, module: str, cls: str) -> dict[str, tuple[str, str]]:
    """{attr: (module, class)} of `self.attr = Class(...)` or `self.attr = param` (annotated) in a class."""
    out = {}
    for (c, _), fn in mods[module]["methods"].items():
        if c != cls:
            continue
        types = local_types(mods, module, fn)
        for n in ast.walk(fn):
            if isinstance(n, ast.Assign):
                v = class_of(mods, module, n.value) if isinstance(n.value, (ast.Call, ast.IfExp)) else (
                    types.get(n.value.id) if isinstance(n.value, ast.Name) else None)
                for t in n.targets:
                    if v and isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        out[t.attr] = v
    return out


def method(mods: dict, owner: tuple[str, str], name: str) -> tuple[str, str, str] | None:
    return (*owner, name) if (owner[1], name) in mods[owner[0]]["methods"] else None


def target(mods: dict, module: str, cls: str | None, call: ast.Call, types: dict) -> tuple[str, str | None, str] | None:
    """(module, class or None, function) that `call` runs, when it can be named statically. `types`: the
    calling function's typed names (`local_types`, and "self.<attr>" for typed attributes)."""
    f = call.func
    if isinstance(f, ast.Name):
        if f.id in types:  # calling a module object runs its forward
            return method(mods, types[f.id], "forward")
        r = resolve_name(mods, module, f.id)
    elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) and isinstance(f.value.value, ast.Name):
        owner = types.get(f"{f.value.value.id}.{f.value.attr}")  # self.model.method(...)
        return method(mods, owner, f.attr) if owner else None
    elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        if f.value.id in ("self", "cls") and cls:
            if (cls, f.attr) in mods[module]["methods"]:
                return module, cls, f.attr
            owner = types.get(f"self.{f.attr}")  # self.model(...)
            return method(mods, owner, "forward") if owner else None
        if f.value.id in types:
            return method(mods, types[f.value.id], f.attr)
        owner = resolve_name(mods, module, f.value.id)
        if isinstance(owner, str):  # module.function
            r = resolve_name(mods, owner, f.attr)
        elif isinstance(owner, tuple):  # Class.method
            return method(mods, owner, f.attr)
        else:
            return None
    else:
        return None
    if not isinstance(r, tuple):
        return None
    mod, name = r
    if isinstance(mods[mod]["defs"][name], ast.ClassDef):
        return method(mods, r, "__init__")
    return mod, None, name


def walk(mods: dict, start: tuple[str, str | None, str]) -> list[tuple[str, bool]]:
    """The files in reading order from `start` (consecutive repeats merged), each with whether the reader got
    there by a call (True) or by returning to the caller (False)."""
    seen, order = set(), []

    def visit(fn):
        seen.add(fn)
        module, cls, name = fn
        order.append((mods[module]["file"], True))
        node = mods[module]["methods"][(cls, name)] if cls else mods[module]["defs"][name]
        types = local_types(mods, module, node)
        if cls:
            types.update({f"self.{a}": c for a, c in attribute_types(mods, module, cls).items()})
            types["self"] = (module, cls)
        for call in calls_in(node):
            t = target(mods, module, cls, call, types)
            if t is not None and t not in seen:
                visit(t)
                order.append((mods[module]["file"], False))  # back in the caller

    visit(start)
    return [v for i, v in enumerate(order) if i == 0 or v[0] != order[i - 1][0]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("start", nargs="?", default="lumina.results.train_or_load", help="module.function to start from")
    ap.add_argument("--path", default=str(Path(__file__).resolve().parents[1] / "lumina"), help="the package folder")
    a = ap.parse_args(argv)
    mods = load_modules(Path(a.path))
    module, name = a.start.rsplit(".", 1)
    if module not in mods or name not in mods[module]["defs"]:
        print(f"error: {a.start} is not a top-level function of {a.path}", file=sys.stderr)
        return 2
    visits = walk(mods, (module, None, name))
    files = [f for f, _ in visits]
    again = Counter(files) - Counter(set(files))
    by_call = Counter(f for i, (f, call) in enumerate(visits) if call and f in files[:i])
    print(f"{len(files)} file visits, {len(set(files))} files, {sum(again.values())} re-entries "
          f"({sum(by_call.values())} by a call into a file already read, the rest returning to a caller)")
    for f, n in again.most_common():
        print(f"  {f}: {n} ({by_call[f]} by a call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
