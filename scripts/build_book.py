#!/usr/bin/env python3
"""Build the LuminaNet Book: execute every chapter with papermill, then build the HTML with jupyter-book.

    python scripts/build_book.py [--profile full] [--book book] [--no-browser]

1. Stage a copy of the book in <book>/_build/src: `_config.yml`, a `_toc.yml` without the entries whose
   file does not exist yet (each one skipped with a warning line), the markdown pages, `_static` and any
   other asset. The vendored MathJax (`_static/mathjax`) goes to `_offline/_static/mathjax` instead, which
   `_config.yml` names in `html_extra_path`: jupyter-book would put every *.js under `_static` on every page.
2. Execute each chapter notebook of the toc with papermill (`-p profile <PROFILE>`, kernel `python3`, working
   directory = the source notebook's folder), writing the executed copy into the staging tree. A failing
   cell stops the build. Source notebooks stay without outputs; executed copies are build artefacts.
   papermill's `injected-parameters` cell is tagged `remove-cell` when it only repeats the defaults of the
   chapter's `parameters` cell, else `hide-cell` (folded: the page still says which values it ran with).
3. `jupyter-book build <book>/_build/src --path-output <book> -W --keep-going --all` -> <book>/_build/html.
   Execution is off in jupyter-book (papermill already ran); any Sphinx warning, including a cell's stderr
   output (`stderr_output: warn`), fails the build.
4. Unless --no-browser: `scripts/check_browser.py` opens every page in headless chromium, checks figures,
   math, pyvis graphs, console errors and requests to other hosts, keeps a screenshot of each page and
   prints each page's counts of figures, tables and graphs.

Exit status: 0 on success, 1 on a failed chapter, build or browser check.
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("smoke", "full", "paper")
SUFFIXES = (".ipynb", ".md")


def log(msg: str) -> None:
    print(f"[build_book] {msg}", flush=True)


def source_file(book: Path, entry: str) -> Path | None:
    """The file behind a toc entry (`chapters/03_cifar10` -> chapters/03_cifar10.ipynb), or None."""
    p = book / entry
    if p.suffix in SUFFIXES:
        return p if p.is_file() else None
    for suffix in SUFFIXES:
        if p.with_name(p.name + suffix).is_file():
            return p.with_name(p.name + suffix)
    return None


def filter_toc(node, book: Path, missing: list[str]):
    """Copy of a jb-book toc (nested dicts/lists) without `file:` entries whose file does not exist."""
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, dict) and "file" in item and source_file(book, item["file"]) is None:
                missing.append(item["file"])
                continue
            kids = ("chapters", "sections", "parts")
            had_kids = isinstance(item, dict) and any(k in item for k in kids)
            item = filter_toc(item, book, missing)
            if had_kids and "file" not in item and not any(k in item for k in kids):
                continue  # a part whose chapters are all missing
            out.append(item)
        return out
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            v = filter_toc(v, book, missing)
            if k in ("chapters", "sections", "parts") and isinstance(v, list) and not v:
                continue  # an emptied list is not valid in the toc
            out[k] = v
        return out
    return node


def toc_files(node) -> list[str]:
    """Every `file:` (and `root:`) entry of a toc, in reading order."""
    if isinstance(node, list):
        return [f for item in node for f in toc_files(item)]
    if isinstance(node, dict):
        out = [node["root"]] if "root" in node else []
        if "file" in node:
            out.append(node["file"])
        for k, v in node.items():
            if isinstance(v, (list, dict)):
                out += toc_files(v)
        return out
    return []


def stage(book: Path, src: Path) -> tuple[list[Path], list[str]]:
    """Copy the book (without notebooks and _build) into src; return the toc's notebooks and the toc's
    missing entries."""
    if src.exists():
        shutil.rmtree(src)
    common = shutil.ignore_patterns("_build", ".ipynb_checkpoints", "*.ipynb", "__pycache__")

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(common(folder, names))
        if Path(folder) == book / "_static":
            skip.add("mathjax")  # staged under _offline/ below
        return skip

    shutil.copytree(book, src, ignore=ignore)
    mathjax = book / "_static" / "mathjax"
    if mathjax.is_dir():
        shutil.copytree(mathjax, src / "_offline" / "_static" / "mathjax")
    else:
        log(f"WARNING: {mathjax.relative_to(book.parent)} is missing: math will not render (run `make mathjax`)")

    toc = yaml.safe_load((book / "_toc.yml").read_text())
    missing: list[str] = []
    if source_file(book, toc["root"]) is None:
        raise SystemExit(f"[build_book] the toc's root {toc['root']!r} does not exist in {book}")
    filtered = filter_toc(toc, book, missing)
    for entry in missing:
        log(f"WARNING: skipping toc entry {entry!r}: {entry}.ipynb / {entry}.md does not exist yet")
    header = "# Generated by scripts/build_book.py from ../../_toc.yml (entries without a file removed)\n"
    (src / "_toc.yml").write_text(header + yaml.safe_dump(filtered, sort_keys=False))
    notebooks = [f for e in toc_files(filtered) if (f := source_file(book, e)) and f.suffix == ".ipynb"]
    return notebooks, missing


def execute(nb: Path, out: Path, profile: str, timeout: int) -> None:
    """Run one notebook with papermill, in its own folder, the way a reader would."""
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(nb), str(out), parameters={"profile": profile}, kernel_name="python3", cwd=str(nb.parent),
        progress_bar=False, log_output=False, execution_timeout=timeout,
    )


def _values(source: str) -> dict[str, object]:
    """Top-level `name = literal` assignments of a cell (non-literals compare by their source text)."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                out[node.targets[0].id] = ast.unparse(node.value)
    return out


