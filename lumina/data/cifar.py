"""CIFAR-10 (md5 checked file by file, read by torchvision), kept in memory as uint8 tensors; batch augmentation.

On two cores a DataLoader with workers is slower than indexing one in-memory tensor, so batches are sliced
from it and augmented (random crop with padding 4, horizontal flip) as whole tensors.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .common import DataError, data_root, downloading, downloads_allowed, not_found

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
HOW_TO_GET = ("Get the python version (cifar-10-batches-py/, https://www.cs.toronto.edu/~kriz/cifar.html) and "
              "put it in a folder `cifar10/` under LUMINA_DATA.")


def _verify(root: Path) -> None:
    """Name the first missing or corrupt file (torchvision only says 'corrupted or not found')."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    for name, md5 in CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]:
        f = folder / name
        if not f.exists():
            raise not_found(f"CIFAR-10 file {f.name}", folder, "cifar10", HOW_TO_GET)
        if hashlib.md5(f.read_bytes()).hexdigest() != md5:
            raise DataError(f"CIFAR-10 file {f} is corrupt (md5 mismatch, expected {md5}). "
                            f"Delete {folder} and get a fresh copy: {HOW_TO_GET}")


def load_cifar10(train: bool, subset: int = 0, root: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64, the first `subset` examples if subset > 0.

    A missing copy is downloaded only with `LUMINA_DOWNLOAD=1`; otherwise, or when that fails, `DataError`.
    """
    from torchvision.datasets import CIFAR10

    root = Path(root) if root is not None else data_root() / "cifar10"
    folder = root / CIFAR10.base_folder
    if not folder.exists() and downloads_allowed():
        with downloading("CIFAR-10", folder, "cifar10", HOW_TO_GET):
            CIFAR10(root=str(root), train=train, download=True)
    _verify(root)  # names the first missing or corrupt file
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
    return (x.float() / 255 - MEAN.to(x.device)) / STD.to(x.device)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding `pad` and a random horizontal flip, for a whole (B, C, H, W) batch."""
    B, C, H, W = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    flip = torch.rand(B, generator=gen) < 0.5
    # random numbers come from the CPU generator, so a seed gives the same crops on every device
    dy, dx, flip = dy.to(x.device), dx.to(x.device), flip.to(x.device)
    rows = (dy.view(B, 1) + torch.arange(H, device=x.device)).view(B, 1, H, 1).expand(B, C, H, W + 2 * pad)
    cols = (dx.view(B, 1) + torch.arange(W, device=x.device)).view(B, 1, 1, W)
    cols = torch.where(flip.view(B, 1, 1, 1), cols.flip(-1), cols).expand(B, C, H, W)
    return xp.gather(2, rows).gather(3, cols)  # crop rows, then crop (and maybe mirror) columns
