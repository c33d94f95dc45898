"""Accuracy, parameter counts, FLOPs and peak memory, measured the same way for every model."""
from __future__ import annotations

import torch
from torch import nn

from . import gather


@torch.no_grad()
def topk_correct(logits: torch.Tensor, y: torch.Tensor, ks=(1, 5)) -> dict[int, int]:
    top = logits.topk(max(ks), dim=1).indices
    hit = top.eq(y.view(-1, 1))
    return {k: int(hit[:, :k].any(1).sum()) for k in ks}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prepare, batch_size: int = 500) -> dict:
    """Top-1 / top-5 accuracy (%) and mean cross-entropy of `model` on (x, y); `prepare` maps a raw batch
    to the model's input (e.g. normalisation)."""
    was = model.training
    model.eval()
    c1 = c5 = 0
    loss = 0.0
    hits, hits5 = [], []
    for i in range(0, len(x), batch_size):
        logits = model(prepare(x[i:i + batch_size])).float()
        yb = y[i:i + batch_size]
        loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        hits.append(logits.argmax(1).eq(yb).cpu())
        hits5.append(logits.topk(min(5, logits.shape[1]), dim=1).indices.eq(yb.view(-1, 1)).any(1).cpu())
        c = topk_correct(logits, yb)
        c1, c5 = c1 + c[1], c5 + c[5]
    model.train(was)
    n = max(len(x), 1)
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "loss": loss / n,
            "correct": pack_bits(torch.cat(hits)) if hits else "",  # per-example hits: the paired bootstraps
            "correct5": pack_bits(torch.cat(hits5)) if hits5 else ""}


def pack_bits(flags: torch.Tensor) -> str:
    """Per-example correctness (bool) as a compact hex string: what a paired bootstrap over test images needs."""
    import numpy as np

    return np.packbits(flags.numpy().astype(bool)).tobytes().hex()


def unpack_bits(hex_str: str, n: int):
    import numpy as np

    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_str), dtype=np.uint8))[:n].astype(bool)


def count_params(model: nn.Module) -> int:
    """Trainable parameters; for LuminaNet without the zero padding of its packed storage."""
    if hasattr(model, "count_params"):
        return model.count_params()
    return sum(p.numel() for p in model.parameters())


def flops_per_example(model: nn.Module, example: torch.Tensor) -> int:
    """Forward FLOPs for one example (matmuls/convs, 2 per multiply-add), counted by FlopCounterMode.
    Attention runs in the math kernel while counting, and LuminaNet's CL gathers in torch ops
    (`lumina.gather.torch_ops`), since fused CPU kernels are counted as zero. An image LuminaNet counts its own
    from its packing plan (the same number, without the ~0.1 s a counted forward takes at every evolution event)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    if (own := getattr(model, "flops_per_example", None)) is not None and (n := own()) is not None:
        return n

    was = model.training
    model.eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), gather.torch_ops(), FlopCounterMode(display=False) as fc:
        model(example[:1])
    model.train(was)
    return int(fc.get_total_flops())


