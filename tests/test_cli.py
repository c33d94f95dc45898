"""Errors for people: every mistake a user can type reaches them as one `error:` line and exit status 2.

Each case runs the real command line (`python -m lumina ...`) in a subprocess, with the results store and
the runs folder in temporary folders and a network guard (see `_no_network`) that records any attempt to
connect, so "missing data" is proven not to try a download. Also: `parse_overrides`, relative paths, the
benchmark, GPU and run-queue scripts, the rerun hint of a chapter, and every chapter parameter given a bad value
(papermill: the chapter's first code cell fails with one readable line).
"""
import ast
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lumina.chapters import check_parameters
from lumina.cli import _key_values, _parser, train_command
from lumina.config import parse_overrides, resolve
from lumina.paths import data_root
from lumina.published import RUN_SETS

ROOT = Path(__file__).resolve().parents[1]
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
               "batches.meta")

_GUARD = '''
import socket
def _refuse(self, address, *a, **k):
    with open({log!r}, "a") as f:
        f.write(repr(address) + "\\n")
    raise OSError("network use is not allowed in this test")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
'''


@pytest.fixture
def lumina(tmp_path):
    """Run `python -m lumina ARGS` with LUMINA_RESULTS/LUMINA_RUNS in tmp_path and no network; returns
    (exit status, stdout, stderr lines). `env` adds variables, `cwd` sets the working directory."""
    guard = tmp_path / "guard"
    guard.mkdir()
    attempts = tmp_path / "network_attempts.log"
    (guard / "sitecustomize.py").write_text(_GUARD.format(log=str(attempts)))

    def run(*args, env=None, cwd=ROOT):
        e = {k: v for k, v in os.environ.items() if k not in ("LUMINA_DOWNLOAD", "PYTHONPATH")}
        e.update(LUMINA_RESULTS=str(tmp_path / "results"), LUMINA_RUNS=str(tmp_path / "runs"), LUMINA_PROGRESS="0",
                 PYTHONPATH=str(guard), OMP_NUM_THREADS="1", **(env or {}))
        p = subprocess.run([sys.executable, "-m", "lumina", *args], cwd=cwd, env=e, capture_output=True,
                           text=True, timeout=300)
        assert not attempts.exists(), f"tried the network: {attempts.read_text()}"
        return p.returncode, p.stdout, p.stderr.splitlines()

    return run


def assert_user_error(result, *fragments):
    """Exit status 2, exactly one stderr line, starting `error:`, holding every fragment; no traceback."""
    rc, out, err = result
    assert rc == 2, (rc, out, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in out
    for frag in fragments:
        assert frag in err[0], (frag, err[0])
    return err[0]


# ---- names and values ---------------------------------------------------------------------------
def test_unknown_experiment(lumina):
    assert_user_error(lumina("train", "cifar"), "unknown experiment 'cifar'", "valid:", "cifar10", "synthetic")


def test_unknown_profile(lumina):
    assert_user_error(lumina("train", "synthetic", "--profile", "fast"), "unknown profile 'fast'",
                      "smoke, full, paper")


def test_bad_overrides(lumina):
    assert_user_error(lumina("train", "synthetic", "--set", "width=3"), "unknown config field 'width'", "d_hidden")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden=0"), "d_hidden=0 must be > 0")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden=3x"), "d_hidden", "'3x'")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden"), "--set expects KEY=VALUE")


def test_unknown_run_set_and_launcher(lumina):
    assert_user_error(lumina("run-set", "cifar"), "unknown run set 'cifar'; valid: " + ", ".join(RUN_SETS))
    assert_user_error(lumina("run-set", "cifar10", "--launcher", "slurm"), "unknown launcher 'slurm'; valid: local, submitit")


def test_show(lumina, tmp_path):
    assert_user_error(lumina("show", "bogus"), "unknown experiment 'bogus'", "cifar10_baseline")
    rc, out, err = lumina("show", "cifar10", "--profile", "full")
    assert rc == 0 and out.strip() == f"no stored results for cifar10/full under {tmp_path / 'results' / 'cifar10' / 'full'}"


