"""The book's notebooks: committed clean, every chapter runs once in the `smoke` profile, and the published
numbers are checked by nbval.

(a) hygiene of every book/**/*.ipynb (not _build): no outputs or execution counts except those stored for
    the cells tagged `nbval-check-output` (and those always present), exactly one cell tagged `parameters` that
    sets `profile`, kernelspec `python3`;
(b) papermill runs every chapter ONCE per test session with `-p profile smoke` (working directory = the
    notebook's folder), against a temporary results store: smoke runs are written there, never into the
    repository (where results of older code would be reused); the committed `full`/`paper` results are linked
    into it, so cells that show published tables still find them;
(c) published numbers: `make test` also runs `pytest --nbval-lax --nbval-current-env book/` with
    LUMINA_LOAD_ONLY=1: every notebook runs as committed (profile `full`, stored results only, nothing
    trains) and the outputs of its `nbval-check-output` cells must equal the stored ones; a change that moves
    a published number fails, naming the notebook and cell. After a deliberate change (new results), store the
    new outputs with `python scripts/update_outputs.py [notebook ...]`. The mechanism itself is tested here on
    a tiny fixture notebook (no model, no dataset);
(d) the book tool chain on a throwaway chapter (figure, math, offline pyvis graph) in a temporary copy of
    the book: scripts/build_book.py (papermill, jupyter-book -W) and scripts/check_browser.py (chromium).
(b), (c) and (d) are marked `slow` and run by default; they are skipped while no chapter exists.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHECK = "nbval-check-output"  # nbval's tag: the cell's stored outputs are compared even under --nbval-lax
PROFILES = ("smoke", "full", "paper")
PUBLISHED = ("full", "paper")  # profiles whose results are committed
CELL_TIMEOUT = int(os.environ.get("LUMINA_CELL_TIMEOUT", "900"))  # seconds per cell in the smoke runs
PLAYGROUND_LIMIT_S = 60  # the playground chapter promises seconds per cell; the whole chapter under a minute


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


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


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
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    dirty = [i for i, c in code if CHECK not in c.metadata.get("tags", []) and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{nb_path.name}: cells {dirty} carry outputs or execution counts; only the cells tagged "
                       f"{CHECK} keep theirs: python scripts/update_outputs.py {nb_path.relative_to(ROOT)}")
    unstored = [i for i, c in code if CHECK in c.metadata.get("tags", []) and not c.outputs]
    assert not unstored, (f"{nb_path.name}: cells {unstored} are tagged {CHECK} but store no output to check: "
                          f"python scripts/update_outputs.py {nb_path.relative_to(ROOT)}")
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])]
    assert not injected, f"{nb_path.name}: cells {injected} were injected by papermill; commit the source notebook"


@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_notebook_has_one_parameters_cell_with_profile(nb_path):
    nb = _load(nb_path)
    tagged = [c for c in nb["cells"] if "parameters" in _tags(c)]
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


def held_numbers() -> dict[str, str]:
    """{number as prose would type it: where it is held} for the numbers a notebook's prose must paste with glue
    (`lumina.glued`), never type: the paper's decimal values (`lumina.paper`) and every metric of a stored
    `full` result, at 2 decimals as the tables print them."""
    from lumina import paper

    held = {}
    for c in paper.CLAIMS:
        for v in c.value if isinstance(c.value, tuple) else (c.value,):
            if isinstance(v, float):
                held.update({f"{v:g}": f"lumina.paper {c.id}", f"{v:.2f}": f"lumina.paper {c.id}"})
    for f in sorted((ROOT / "results").glob("*/full/*/result.json")):
        for k, v in json.loads(f.read_text()).get("metrics", {}).items():
            if isinstance(v, float) and v >= 1:  # below 1: losses and rates, also typed as config values
                held.setdefault(f"{v:.2f}", f"{f.relative_to(ROOT).parent} {k}")
    return held


@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_prose_pastes_the_numbers_the_code_holds(nb_path):
    """No markdown cell types a number that lumina.paper or a stored result holds: a typed copy silently
    disagrees with the tables once a result changes (glue it: lumina.glued)."""
    held = held_numbers()
    typed = [(i, n, held[n]) for i, c in enumerate(_load(nb_path)["cells"]) if c["cell_type"] == "markdown"
             for n in re.findall(r"(?<![\w.`])\d+\.\d+(?![\w.])", _source(c)) if n in held]
    assert not typed, f"{nb_path.name}: typed numbers (cell, number, held by): {typed}; paste them with glue (lumina.glued)"


def skip_without_data(nb_path: Path) -> None:
    """Chapters list the datasets they need in their metadata (`lumina.data`); skip when one is absent."""
    from lumina.data.common import data_root

    present = {"cifar10": (data_root() / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists(),
               "tinystories": (data_root() / "tinystories").is_dir()}
    missing = [d for d in _load(nb_path).get("metadata", {}).get("lumina", {}).get("data", []) if not present.get(d)]
    if missing:
        pytest.skip(f"{nb_path.name} needs {', '.join(missing)} under LUMINA_DATA={data_root()} (see README, Data)")


# ---- (b) every chapter, once, against a temporary results store -----------------------------------------
def link_published(src: Path, dst: Path) -> None:
    """Make `dst` a results store holding links to the committed results of `src` (results/<experiment>/full,
    .../paper, committed files such as tokenizers); everything else written to `dst` stays in `dst`."""
    for exp in sorted(src.iterdir()) if src.is_dir() else []:
        if not exp.is_dir():
            continue
        (dst / exp.name).mkdir(parents=True, exist_ok=True)
        for child in exp.iterdir():
            if child.name in PUBLISHED or child.is_file():
                (dst / exp.name / child.name).symlink_to(child, target_is_directory=child.is_dir())


def execute(nb_path: Path, out: Path, env: dict[str, str], profile: str = "smoke") -> tuple[float, str | None]:
    """Run a notebook with papermill in its own folder, the kernel seeing `env` on top of os.environ.
    Returns (seconds, None) or (seconds, the failing cell and its error)."""
    import papermill as pm

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(nb_path), str(out), parameters={"profile": profile}, kernel_name="python3",
                            cwd=str(nb_path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT)
        return time.perf_counter() - t0, None
    except pm.PapermillExecutionError as e:  # name the cell, not papermill's internals
        return time.perf_counter() - t0, f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """nb_path -> (executed copy, seconds, error or None); each chapter is executed at most once per session."""
    pytest.importorskip("papermill")
    base = tmp_path_factory.mktemp("chapters")
    link_published(ROOT / "results", base / "results")
    env = {"LUMINA_RESULTS": str(base / "results"), "LUMINA_RUNS": str(base / "runs"), "LUMINA_PROGRESS": "0"}
    done: dict[Path, tuple[Path, float, str | None]] = {}

    def run(nb_path: Path):
        if nb_path not in done:
            out = base / "executed" / nb_path.name
            out.parent.mkdir(exist_ok=True)
            done[nb_path] = (out, *execute(nb_path, out, env))
        return done[nb_path]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NB_PARAMS)
def test_chapter_runs_in_smoke_profile(nb_path, smoke_run):
    skip_without_data(nb_path)
    _, seconds, error = smoke_run(nb_path)
    if error:
        pytest.fail(f"{nb_path.relative_to(ROOT)} failed with profile=smoke in {error}", pytrace=False)
    if "playground" in nb_path.stem:
        assert seconds < PLAYGROUND_LIMIT_S, f"{nb_path.name} took {seconds:.0f} s; it promises seconds per cell"


# ---- (c) published numbers: nbval ------------------------------------------------------------------------
def _fixture_chapter(path: Path) -> None:
    """A chapter in miniature: a parameters cell, a checked cell that prints a table of a stored result read
    from $LUMINA_RESULTS, and an ordinary cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "full"')
    params.metadata["tags"] = ["parameters"]
    check = nbformat.v4.new_code_cell(
        "import json, os\nfrom lumina.tables import show_table\n"
        "r = json.load(open(os.path.join(os.environ['LUMINA_RESULTS'], 'toy', 'full', 'result.json')))\n"
        "show_table([{'model': 'LuminaNet-64', 'top-1 (%)': r['top1'], 'seeds': 2}])")
    check.metadata["tags"] = [CHECK]
    nb.cells = [params, check, nbformat.v4.new_code_cell("print('profile', profile)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_nbval_checks_the_stored_published_outputs_and_names_the_cell(tmp_path, monkeypatch):
    """scripts/update_outputs.py stores a checked cell's output (and no other); nbval passes while the result
    is unchanged, and a published top-1 moved by 0.01 fails it, naming the notebook and the cell."""
    pytest.importorskip("nbval")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import update_outputs
    finally:
        sys.path.pop(0)
    src = tmp_path / "09_toy.ipynb"
    _fixture_chapter(src)
    store = tmp_path / "results" / "toy" / "full"
    store.mkdir(parents=True)
    (store / "result.json").write_text(json.dumps({"top1": 64.02}))
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))  # the kernels inherit it
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))
    assert update_outputs.refresh(src) == 1
    assert "LUMINA_LOAD_ONLY" not in os.environ  # set for the kernel only
    env = {**os.environ, "LUMINA_LOAD_ONLY": "1"}
    cells = _load(src)["cells"]
    assert "64.02" in json.dumps(cells[1]["outputs"]) and not cells[0]["outputs"] and not cells[2]["outputs"]

    def nbval() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                               "--nbval-current-env", "--nbval-sanitize-with", str(BOOK / "nbval_sanitize.cfg"),
                               "--rootdir", str(tmp_path), str(src)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
    r = nbval()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    (store / "result.json").write_text(json.dumps({"top1": 64.03}))
    r = nbval()
    assert r.returncode != 0 and "09_toy.ipynb::Cell 1" in r.stdout, r.stdout[-3000:]
    assert "64.02" in r.stdout and "64.03" in r.stdout


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
        nbformat.v4.new_code_cell("from lumina.glued import glue_values\nglue_values(answer=f'{6 * 7.25:.1f}')"),
        nbformat.v4.new_markdown_cell("The glued answer is {glue:text}`answer`."),
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
    if not (book / f"{toc['root']}.md").exists():  # the root is a notebook (the generated verdicts): a stand-in page
        (book / f"{toc['root']}.md").write_text("# LuminaNet Book\n\nThe tool chain's test book: $s_i = \\frac{1}{n}\\sum_j W_{C_j} f_j$.\n")
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
    assert "The glued answer is" in html_page and "43.5" in html_page  # a number pasted by glue (lumina.glued)
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
