"""CIFAR-10 baselines: (B, 3, 32, 32) float images -> (B, num_classes) logits.

Every model except LeNet-5 comes from a well-kept library (torchvision or timm), built
with random weights (never pretrained) and adapted to 32x32 the usual CIFAR way: shrink
or remove the stem's downsampling so the last feature map is not collapsed to 1x1, and
use 4x4 patches for the patch-based models (8x8 = 64 tokens).

Measured with ``python -m lumina.baselines.vision`` (num_classes=10; FLOPs are
torch.utils.flop_counter's count for one forward pass of one (1, 3, 32, 32) image: matmuls,
convolutions and attention at 2 FLOPs per multiply-add; norms, activations and softmax are
not counted):

    name              params  forward FLOPs / image
    lenet5            62,006        1.30 M
    alexnet       28,711,754      403.82 M
    resnet18      11,173,962        1.11 G
    mlp_mixer      4,360,970      605.56 M
    resmlp         3,625,930      473.04 M
    deit_tiny      5,362,762      730.22 M
    mobilevit        954,234      160.35 M
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

__all__ = ["BASELINES", "FAST_PATHS", "build_baseline", "baseline_info", "channels_last", "fast_path", "fast_path_label", "native_bf16"]


class LeNet5(nn.Module):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to
    document recognition", Proc. IEEE 86(11)) for 3x32x32 input.

    conv5-6 -> pool -> conv5-16 -> pool -> fc120 -> fc84 -> fc(num_classes). This is the
    common modern variant: ReLU and 2x2 max-pooling instead of the original scaled tanh and
    trainable sub-sampling, full C3 connectivity and a linear output instead of RBF units.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 32 -> 28 -> 14
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 -> 10 -> 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10) -> nn.Module:
    """LeNet-5, LeCun et al. 1998 (Proc. IEEE 86(11):2278-2324); hand-written, see LeNet5."""
    return LeNet5(num_classes)


def alexnet(num_classes: int = 10) -> nn.Module:
    """AlexNet, Krizhevsky, Sutskever & Hinton 2012 ("ImageNet classification with deep
    convolutional neural networks", NeurIPS), torchvision's single-tower version.

    Adaptation to 32x32: the 11x11/stride-4 stem conv becomes 3x3/stride-1/padding-1 (same
    64 channels); torchvision's three 3x3/stride-2 max-pools stay, giving 32 -> 15 -> 7 -> 3,
    so the last map is 256x3x3. The adaptive avg-pool is set to (3, 3) (a no-op at 32x32)
    and the first classifier Linear takes 256*3*3 inputs; the 4096-4096 dropout MLP is kept.
    """
    from torchvision.models import AlexNet

    model = AlexNet(num_classes=num_classes)
    model.features[0] = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1)
    model.avgpool = nn.AdaptiveAvgPool2d((3, 3))
    model.classifier[1] = nn.Linear(256 * 3 * 3, 4096)
    return model


def resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet-18, He, Zhang, Ren & Sun 2016 ("Deep residual learning for image
    recognition", CVPR; arXiv 1512.03385), torchvision's resnet18.

    CIFAR stem (the common CIFAR ResNet-18): conv1 is 3x3/stride-1/padding-1 and the stem
    max-pool is removed, so the four stages see 32, 16, 8, 4 pixels instead of 8, 4, 2, 1.
    """
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
    model.maxpool = nn.Identity()
    return model


def mlp_mixer(num_classes: int = 10) -> nn.Module:
    """MLP-Mixer, Tolstikhin et al. 2021 ("MLP-Mixer: An all-MLP architecture for vision",
    NeurIPS; arXiv 2105.01601), timm's MlpMixer.

    Small CIFAR variant: 4x4 patches (64 tokens), 8 blocks, width 256, timm's default MLP
    ratios (0.5, 4.0), i.e. token-mixing hidden 128 and channel-mixing hidden 1024.
    """
    from timm.models.mlp_mixer import MlpMixer

    return MlpMixer(num_classes=num_classes, img_size=32, patch_size=4, num_blocks=8, embed_dim=256)


def resmlp(num_classes: int = 10) -> nn.Module:
    """ResMLP, Touvron et al. 2021 ("ResMLP: Feedforward networks for image classification
    with data-efficient training", arXiv 2105.03404; IEEE TPAMI 2023), built as timm builds
    resmlp_12: MlpMixer with ResBlock (linear token mixing + LayerScale, timm's init 1e-4)
    and Affine "norm".

    Small CIFAR variant: 4x4 patches (64 tokens), 12 blocks, width 192, MLP ratio 4.
    """
    from timm.models.mlp_mixer import Affine, MlpMixer, ResBlock

    return MlpMixer(num_classes=num_classes, img_size=32, patch_size=4, num_blocks=12, embed_dim=192,
                    mlp_ratio=4, block_layer=ResBlock, norm_layer=Affine)


def deit_tiny(num_classes: int = 10) -> nn.Module:
    """DeiT-Tiny, Touvron et al. 2021 ("Training data-efficient image transformers &
    distillation through attention", ICML; arXiv 2012.12877), timm's VisionTransformer.

    DeiT-Ti shape (width 192, depth 12, 3 heads, MLP ratio 4, class token) with 4x4 patches
    on 32x32 (64 patch tokens + class token); no distillation token.
    """
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=32, patch_size=4, num_classes=num_classes,
                             embed_dim=192, depth=12, num_heads=3)