# ---- data ---------------------------------------------------------------------------------------------
def test_missing_dataset_names_the_folder_and_never_downloads(lumina, tmp_path):
    """A relative LUMINA_DATA pointing at an empty folder: the message names the absolute folder it looked in,
    the variable and the download switch; the network guard proves nothing was fetched."""
    (tmp_path / "empty").mkdir()
    line = assert_user_error(lumina("train", "cifar10", env={"LUMINA_DATA": "empty"}, cwd=tmp_path),
                             "CIFAR-10", "is missing", "LUMINA_DATA", "LUMINA_DOWNLOAD=1")
    assert str(tmp_path / "empty" / "cifar10" / "cifar-10-batches-py") in line


def test_corrupt_cifar_file_is_named(lumina, tmp_path):
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in CIFAR_FILES:
        (folder / name).write_bytes(b"half a download")
    assert_user_error(lumina("train", "cifar10", env={"LUMINA_DATA": str(tmp_path / "data")}),
                      f"{folder / 'data_batch_1'} is corrupt (md5 mismatch")


# ---- units ----------------------------------------------------------------------------------------------
def test_parse_overrides():
    assert parse_overrides(None) == {} and parse_overrides("") == {} and parse_overrides(" ") == {}
    assert parse_overrides({"d_hidden": 32}) == {"d_hidden": 32}
    assert parse_overrides('{"connect_k": 8, "lr": 0.01}') == {"connect_k": 8, "lr": 0.01}
    with pytest.raises(ValueError, match="not valid JSON.*such as"):
        parse_overrides("{connect_k: 8}")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_overrides("[8]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_overrides(8)


def test_resolve_takes_overrides_as_papermill_passes_them():
    """`-p overrides '{"connect_k": 8}'` reaches a notebook as a string; resolve accepts it as is."""
    base = resolve("synthetic", "smoke")
    assert resolve("synthetic", "smoke", overrides='{"connect_k": 3}').evolution.connect_k == 3
    assert resolve("synthetic", "smoke", overrides={"d_hidden": 12}, seed=4).model.d_hidden == 12
    assert resolve("synthetic", "smoke", overrides=None) == base
    assert resolve("synthetic", "smoke", **parse_overrides('{"seed": 2}')).train.seed == 2
    with pytest.raises(ValueError, match="unknown config field 'bogus'; valid fields: .*d_hidden"):
        resolve("synthetic", "smoke", overrides=json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match="not valid JSON"):
        resolve("synthetic", "smoke", overrides="{'connect_k': 8}")
    with pytest.raises(ValueError, match="unknown experiment 'bogus'; valid: .*synthetic"):
        resolve("bogus")
    with pytest.raises(ValueError, match="unknown profile 'big'; valid: smoke, full, paper"):
        resolve("synthetic", "big")


def test_relative_data_root_is_resolved_once(tmp_path, monkeypatch):
    """Read once from where it was set, then written back absolute: a notebook kernel started later in
    book/chapters/ sees the same folder instead of creating a stray one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LUMINA_DATA", "rel/data")
    assert data_root() == tmp_path / "rel" / "data"
    assert os.environ["LUMINA_DATA"] == str(tmp_path / "rel" / "data")
    monkeypatch.chdir(ROOT / "book")
    assert data_root() == tmp_path / "rel" / "data"
    monkeypatch.setenv("LUMINA_DATA", "~/x")
    assert data_root() == Path.home() / "x"
    monkeypatch.delenv("LUMINA_DATA")
    assert data_root() == ROOT / "data"


def test_train_command_carries_every_override():
    """Chapter 2's "rerun from the shell" hint: the command, parsed as the shell and the CLI would, resolves
    to the very config the chapter ran (it used to drop every override but the seed)."""
    cfg = resolve("evolution", "full", seed=3, overrides='{"connect_k": 8, "aggregate": "sum", "lr": 0.001}')
    cmd = train_command(cfg)
    assert cmd.startswith("python -m lumina train evolution --profile full ") and "--set connect_k=8" in cmd
    a = _parser().parse_args(shlex.split(cmd)[3:])
    assert resolve(a.name, a.profile, **_key_values(a.set, "--set")) == cfg
    assert train_command(resolve("evolution", "smoke")) == "python -m lumina train evolution --profile smoke"


# ---- the other entry points: benchmarks, the GPU script, the README -----------------------------------------
def test_benchmarks_help_unknown_part_and_missing_data(tmp_path):
    """`python -m benchmarks --help` printed "unknown benchmark part(s) ['--help']" with exit status 1."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LUMINA_DATA": str(tmp_path)}
    bench = lambda *args: subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                                         capture_output=True, text=True, timeout=300)
    p = bench("--help")
    assert p.returncode == 0 and "python -m benchmarks executor epoch" in p.stdout and not p.stderr, p.stderr
    p = bench("bogus")
    assert_user_error((p.returncode, p.stdout, p.stderr.splitlines()), "unknown benchmark part(s) ['bogus']", "--help")
    p = bench("epoch")  # no CIFAR-10 under LUMINA_DATA: the data error's line, not a traceback
    assert_user_error((p.returncode, p.stdout, p.stderr.splitlines()), "benchmark epoch: CIFAR-10", "LUMINA_DATA")


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="the script's default python is .venv's")
def test_gpu_script_uses_the_project_python_and_says_why_it_stops():
    """`bash scripts/gpu_run_set.sh gpu paper` as the README shows it: the project's python (the system python3
    has no torch: it ended in ModuleNotFoundError), and on a machine without CUDA one `error:` line."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine would start the run set")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    p = subprocess.run(["bash", "scripts/gpu_run_set.sh", "gpu", "paper"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert_user_error((p.returncode, p.stdout, p.stderr.splitlines()), "no CUDA device")
    p = subprocess.run(["bash", "scripts/gpu_run_set.sh"], cwd=ROOT, env={**env, "PYTHON": "no-such-python"},
                       capture_output=True, text=True, timeout=60)
    assert_user_error((p.returncode, p.stdout, p.stderr.splitlines()), "no-such-python not found", "make venv")


def test_readme_rerun_section_names_real_run_sets_and_the_data_variable():
    """The run sets README's "Rerun things" lists exist (the chapters' ones among them), and it says where the
    data must be before the first command."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Rerun things"):]
    section = section[: section.index("\n## ", 3)]
    listed = re.search(r"# every run a chapter shows .*?; sets: (.*?)\n\.venv", section, re.S).group(1)
    names = [n.strip(" #\n") for n in listed.replace("\n#", " ").split(",")]
    assert set(names) <= set(RUN_SETS), sorted(set(names) - set(RUN_SETS))
    assert {"cifar10", "cifar10_widths", "cifar10_ablation", "tinystories", "tinystories_controls"} <= set(names)
    assert section.index("export LUMINA_DATA=") < section.index("-m lumina train")


