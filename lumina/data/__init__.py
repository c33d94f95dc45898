"""Datasets, found through `$LUMINA_DATA` (default `data/`): CIFAR-10 and TinyStories, as tensors in memory."""
from .common import DataError, data_root
from .cifar import augment_batch, load_cifar10, synthetic_images

__all__ = ["DataError", "data_root", "load_cifar10", "synthetic_images", "augment_batch"]
