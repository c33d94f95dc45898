"""The book's notebooks: committed clean, every chapter runs once in the `smoke` profile, and the published
numbers are a regression test.

(a) hygiene of every book/**/*.ipynb (not _build): no outputs, no execution counts, exactly one cell tagged
    `parameters` that sets `profile`, kernelspec `python3`;
(b) papermill runs every chapter ONCE per test session with `-p profile smoke` (working directory = the
    notebook's folder), against a temporary results store: smoke runs are written there, never into the
    repository (where results of older code would be reused); the committed `full`/`paper` results are linked
    into it, so cells that show published tables still find them. The executed copies are shared by (b) and (c);
(c) published numbers: the cells tagged `regression` print a chapter's results from committed `full` results
    (whatever the profile). Their text output in the executed copy of (b) is compared with
    tests/expected/<chapter>.txt; a change that moves a published number fails, naming the chapter and cell.
    After a deliberate change (new results), regenerate them all:
    LUMINA_UPDATE_EXPECTED=1 pytest tests/test_notebooks.py -k published_outputs
    The mechanism itself is tested on a tiny fixture notebook (no model, no dataset);
(d) the book tool chain on a throwaway chapter (figure, math, offline pyvis graph) in a temporary copy of
    the book: scripts/build_book.py (papermill, jupyter-book -W) and scripts/check_browser.py (chromium).
(b), (c) and (d) are marked `slow` and run by default; they are skipped while no chapter exists.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
EXPECTED = ROOT / "tests" / "expected"
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
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{nb_path.name}: cells {dirty} carry outputs or execution counts; commit notebooks without "
                       f"them: jupyter nbconvert --clear-output --inplace {nb_path.relative_to(ROOT)}")
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


# ---- (c) published numbers -------------------------------------------------------------------------------
def regression_cells(nb: dict) -> list[tuple[int, dict]]:
    """(index, cell) of the cells tagged `regression`, in order."""
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and "regression" in _tags(c)]


def cell_name(index: int, cell: dict) -> str:
    """How a failure names a cell: its index in the source notebook and its first line."""
    first = next((line.strip() for line in _source(cell).splitlines() if line.strip()), "")
    return f"cell {index}: {first[:70]}"


def output_text(cell: dict) -> str:
    """A cell's outputs as text: streams, the text/plain of results and displays, errors. Trailing spaces go."""
    parts = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            parts.append(_source({"source": o["text"]}))
        elif o["output_type"] in ("execute_result", "display_data"):
            parts.append(_source({"source": o["data"].get("text/plain", "")}) + "\n")
        elif o["output_type"] == "error":
            parts.append(f"{o['ename']}: {o['evalue']}\n")
    return "\n".join(line.rstrip() for line in "".join(parts).splitlines()).strip("\n") + "\n"


def regression_outputs(source: Path, executed: Path) -> dict[str, str]:
    """{cell name: text output} of the `regression` cells: names from the source notebook, outputs from its
    executed copy (papermill inserts one cell, so cells are matched by their order among `regression` cells)."""
    names = [cell_name(i, c) for i, c in regression_cells(_load(source))]
    outs = [output_text(c) for _, c in regression_cells(_load(executed))]
    assert len(names) == len(outs), f"{executed} holds {len(outs)} regression cells, the source {len(names)}"
    return dict(zip(names, outs))