# ---- chapter parameters ---------------------------------------------------------------------------------
CHAPTERS = ROOT / "book" / "chapters"
# One bad value per parameter name (the same rule wherever the name is used), and what the message must say.
BAD = {
    "profile": ("bogus", "unknown profile 'bogus'; valid: smoke, full, paper"),
    "seed": (-1, "seed=-1 must be an integer in [0, "),
    "d_hidden": (0, "d_hidden=0 must be an integer in [1, "),
    "size": (0, "size=0 must be an integer in [1, "),
    "retrain": ("yes", "retrain must be True or False, got 'yes'"),
    "n_random": (0, "n_random=0 must be an integer in [2, "),
    "aggregate": ("max", "aggregate='max'; valid: 'mean', 'sum'"),
    "overrides": ('{"bogus": 1}', "unknown config field 'bogus'"),  # text, as papermill -p passes it
    "quick": ('{"epochs": -1}', "quick: invalid config for evolution/smoke: epochs=-1"),
}


def chapter_parameters(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)]


CASES = [pytest.param(nb, name, id=f"{nb.stem}-{name}") for nb in sorted(CHAPTERS.glob("*.ipynb"))
         for name in chapter_parameters(nb)]


def test_every_chapter_parameter_has_a_rule_and_its_defaults_pass():
    unruled = [p.id for p in CASES if p.values[1] not in BAD]
    assert not unruled, f"chapter parameters without a bad value to test (and maybe without a rule): {unruled}"
    for nb in sorted(CHAPTERS.glob("*.ipynb")):  # the defaults themselves are valid
        nb_json = json.loads(nb.read_text(encoding="utf-8"))
        cell = next(c for c in nb_json["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        values = {}
        exec("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"], {}, values)
        check_parameters(experiment="evolution", **values)


def _first_cells(nb_path: Path, out: Path) -> Path:
    """The chapter up to its first code cell after `parameters` (where the check runs): a check that let a bad
    value through must not go on to train."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    i = next(k for k, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    j = next(k for k in range(i + 1, len(cells)) if cells[k]["cell_type"] == "code")
    nb["cells"] = cells[: j + 1]
    out.write_text(json.dumps(nb), encoding="utf-8")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("nb_path, name", CASES)
def test_a_bad_chapter_parameter_fails_the_first_code_cell_with_one_line(tmp_path, nb_path, name):
    """papermill with one bad value: the cell after `parameters` raises a ValueError whose one line names the
    parameter (before: ZeroDivisionError, StatisticsError, TypeError, or a chapter that ran to the end)."""
    pm = pytest.importorskip("papermill")
    value, fragment = BAD[name]
    src = _first_cells(nb_path, tmp_path / nb_path.name)
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), parameters={name: value}, kernel_name="python3",
                            cwd=str(CHAPTERS), progress_bar=False, execution_timeout=300)
    e = err.value
    assert e.ename == "ValueError" and fragment in e.evalue and "\n" not in e.evalue, (e.ename, e.evalue)
    executed = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    failed = [c for c in executed["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and "check_parameters(" in "".join(failed[0]["source"])


def test_a_diverging_run_is_one_error_line(monkeypatch, capsys):
    """A NaN loss (`NonFiniteLoss`) ends `train` with one `error:` line naming the step, exit status 1."""
    from lumina import cli, loop

    def diverge(*a, **k):
        raise loop.NonFiniteLoss("loss is nan at step 51 of synthetic/smoke; last good checkpoint: none (kept). "
                                 "Lower lr or enable grad_clip.")
    monkeypatch.setattr("lumina.results.train_or_load_state", diverge)
    assert cli.main(["train", "synthetic", "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: loss is nan at step 51") and err.count("\n") == 1 and "Traceback" not in err


def test_run_queue_takes_its_runs_from_the_run_sets(monkeypatch, capsys):
    """`scripts/run_queue.py NAME:PROFILE:INDEX` trains the INDEX-th run of `RUN_SETS[NAME]`, NAME:PROFILE all of
    them in order; an index past the end is one `error:` line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_queue", ROOT / "scripts" / "run_queue.py")
    queue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(queue)
    trained = []
    monkeypatch.setattr(queue, "train", lambda cfg, no_weights: trained.append(cfg.key()) or {"metrics": {}})
    want = [c.key() for c in RUN_SETS["cifar10_short"]("smoke")]
    queue.run("cifar10_short:smoke:1")
    assert trained == [want[1]]
    queue.run("cifar10_short:smoke")
    assert trained[1:] == want
    with pytest.raises(SystemExit, match=f"error: .*lists {len(want)} runs"):
        queue.run(f"cifar10_short:smoke:{len(want)}")


def test_run_queue_until_parks_the_run_in_progress_and_stops(monkeypatch):
    """`--until=HH:MM`: the run in progress gets that moment as its deadline and is parked; the queue stops
    there (raising Parked, which the script prints) instead of starting the next run; a bad time is one error."""
    import datetime
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_queue", ROOT / "scripts" / "run_queue.py")
    queue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(queue)
    at = queue.until("23:59")
    assert datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%H:%M") == "23:59"
    with pytest.raises(SystemExit, match="error: --until=noon: expected HH:MM"):
        queue.until("noon")
    calls = []
    monkeypatch.setattr(queue, "train_or_load_state", lambda cfg, **kw: calls.append(kw) or ("stopped", {}))
    monkeypatch.setitem(queue.DEADLINE, "at", at)
    with pytest.raises(queue.Parked, match="parked .* run the same queue again"):
        queue.run("cifar10_short:smoke")
    assert calls == [{"park": True, "deadline": at}]  # the first run parked; the others never started


def test_step_bound_replays_every_product_of_the_step(tmp_path, monkeypatch):
    """`python -m benchmarks step_bound`: the products it replays are the step's own (with the gate products it
    leaves to the gathers, their FLOPs are FlopCounterMode's count of the same forward + backward), every part is
    timed, and the bound is the reference over products and update."""
    import importlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    common = importlib.import_module("benchmarks.common")
    bench = importlib.import_module("benchmarks.step_bound")
    monkeypatch.setitem(common.OUT, "dir", tmp_path)
    bench.main(["--reps", "1", "--batch", "8", "--d-hidden", "16", "--clusters", "16", "--no-headline"])
    (row,) = json.loads((tmp_path / "step_bound.json").read_text())["rows"]
    m = common.evolved_like(16, 16)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with FlopCounterMode(display=False) as fc:
        common.training_step(m, x, y)()
    assert 1e9 * (row["products_gflop"] + row["gate_gflop"]) == pytest.approx(fc.get_total_flops())
    assert row["products_gflop"] > 0 and row["gate_gflop"] == 0  # the kernel gathers (`lumina.gather`): no gate products
    assert all(row[f"{k}_ms"] > 0 for k in ("reference", "fast", "products", "products_alone", "gelu", "gathers", "optimizer"))
    assert row["bound"] == pytest.approx(row["reference_ms"] / (row["products_alone_ms"] + row["optimizer_ms"]))
    assert row["budget_ms"] == pytest.approx(row["reference_ms"] / 2.5)
    assert row["fast_torch_ops_ms"] > 0 and row["gathers_torch_ops_ms"] > 0  # the kernel's saving, side by side
    assert bench.is_gate_product("aten::bmm", [[4, 1, 3], [4, 3, 128]]) and not bench.is_gate_product("aten::bmm", [[4, 8, 16], [4, 16, 16]])
    from lumina import gather  # in torch ops, the gate products are told apart from the step's other products
    with gather.torch_ops():
        bench.main(["--reps", "1", "--batch", "8", "--d-hidden", "16", "--clusters", "16", "--no-headline"])
    (row,) = json.loads((tmp_path / "step_bound.json").read_text())["rows"]
    assert 1e9 * row["products_gflop"] == pytest.approx(fc.get_total_flops())  # the same products, and the gates'
    assert row["gate_gflop"] > 0 and row["products_gflop"] > 10 * row["gate_gflop"]


def test_step_profile_partitions_the_step(tmp_path, monkeypatch):
    """`python -m benchmarks step_profile`: the kinds' shares partition forward + backward CPU time (they sum to
    1, matrix products among them), the three phases are timed, and operators are counted per step."""
    import importlib

    common = importlib.import_module("benchmarks.common")
    step_profile = importlib.import_module("benchmarks.step_profile")
    monkeypatch.setitem(common.OUT, "dir", tmp_path)
    step_profile.main(["--reps", "1", "--batch", "8"])
    got = json.loads((tmp_path / "step_profile.json").read_text())
    assert set(got["phases_ms"]) == {"forward", "backward", "optimizer"} and all(v > 0 for v in got["phases_ms"].values())
    shares = {k["kind"]: k["share"] for k in got["kinds"]}
    assert sum(shares.values()) == pytest.approx(1.0) and shares["matrix products"] > 0.05
    assert step_profile.kind("aten::bmm") == "matrix products" and step_profile.kind("AccumulateGrad") == step_profile.AUTOGRAD
    assert step_profile.kind("_GatherBackward") == "gathers, stacks and copies"  # the kernel's time, not the engine's
    assert got["ops_per_step"] > 100
    assert got["optimizer_eager_ms"] > 0  # the eager update, timed beside the compiled one
    from lumina.optim import FUSED
    assert FUSED["on"]  # and the benchmark leaves the process training compiled


def test_gpu_epochs_times_the_gpu_sets_models_and_sums_the_set(tmp_path, monkeypatch):
    """`python -m benchmarks gpu_epochs`: each model of the `gpu` run set timed as its run would train it (here on
    the CPU, the only device CI has), the set's minutes the sum of epoch × epochs over the models counted
    (LuminaNet at its grown network's rate where a stored topology gives one); without CUDA, one `error:` line."""
    import importlib

    import torch

    from lumina.published import gpu_runs

    if not gpu_runs():
        pytest.skip("the gpu run set needs the stored choice grid")
    common = importlib.import_module("benchmarks.common")
    bench = importlib.import_module("benchmarks.gpu_epochs")
    monkeypatch.setitem(common.OUT, "dir", tmp_path)
    bench.main(["--device", "cpu", "--steps", "1", "--models", "lenet5,luminanet"])
    got = json.loads((tmp_path / "gpu_epochs.json").read_text())
    rows = {r["model"]: r for r in got["rows"]}
    assert "lenet5" in rows and any(r["arch"] == "luminanet" and not r["grown"] for r in got["rows"])
    assert all(r["epoch_s"] == pytest.approx(r["step_ms"] / 1e3 * 390) and r["epochs"] == 30 for r in got["rows"])
    grown = [r for r in got["rows"] if r["grown"]]
    counted = [r for r in got["rows"] if r["arch"] != "luminanet" or r["grown"] or not grown]
    assert got["set_minutes"] == pytest.approx(sum(r["epoch_s"] * r["epochs"] for r in counted) / 60)
    if not torch.cuda.is_available():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        p = subprocess.run([sys.executable, "-m", "benchmarks", "gpu_epochs"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
        assert_user_error((p.returncode, p.stdout, p.stderr.splitlines()), "no CUDA device")


def test_baseline_epochs_times_the_chosen_table_beside_float32(tmp_path, monkeypatch, capsys):
    """`python -m benchmarks baseline_epochs`: float32 and the fast path of the table asked for (or this CPU's)
    timed side by side; the stored JSON names the table, and each row's minutes per epoch are its median step
    times 390 steps."""
    import importlib

    from lumina.baselines.vision import FAST_PATHS

    common = importlib.import_module("benchmarks.common")
    bench = importlib.import_module("benchmarks.baseline_epochs")
    monkeypatch.setitem(common.OUT, "dir", tmp_path)
    bench.main(["--steps", "1", "--models", "lenet5", "--table", "bf16", "--try", "bf16+cl"])
    got = json.loads((tmp_path / "baseline_epochs.json").read_text())
    (row,) = got["rows"]
    assert got["table"] == "bf16" and row["fast_path"] == FAST_PATHS["bf16"]["lenet5"]
    assert row["float32_epoch_min"] == pytest.approx(row["float32_cpu_s"] * 390 / 60)
    assert row["fast_epoch_min"] == pytest.approx(row["fast_cpu_s"] * 390 / 60)
    assert "bf16+cl_cpu_s" in row and "bf16+cl x" in capsys.readouterr().out


def test_evolution_event_times_the_stored_network_beside_its_steps(tmp_path, monkeypatch):
    """`python -m benchmarks evolution_event` on the committed headline network: step, event and observe timed
    in one process, and the share they give is the stated formula of the three."""
    import importlib

    from lumina.data.common import data_root

    if not (data_root() / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists():
        pytest.skip("needs CIFAR-10 under LUMINA_DATA")
    common = importlib.import_module("benchmarks.common")
    bench = importlib.import_module("benchmarks.evolution_event")
    monkeypatch.setitem(common.OUT, "dir", tmp_path)
    bench.main(["--reps", "1"])
    got = json.loads((tmp_path / "evolution_event.json").read_text())
    ms = got["ms"]
    assert all(ms[k] > 0 for k in ("step", "event", "observe")) and got["clusters"] > 12
    assert got["share"] == pytest.approx(ms["event"] / (got["evolve_every"] * ms["step"])
                                         + ms["observe"] / (got["load_every"] * ms["step"]))
