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