def write_expected(path: Path, source: Path, outputs: dict[str, str]) -> None:
    head = (f"# Text output of the cells tagged `regression` in {source.relative_to(source.parents[2])}, printed "
            "from the committed\n# `full` results. Regenerate after a deliberate change (new results):\n"
            "#   LUMINA_UPDATE_EXPECTED=1 pytest tests/test_notebooks.py -k published_outputs\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "".join(f"## {name}\n{text}" for name, text in outputs.items()), encoding="utf-8")


def read_expected(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("## "):
            name = line[3:].rstrip("\n")
            out[name] = ""
        elif name is not None:
            out[name] += line
    return out


def compare_expected(chapter: str, expected: dict[str, str], got: dict[str, str]) -> list[str]:
    """Sentences naming the chapter and cell of every difference, with a diff of the text."""
    problems = [f"{chapter}, {n}: expected output, but the cell is gone" for n in expected if n not in got]
    problems += [f"{chapter}, {n}: new regression cell without expected output" for n in got if n not in expected]
    for n in expected.keys() & got.keys():
        if expected[n] != got[n]:
            diff = difflib.unified_diff(expected[n].splitlines(), got[n].splitlines(), "expected", "now", lineterm="")
            problems.append(f"{chapter}, {n}: the published output changed\n" + "\n".join(diff))
    return problems


def check_regression(chapter: str, source: Path, executed: Path, expected_file: Path) -> None:
    got = regression_outputs(source, executed)
    if os.environ.get("LUMINA_UPDATE_EXPECTED") == "1":
        write_expected(expected_file, source, got)
        return
    if not expected_file.exists():
        pytest.fail(f"{chapter}: no {expected_file.relative_to(expected_file.parents[2])} for its "
                    f"{len(got)} regression cell(s); write it with LUMINA_UPDATE_EXPECTED=1", pytrace=False)
    problems = compare_expected(chapter, read_expected(expected_file), got)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


REGRESSION = [p for p in NB_PARAMS if p.values[0] is not None and regression_cells(_load(p.values[0]))] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="no chapter has a `regression` cell yet"))]


@pytest.mark.slow
@pytest.mark.parametrize("nb_path", REGRESSION)
def test_published_outputs_are_unchanged(nb_path, smoke_run):
    skip_without_data(nb_path)
    executed, _, error = smoke_run(nb_path)
    if error:
        pytest.fail(f"{nb_path.name} did not run (profile=smoke), so its published outputs were not checked: "
                    f"{error}", pytrace=False)
    check_regression(nb_path.stem, nb_path, executed, EXPECTED / f"{nb_path.stem}.txt")


def _fixture_chapter(path: Path) -> None:
    """A chapter in miniature: a parameters cell, a `regression` cell that prints a table of a stored result
    read from $LUMINA_RESULTS (whatever the profile), and an ordinary cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "full"')
    params.metadata["tags"] = ["parameters"]
    reg = nbformat.v4.new_code_cell(
        "import json, os\nfrom lumina.tables import show_table\n"
        "r = json.load(open(os.path.join(os.environ['LUMINA_RESULTS'], 'toy', 'full', 'result.json')))\n"
        "show_table([{'model': 'LuminaNet-64', 'top-1 (%)': r['top1'], 'seeds': 2}])")
    reg.metadata["tags"] = ["regression"]
    nb.cells = [params, reg, nbformat.v4.new_code_cell("print('profile', profile)")]
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_regression_mechanism_names_chapter_and_cell(tmp_path):
    """A published top-1 moved by 0.01 fails the comparison, naming the chapter and the cell; the profile
    the chapter runs with does not matter."""
    pytest.importorskip("papermill")
    src = tmp_path / "book" / "chapters" / "09_toy.ipynb"
    src.parent.mkdir(parents=True)
    _fixture_chapter(src)
    store = tmp_path / "results"
    (store / "toy" / "full").mkdir(parents=True)
    result = store / "toy" / "full" / "result.json"
    env = {"LUMINA_RESULTS": str(store), "LUMINA_RUNS": str(tmp_path / "runs")}
    expected_file = tmp_path / "tests" / "expected" / "09_toy.txt"

    result.write_text(json.dumps({"top1": 64.02}))
    _, err = execute(src, tmp_path / "a.ipynb", env, profile="smoke")
    assert err is None, err
    write_expected(expected_file, src, regression_outputs(src, tmp_path / "a.ipynb"))
    assert "64.02" in expected_file.read_text() and "## cell 1: import json, os" in expected_file.read_text()
    check_regression("09_toy", src, tmp_path / "a.ipynb", expected_file)  # unchanged: passes

    result.write_text(json.dumps({"top1": 64.03}))
    _, err = execute(src, tmp_path / "b.ipynb", env, profile="full")
    assert err is None, err
    problems = compare_expected("09_toy", read_expected(expected_file), regression_outputs(src, tmp_path / "b.ipynb"))
    assert len(problems) == 1 and problems[0].startswith("09_toy, cell 1: import json, os: the published output changed")
    assert "64.02" in problems[0] and "64.03" in problems[0]
    with pytest.raises(pytest.fail.Exception, match="09_toy, cell 1"):
        check_regression("09_toy", src, tmp_path / "b.ipynb", expected_file)


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
