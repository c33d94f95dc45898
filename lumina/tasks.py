"""What an experiment trains on: the `Task` interface, and the image task (CIFAR-10 or synthetic images).

A task owns its data and objective; the loop (`lumina.loop`) only calls what `Task` declares. The text task
(TinyStories next-token prediction) is `lumina.text.TextTask`; `lumina.build.make_task(cfg)` picks one.
"""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from . import metrics
from .config import ExperimentConfig
from .data.cifar import augment_batch, load_cifar10, normalize, synthetic_images

VALIDATION_IMAGES = 5000  # CIFAR-10's validation split: the last 5,000 training images (the intro: how a comparison is run)


class Task(Protocol):
    n_out: int  # classes, or the vocabulary size

    @property
    def n_train(self) -> int: ...  # training examples (images, or windows of text)

    def to(self, device: torch.device) -> "Task": ...  # keep the data resident on the training device

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def evaluate(self, model) -> dict: ...  # {"top1", "top5", "loss", ...} on the evaluation split

    def example(self) -> torch.Tensor: ...  # one model input, for FLOP counts


def n_slots_for_images(patch: int, image_shape=(3, 32, 32)) -> int:
    """Channel-wise p×p patches of an image [paper]: 3×32×32 with p=16 gives 12 slots."""
    c, h, w = image_shape
    return c * (h // patch) * (w // patch)


class ImageTask:
    """CIFAR-10 (or synthetic images): classification with label smoothing. With `cfg.data.validation`,
    training uses the first 45,000 training images and evaluation the last 5,000; otherwise the test set."""

    n_out = 10

    def __init__(self, cfg: ExperimentConfig):
        d = cfg.data
        if d.dataset == "cifar10":
            x, y = load_cifar10(True)
            if d.validation:
                self.x_train, self.y_train = x[:-VALIDATION_IMAGES], y[:-VALIDATION_IMAGES]
                self.x_test, self.y_test = x[-VALIDATION_IMAGES:], y[-VALIDATION_IMAGES:]
            else:
                self.x_train, self.y_train = x, y
                self.x_test, self.y_test = load_cifar10(False)
        else:
            self.x_train, self.y_train = synthetic_images(d.train_subset or 2048, seed=1)
            self.x_test, self.y_test = synthetic_images(d.test_subset or 512, seed=2)
        if d.train_subset:
            self.x_train, self.y_train = self.x_train[:d.train_subset], self.y_train[:d.train_subset]
        if d.test_subset:
            self.x_test, self.y_test = self.x_test[:d.test_subset], self.y_test[:d.test_subset]
        self.augment, self.smoothing = cfg.train.augment, cfg.train.label_smoothing

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def to(self, device) -> "ImageTask":
        for k in ("x_train", "y_train", "x_test", "y_test"):
            setattr(self, k, getattr(self, k).to(device))
        return self

    def batch(self, idx: torch.Tensor, gen: torch.Generator):
        idx = idx.to(self.x_train.device)
        x = self.x_train[idx]
        if self.augment:
            x = augment_batch(x, gen)
        return normalize(x), self.y_train[idx]

    def loss(self, logits, y):
        return F.cross_entropy(logits, y, label_smoothing=self.smoothing)

    def evaluate(self, model) -> dict:
        return metrics.evaluate(model, self.x_test, self.y_test, normalize)

    def example(self) -> torch.Tensor:
        return normalize(self.x_test[:1])