def hide_injected_parameters(path: Path) -> None:
    """Fold papermill's injected cell: it would show each chapter's parameters a second time."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    defaults = {}
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags:
            defaults = _values(cell.source)
        elif "injected-parameters" in tags:
            same = all(defaults.get(k, object()) == v for k, v in _values(cell.source).items())
            tags.append("remove-cell" if same else "hide-cell")
    nbformat.write(nb, str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "full"), choices=PROFILES)
    ap.add_argument("--book", type=Path, default=ROOT / "book", help="book source folder (default: book/)")
    ap.add_argument("--no-browser", action="store_true", help="skip scripts/check_browser.py")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("LUMINA_CELL_TIMEOUT", "-1")),
                    help="per-cell timeout in seconds for papermill (default: none)")
    args = ap.parse_args(argv)

    book = args.book.resolve()
    build = book / "_build"
    src, html = build / "src", build / "html"
    # Cells write nothing to stderr unless something is wrong (stderr_output: warn fails the build).
    os.environ.setdefault("LUMINA_PROGRESS", "0")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    t_all = time.perf_counter()
    notebooks, _ = stage(book, src)
    log(f"profile={args.profile}: {len(notebooks)} chapter notebook(s), staged in {src}")
    for nb in notebooks:
        rel = nb.relative_to(book)
        log(f"{rel}: running (profile={args.profile}) ...")
        t0 = time.perf_counter()
        try:
            execute(nb, src / rel, args.profile, args.timeout)
            hide_injected_parameters(src / rel)
        except Exception as e:  # papermill's PapermillExecutionError names the cell and the traceback
            log(f"FAILED {rel} after {time.perf_counter() - t0:.1f} s (profile={args.profile})")
            print(str(e), file=sys.stderr)
            log(f"the partially executed notebook is {src / rel}")
            return 1
        log(f"{rel}: ok in {time.perf_counter() - t0:.1f} s (profile={args.profile})")

    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if jb is None:
        log("jupyter-book is not installed: pip install -e '.[book]'")
        return 1
    t0 = time.perf_counter()
    cmd = [jb, "build", str(src), "--path-output", str(book), "--all", "-W", "--keep-going"]
    log("$ " + " ".join(cmd))
    rc = subprocess.call(cmd)
    if rc != 0:
        log(f"FAILED: jupyter-book build exited {rc} (warnings are errors; see above)")
        return 1
    log(f"html: ok in {time.perf_counter() - t0:.1f} s -> {html}/index.html")

    if not args.no_browser:
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "check_browser.py"), "--html", str(html),
                              "--toc", str(src / "_toc.yml")])
        if rc != 0:
            log(f"FAILED: browser check exited {rc}")
            return rc
        log(f"browser check: ok in {time.perf_counter() - t0:.1f} s")
    log(f"done in {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
