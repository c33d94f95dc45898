"""Store the published outputs that nbval checks: run each notebook on the stored results and write the outputs
of its cells tagged `nbval-check-output` into the committed notebook; every other cell stays without outputs.

    python scripts/update_outputs.py                                   # every notebook with such cells
    python scripts/update_outputs.py book/chapters/06_ablations.ipynb  # one chapter

Run it after a deliberate change of the results a chapter shows, then commit the notebooks. The notebooks run
as committed (profile `full`, their own folder as working directory) with LUMINA_LOAD_ONLY=1, so a result that
is not stored stops the run with one line instead of training. `make test` then checks the same cells with
`pytest --nbval-lax` (see the README).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
CHECK = "nbval-check-output"  # nbval's tag: compare this cell's outputs even under --nbval-lax


def notebooks() -> list[Path]:
    """The book's notebooks that hold at least one checked cell."""
    book = ROOT / "book"
    found = sorted(p for p in book.rglob("*.ipynb") if not {"_build", ".ipynb_checkpoints"} & set(p.relative_to(book).parts))
    return [p for p in found if any(CHECK in c.metadata.get("tags", []) for c in nbformat.read(str(p), as_version=4).cells)]


def refresh(path: Path, timeout: int = 1800) -> int:
    """Execute `path` and keep only its checked cells' outputs and execution counts; returns how many."""
    nb = nbformat.read(str(path), as_version=4)
    saved = {k: os.environ.get(k) for k in ("LUMINA_LOAD_ONLY", "LUMINA_PROGRESS")}
    os.environ.update(LUMINA_LOAD_ONLY="1", LUMINA_PROGRESS="0")  # the kernel inherits them; this process keeps its own
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    kept = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # the kernel's timestamps: noise in a committed notebook
        if cell.cell_type != "code":
            continue
        if CHECK in cell.metadata.get("tags", []):
            kept += 1  # keeps its execution count too: nbval refuses a stored output of a cell that never ran
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, str(path))
    return kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook with a checked cell")
    a = ap.parse_args(argv)
    for p in a.notebooks or notebooks():
        p = p.resolve()
        if not p.exists():
            print(f"error: {p} does not exist", file=sys.stderr)
            return 2
        try:
            n = refresh(p)
        except CellExecutionError as err:
            print(f"error: {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} failed: {str(err).strip().splitlines()[-1]}",
                  file=sys.stderr)
            return 1
        print(f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}: {n} checked cell(s) stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
