"""Shared test setup: small, single-process, deterministic, offline."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LUMINA_PROGRESS", "0")  # no tqdm bars in test logs

import pytest
import torch

torch.set_num_threads(int(os.environ.get("LUMINA_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