def mobilevit(num_classes: int = 10) -> nn.Module:
    """MobileViT-XXS, Mehta & Rastegari 2022 ("MobileViT: Light-weight, general-purpose,
    and mobile-friendly vision transformer", ICLR; arXiv 2110.02178), timm's mobilevit_xxs.

    Unmodified, its overall stride 32 turns 32x32 into a 1x1 last map (2x2 patches no
    longer fit). CIFAR adaptation, total stride 32 -> 8 as for the ResNet-18 stem: the
    stem conv runs at stride 1 and the first downsampling stage (stage 1) at stride 1, so
    the stages see 32, 32, 16, 8, 4 pixels and the three MobileViT blocks unfold 8x8, 4x4
    and 2x2 grids of 2x2 patches. Channels, depths and transformer sizes are unchanged.
    """
    from timm.models.byobnet import ByobNet
    from timm.models.mobilevit import model_cfgs

    cfg = model_cfgs["mobilevit_xxs"]
    blocks = list(cfg.blocks)
    assert blocks[1].s == 2  # stage 1 is the first stride-2 stage
    blocks[1] = dataclasses.replace(blocks[1], s=1)
    model = ByobNet(dataclasses.replace(cfg, blocks=tuple(blocks)), num_classes=num_classes)
    model.stem.conv.stride = (1, 1)  # timm hard-codes stride 2 for the 3x3 stem; padding stays 1
    return model


