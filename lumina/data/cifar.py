"""CIFAR-10 through torchvision (its md5 checks), kept in memory as uint8 tensors; augmentation in batches.

On two cores a DataLoader with workers is slower than indexing one in-memory tensor, so batches are sliced
from it and augmented (random crop with padding 4, horizontal flip) as whole tensors.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .common import DataError, data_root, online

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _verify(root: Path) -> None:
    """Name the first missing or corrupt file (torchvision only says 'corrupted or not found')."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    for name, md5 in CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]:
        f = folder / name
        if not f.exists():
            raise DataError(
                f"CIFAR-10 file {f} is missing. Put the python version (cifar-10-batches-py/) under "
                f"{root} (set LUMINA_DATA to its parent folder), or run on a machine with internet to download it.")
        if hashlib.md5(f.read_bytes()).hexdigest() != md5:
            raise DataError(f"CIFAR-10 file {f} is corrupt (md5 mismatch, expected {md5}). "
                            "Delete it and download the dataset again.")


def load_cifar10(train: bool, subset: int = 0, root: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64, the first `subset` examples if subset > 0."""
    from torchvision.datasets import CIFAR10

    root = Path(root) if root is not None else data_root() / "cifar10"
    if not (root / CIFAR10.base_folder).exists() and online():
        CIFAR10(root=str(root), train=train, download=True)
    _verify(root)
    ds = CIFAR10(root=str(root), train=train, download=False)
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    y = torch.tensor(ds.targets, dtype=torch.int64)
    if subset:
        x, y = x[:subset], y[:subset]
    return x, y


def synthetic_images(n: int, seed: int = 0, n_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable stand-in for CIFAR-10 for tests: each class has its own mean image plus noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, 3, 32, 32, generator=torch.Generator().manual_seed(1234)) * 255
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = (protos[y] * 0.6 + torch.rand(n, 3, 32, 32, generator=g) * 255 * 0.4).to(torch.uint8)
    return x, y


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, per-channel standardised."""
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    return (x.float() / 255 - MEAN) / STD


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding `pad` and a random horizontal flip, for a whole (B, C, H, W) batch."""
    B, C, H, W = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    rows = (dy.view(B, 1) + torch.arange(H)).view(B, 1, H, 1).expand(B, C, H, W + 2 * pad)
    cols = (dx.view(B, 1) + torch.arange(W)).view(B, 1, 1, W)
    flip = torch.rand(B, generator=gen) < 0.5
    cols = torch.where(flip.view(B, 1, 1, 1), cols.flip(-1), cols).expand(B, C, H, W)
    return xp.gather(2, rows).gather(3, cols)  # crop rows, then crop (and maybe mirror) columns
