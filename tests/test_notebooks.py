"""The book's notebooks: committed clean, and every chapter runs in the `smoke` profile.

(a) hygiene of every book/**/*.ipynb (not _build): no outputs, no execution counts, exactly one cell tagged
    `parameters` that sets `profile`, kernelspec `python3`;
(b) papermill runs every chapter with `-p profile smoke` (working directory = the notebook's folder, the
    executed copy goes to a temporary folder);
(c) nbval (`--nbval-lax`) runs a papermill-prepared copy of every chapter with `profile = "smoke"` injected.
    As notebooks are committed without outputs, this checks that every cell runs in a fresh kernel; the
    sanitizers in nbval_sanitize.cfg are ready for cells marked `# NBVAL_CHECK_OUTPUT` should reference
    outputs ever be committed;
(d) the book tool chain on a throwaway chapter (figure, math, offline pyvis graph) in a temporary copy of
    the book: scripts/build_book.py (papermill, jupyter-book -W) and scripts/check_browser.py (chromium).
(b), (c) and (d) are marked `slow` and run by default; (b) and (c) are skipped while no chapter exists.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PROFILES = ("smoke", "full", "paper")
CELL_TIMEOUT = int(os.environ.get("LUMINA_CELL_TIMEOUT", "900"))  # seconds per cell in the smoke runs


def book_notebooks() -> list[Path]:
    skip = {"_build", ".ipynb_checkpoints"}
    return sorted(p for p in BOOK.rglob("*.ipynb") if not skip & set(p.relative_to(BOOK).parts))


NOTEBOOKS = book_notebooks()
NB_PARAMS = [pytest.param(p, id=p.relative_to(BOOK).as_posix()) for p in NOTEBOOKS] or [
    pytest.param(None, id="no-notebook", marks=pytest.mark.skip(reason="no notebook under book/ yet"))]


def _load(nb_path: Path) -> dict:
    return json.loads(nb_path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _assigned(source: str) -> dict[str, ast.expr]:
    """Names assigned at top level of a cell -> their value expression."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node.value
    return out


# ---- (a) hygiene ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_notebook_is_committed_clean(nb_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(str(nb_path), as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{nb_path.name}: cells {dirty} carry outputs or execution counts; commit notebooks without "
                       f"them: jupyter nbconvert --clear-output --inplace {nb_path.relative_to(ROOT)}")
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])]
    assert not injected, f"{nb_path.name}: cells {injected} were injected by papermill; commit the source notebook"


@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_notebook_has_one_parameters_cell_with_profile(nb_path):
    nb = _load(nb_path)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{nb_path.name}: {len(tagged)} cells tagged `parameters`; exactly one is needed"
    cell = tagged[0]
    assert cell["cell_type"] == "code", f"{nb_path.name}: the `parameters` cell must be a code cell"
    values = _assigned(_source(cell))
    assert "profile" in values, f"{nb_path.name}: the `parameters` cell must set `profile` (one of {PROFILES})"
    value = values["profile"]
    assert isinstance(value, ast.Constant) and value.value in PROFILES, (
        f"{nb_path.name}: `profile` must default to one of {PROFILES}, got {ast.unparse(value)}")


@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_notebook_kernel_is_python3(nb_path):
    spec = _load(nb_path).get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3", (
        f"{nb_path.name}: kernelspec name is {spec.get('name')!r}; it must be 'python3' (the kernel of .venv)")