# name -> (builder, paper, library, adaptation); the order is the order of BASELINES.
_REGISTRY: dict[str, tuple[Callable[[int], nn.Module], str, str, str]] = {
    "lenet5": (lenet5, "LeCun et al. 1998, Gradient-based learning applied to document recognition, Proc. IEEE 86(11)",
               "hand-written", "3x32x32 input, ReLU + max-pool modern variant, linear output layer"),
    "alexnet": (alexnet, "Krizhevsky et al. 2012, ImageNet classification with deep convolutional neural networks, NeurIPS",
                "torchvision", "stem conv 11x11/s4 -> 3x3/s1, pools kept (32->15->7->3), avgpool (3,3), fc 256*3*3->4096"),
    "resnet18": (resnet18, "He et al. 2016, Deep residual learning for image recognition, CVPR (arXiv 1512.03385)",
                 "torchvision", "conv1 3x3/s1/p1, stem max-pool removed"),
    "mlp_mixer": (mlp_mixer, "Tolstikhin et al. 2021, MLP-Mixer: An all-MLP architecture for vision, NeurIPS (arXiv 2105.01601)",
                  "timm", "img 32, patch 4 (64 tokens), depth 8, dim 256, mlp ratios (0.5, 4)"),
    "resmlp": (resmlp, "Touvron et al. 2021, ResMLP: Feedforward networks for image classification with data-efficient training (arXiv 2105.03404)",
               "timm", "resmlp_12 blocks (ResBlock + Affine), img 32, patch 4 (64 tokens), depth 12, dim 192"),
    "deit_tiny": (deit_tiny, "Touvron et al. 2021, Training data-efficient image transformers & distillation through attention, ICML (arXiv 2012.12877)",
                  "timm", "DeiT-Ti (dim 192, depth 12, 3 heads), img 32, patch 4 (64 tokens + cls)"),
    "mobilevit": (mobilevit, "Mehta & Rastegari 2022, MobileViT: Light-weight, general-purpose, and mobile-friendly vision transformer, ICLR (arXiv 2110.02178)",
                  "timm", "mobilevit_xxs with stem and stage-1 strides 2 -> 1 (total stride 32 -> 8, last map 4x4)"),
}

BASELINES: tuple[str, ...] = tuple(_REGISTRY)

# The CPU fast path: TrainConfig overrides per baseline, kept only where they measurably help (`python -m benchmarks
# baseline_epochs`, float32 and the fast path side by side, one thread, CPU time). Which helps depends on the CPU, so
# there are two tables, and `fast_path` picks the one for the CPU it runs on:
#
# "float32" (any CPU; the table the published short-budget runs used): channels_last (NHWC) lets oneDNN run the
# convolutions without layout reorders: x1.19-1.92 for MobileViT, x1.02-1.17 for AlexNet, x1.03-1.39 for LeNet-5
# (several runs, two machines), nothing for ResNet-18 (x0.99); the patch-based MLP and transformer models have one
# convolution (the patch embedding) and nothing to gain. Rejected on an AMD EPYC with AVX2 only: bf16 autocast
# (`amp=True`: 4.4x slower for LeNet-5, 18x for AlexNet; bf16 is emulated there) and torch.compile (x0.87 AlexNet,
# x1.00 DeiT-Tiny, x0.98 ResMLP, x0.91 MLP-Mixer, plus ~2 min of compilation at every process start).
#
# "bf16" (CPUs with native bf16 kernels: AVX-512 BF16 or AMX, `native_bf16()`): bf16 autocast for the matrix
# products and convolutions; weights, optimizer state and the loss stay float32 (autocast's CPU policy), and
# evaluation runs in float32. On an AMD EPYC with AVX-512 BF16, 1 thread, against float32 (benchmarks/results/
# baseline_epochs.json, the machine quiet): MLP-Mixer x3.44, ResMLP x2.78, ResNet-18 x2.43 (with channels_last;
# bf16 alone x2.46 against x2.63 with it in one run), AlexNet x1.92 (x2.03-2.05 in two other runs; x1.70 without
# channels_last), DeiT-Tiny x1.81 (x1.82-2.27 in other runs). torch.compile on top was measured and left out:
# x1.86 DeiT-Tiny, x1.40 AlexNet. Kept out: LeNet-5 (bf16 x0.87; channels_last alone x1.28) and MobileViT, whose
# step bf16 slows (x0.82, x0.89 with channels_last, x0.83 compiled): a profile of its channels_last step puts 14%
# in layout copies around the transformer blocks' unfold/fold, 14% in batch norm and 8% in SiLU, memory-bound work
# that bf16 does not shorten and its casts lengthen; compiled, the channels_last step ran x1.32, as channels_last
# alone (x1.27-1.39), so MobileViT keeps the float32 entry. Parity (chapter 3): after 1 epoch DeiT-Tiny agreed by
# the rule and AlexNet differed (bf16 8.08 points above float32 from the same seed, where float32's own two seeds
# differ by 5.48); after the short budget's 5 epochs, same seed, AlexNet agrees (+0.49), ResNet-18 under bf16 leads (+0.51), and
# DeiT-Tiny under bf16 falls behind float32 (38.61 against 45.98), so DeiT-Tiny left the table and trains in float32.
# No published run uses this table. On a GPU `amp=True` is the fast path (`published.gpu_runs`).
_CL, _BF16 = {"channels_last": True}, {"amp": True}
FAST_PATHS: dict[str, dict[str, dict]] = {
    "float32": {name: (_CL if name in ("lenet5", "alexnet", "mobilevit") else {}) for name in _REGISTRY},
    "bf16": {"lenet5": _CL, "alexnet": _BF16 | _CL, "resnet18": _BF16 | _CL, "mlp_mixer": _BF16, "resmlp": _BF16,
             "deit_tiny": {}, "mobilevit": _CL},
}


