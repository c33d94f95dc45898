"""The committed results are what they claim to be: a stored network reproduces its stored metrics exactly."""
from __future__ import annotations

import pytest
import torch

from lumina.build import make_task
from lumina.paths import data_root
from lumina.published import cifar10_runs
from lumina.results import load_model, load_result, result_dir

HAVE_CIFAR = (data_root() / "cifar10" / "cifar-10-batches-py" / "test_batch").exists()


@pytest.mark.skipif(not HAVE_CIFAR, reason=f"CIFAR-10 is not under LUMINA_DATA={data_root()}")
def test_committed_cifar10_network_reproduces_its_top1():
    cfg = cifar10_runs("full")["luminanet"][0]
    stored = load_result(cfg)
    if stored is None or not (result_dir(cfg) / "network").exists():
        pytest.skip(f"no committed network for {cfg.key()} (python -m lumina run-set cifar10 --profile full)")
    model = load_model(cfg)  # rebuilt from its graph and per-cluster weights, no throw-away initialisation
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.train.threads)  # the summation order the run was evaluated with
    try:
        got = make_task(cfg).evaluate(model)
    finally:
        torch.set_num_threads(threads)
    assert got["top1"] == stored["metrics"]["test_top1"]
    assert got["top5"] == stored["metrics"]["test_top5"]
    assert model.count_params() == stored["n_params"]


def test_readme_results_section_is_the_one_the_stored_results_generate():
    """The README's results are generated (`python -m lumina report --profile full --readme`), never typed: a
    stored result or benchmark that changes without the README fails here."""
    from lumina.paths import ROOT
    from lumina.report import README_BEGIN, README_END, readme_results

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    section = README_BEGIN + text.split(README_BEGIN, 1)[1].split(README_END, 1)[0] + README_END
    assert section == readme_results("full"), "the README's results are stale: python -m lumina report --profile full --readme"


def test_readme_update_replaces_only_the_results_section(tmp_path):
    from lumina.report import README_BEGIN, README_END, readme_results, update_readme

    f = tmp_path / "README.md"
    f.write_text(f"# Title\n\nbefore\n\n{README_BEGIN}\nold table\n{README_END}\n\nafter\n")
    assert update_readme("full", f) and not update_readme("full", f)  # the second run finds nothing to change
    assert f.read_text() == f"# Title\n\nbefore\n\n{readme_results('full')}\n\nafter\n"
    f.write_text("# no section\n")
    with pytest.raises(ValueError, match="no results section"):
        update_readme("full", f)
