"""Datasets, found through `$LUMINA_DATA` (default `data/`): CIFAR-10 and TinyStories, as tensors in memory.

    common      DataError and the download gate (LUMINA_DOWNLOAD=1)
    cifar       CIFAR-10 batches, normalisation, batch augmentation
    stories     TinyStories files, the hub, the split policy
    tokenizer   the byte-level BPE, its cache, token bytes, token streams
The data package knows no model and no results store: paths come from `lumina.paths`.
"""
from .common import DataError, data_root
from .cifar import augment_batch, load_cifar10, synthetic_images

__all__ = ["DataError", "data_root", "load_cifar10", "synthetic_images", "augment_batch"]