def native_bf16() -> bool:
    """Does this CPU have native bf16 matrix kernels (AVX-512 BF16 or AMX)? Without them oneDNN emulates bf16."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def fast_path(name: str, table: str | None = None) -> dict:
    """The fast path's TrainConfig overrides for baseline `name`: from `table` ("float32" or "bf16"), or by
    default the table for this CPU (`native_bf16()`)."""
    _lookup(name)
    table = table or ("bf16" if native_bf16() else "float32")
    if table not in FAST_PATHS:
        raise ValueError(f"unknown fast-path table {table!r}; valid: {', '.join(FAST_PATHS)}")
    return dict(FAST_PATHS[table][name])


def fast_path_label(overrides: dict) -> str:
    """A fast path's TrainConfig overrides as the book names them, e.g. "bf16 autocast + channels_last"."""
    names = {"amp": "bf16 autocast", "channels_last": "channels_last"}
    return " + ".join(names[k] for k, v in overrides.items() if v) or "(float32)"


def channels_last(model: nn.Module, opt: torch.optim.Optimizer | None = None) -> nn.Module:
    """Put `model`'s 4-D weights (and `opt`'s state for them) in channels_last memory format, in place.

    The optimizer state must follow its parameter's layout: torch's fused AdamW walks a parameter and its
    moments as flat memory, so moments restored from a checkpoint in the default layout would silently update
    the wrong elements (tests/test_fast_path.py). Gradients follow the parameter's layout by autograd's rule.
    """
    model.to(memory_format=torch.channels_last)  # parameters keep their identity (`.data` is swapped)
    for p, state in (opt.state.items() if opt is not None else ()):
        for k, v in state.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p).copy_(v)  # empty_like keeps p's strides
    return model


def _lookup(name: str):
    if name not in _REGISTRY:
        raise ValueError(f"unknown baseline {name!r}; valid names: {', '.join(BASELINES)}")
    return _REGISTRY[name]


def build_baseline(name: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised (random weights, global torch RNG) baseline for 3x32x32 input."""
    return _lookup(name)[0](num_classes)


def baseline_info(name: str) -> dict:
    """{"paper", "library" ("timm" | "torchvision" | "hand-written"), "adaptation"} for a baseline."""
    _, paper, library, adaptation = _lookup(name)
    return {"paper": paper, "library": library, "adaptation": adaptation}


def _summary() -> str:
    """Parameter counts and forward FLOPs per image (the table in the module docstring)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    rows = [f"{'name':<11} {'params':>12}  {'forward FLOPs / image':>21}"]
    for name in BASELINES:
        model = build_baseline(name).eval()
        counter = FlopCounterMode(display=False)
        # The fused CPU attention kernel is not in FlopCounterMode's registry (it would count
        # 0); the math backend runs attention as matmuls, which are counted.
        with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            model(torch.zeros(1, 3, 32, 32))
        flops = counter.get_total_flops()
        human = f"{flops / 1e9:.2f} G" if flops >= 1e9 else f"{flops / 1e6:.2f} M"
        rows.append(f"{name:<11} {sum(p.numel() for p in model.parameters()):>12,}  {human:>12}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(_summary())