def skip_without_data(nb_path: Path) -> None:
    """Chapters list the datasets they need in their metadata (`lumina.data`); skip when one is absent."""
    from lumina.data.common import data_root

    present = {"cifar10": (data_root() / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists(),
               "tinystories": (data_root() / "tinystories").is_dir()}
    missing = [d for d in _load(nb_path).get("metadata", {}).get("lumina", {}).get("data", []) if not present.get(d)]
    if missing:
        pytest.skip(f"{nb_path.name} needs {', '.join(missing)} under LUMINA_DATA={data_root()} (see README, Data)")


# ---- (b) papermill smoke run ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_chapter_runs_in_smoke_profile(nb_path, tmp_path):
    pm = pytest.importorskip("papermill")
    skip_without_data(nb_path)
    out = tmp_path / nb_path.name
    try:
        pm.execute_notebook(str(nb_path), str(out), parameters={"profile": "smoke"}, kernel_name="python3",
                            cwd=str(nb_path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT)
    except pm.PapermillExecutionError as e:  # name the cell, not papermill's internals
        pytest.fail(f"{nb_path.relative_to(ROOT)} failed with profile=smoke in cell {e.exec_count}:\n"
                    f"{e.ename}: {e.evalue}", pytrace=False)


# ---- (c) nbval on a papermill-prepared copy --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_chapter_passes_nbval_in_smoke_profile(nb_path, tmp_path):
    pm = pytest.importorskip("papermill")
    nbformat = pytest.importorskip("nbformat")
    if importlib.util.find_spec("nbval") is None:
        pytest.skip("nbval is not installed (pip install -e '.[test]')")
    skip_without_data(nb_path)
    # nbval runs a notebook as it is, and its kernel starts in the notebook's folder: inject the smoke profile
    # with papermill, and make the copy (in tmp_path) run in the source notebook's folder, as papermill does.
    prepared = tmp_path / nb_path.name
    pm.execute_notebook(str(nb_path), str(prepared), parameters={"profile": "smoke"}, kernel_name="python3",
                        prepare_only=True, progress_bar=False)
    nb = nbformat.read(str(prepared), as_version=4)
    chdir = nbformat.v4.new_code_cell(f"import os\nos.chdir({str(nb_path.parent)!r})")
    nb.cells.insert(0, chdir)
    nbformat.write(nb, str(prepared))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts =\n")  # keep the project's pytest config out

    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["LUMINA_PROFILE"] = "smoke"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
           "--nbval-cell-timeout", str(CELL_TIMEOUT),
           "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), prepared.name]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, (f"nbval failed on {nb_path.relative_to(ROOT)} (profile=smoke):\n"
                               + "\n".join((r.stdout + r.stderr).splitlines()[-60:]))


# ---- (d) the tool chain on a throwaway chapter ---------------------------------------------------------
def _throwaway_chapter(path: Path) -> None:
    """A chapter as the book's chapters are written: parameters cell, matplotlib figure, math in markdown,
    and a pyvis graph embedded offline (in_line resources, iframe srcdoc)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "full"  # smoke | full | paper')
    params.metadata["tags"] = ["parameters"]
    pyvis_cell = (
        "import html, re\n"
        "from IPython.display import HTML\n"
        "from pyvis.network import Network\n"
        "net = Network(height='300px', width='100%', directed=True, cdn_resources='in_line', notebook=False)\n"
        "for i in range(4):\n"
        "    net.add_node(i, label=f'NC {i}')\n"
        "for src, dst in [(0, 1), (1, 2), (3, 1), (2, 2)]:\n"
        "    net.add_edge(src, dst)\n"
        "page = net.generate_html()\n"
        "# pyvis 0.3.2 links Bootstrap from a CDN even with in_line resources: drop those tags\n"
        "page = re.sub(r'<(link|script)[^>]*cdn\\.jsdelivr\\.net[^>]*>(\\s*</script>)?', '', page)\n"
        "# wrapped in a <div>: IPython warns on stderr about a bare <iframe> (and stderr fails the build)\n"
        "HTML(f'<div><iframe srcdoc=\"{html.escape(page)}\" style=\"width:100%;height:330px;border:0\"></iframe></div>')"
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Throwaway chapter\n\nCluster $i$ receives $s_i = \\frac{1}{n}\\sum_{j\\in N_i} W_{C_j} f_j$:\n\n"
            "$$\nh_i = \\sigma(e_i + U_i s_i)\n$$"),
        params,
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport numpy as np\nprint('profile:', profile)"),
        nbformat.v4.new_code_cell("fig, ax = plt.subplots(figsize=(4, 2.5))\n"
                                  "ax.plot(np.linspace(0, 6, 50), np.sin(np.linspace(0, 6, 50)))\nplt.show()"),
        nbformat.v4.new_code_cell(pyvis_cell),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_book_chain_builds_and_renders_offline(tmp_path):
    pytest.importorskip("papermill")
    pytest.importorskip("pyvis")
    if shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None and not shutil.which("jupyter-book"):
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")
    chromium = Path(os.environ.get("LUMINA_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip("chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    import yaml

    book = tmp_path / "book"
    shutil.copytree(BOOK, book, ignore=shutil.ignore_patterns("_build", "*.ipynb", ".ipynb_checkpoints"))
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    first = next(c["file"] for c in toc["chapters"] if "file" in c and c["file"].startswith("chapters/"))
    _throwaway_chapter(book / f"{first}.ipynb")

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_book.py"), "--book", str(book),
                        "--profile", "smoke"], capture_output=True, text=True, timeout=900)
    log = r.stdout + r.stderr
    assert r.returncode == 0, "build_book.py failed:\n" + "\n".join(log.splitlines()[-80:])
    assert f"{first}.ipynb: ok" in log
    assert "all checks passed" in log
    html_page = (book / "_build" / "html" / f"{first}.html").read_text()
    assert "profile: smoke" in html_page  # the chapter ran with the profile papermill injected
    assert (book / "_build" / "screenshots" / (first.replace("/", "__") + ".png")).stat().st_size > 10_000


def test_filtered_toc_drops_missing_entries(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_book
    finally:
        sys.path.pop(0)
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.ipynb").write_text("{}")
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "One", "chapters": [{"file": "a/x"}, {"file": "a/missing"}]},
                     {"caption": "Two", "chapters": [{"file": "b/missing"}]}]}
    missing: list[str] = []
    out = build_book.filter_toc(toc, tmp_path, missing)
    assert missing == ["a/missing", "b/missing"]
    assert out == {"format": "jb-book", "root": "intro", "parts": [{"caption": "One", "chapters": [{"file": "a/x"}]}]}
    assert build_book.toc_files(out) == ["intro", "a/x"]
