"""Every number the paper reports, in one place (Liu 2026, *Rethinking Intelligence: Brain-like Neuron Network*,
arXiv 2601.19508).

Chapters, the README's tables, the intro's verdicts and the report read the paper's numbers from here, so a
number is typed once, next to where in the paper it comes from. This module is data only: how a chapter
decides whether a claim reproduces lives with the chapter's measurements, not here.

    from lumina import paper
    paper.value("cifar10.gap_lenet5")          # 11.19
    paper.claim("cifar10.gap_lenet5").text     # 'LuminaNet top-1 above LeNet-5'
    paper.for_chapter("04_tinystories")        # the claims that chapter tests, in reading order

`Claim.chapter` is the file stem of the chapter whose "paper vs ours" table tests the claim.
"""
from __future__ import annotations

from dataclasses import dataclass

# Where in the paper (the abstract states the headline numbers; the experiments section gives them per task).
CIFAR = "paper, CIFAR-10 experiments (and abstract)"
TEXT = "paper, TinyStories experiments (and abstract)"
STRUCT = "paper, TinyStories: analysis of the evolved structures"
RELEASED = "authors' repository: released structures"
TABLE5 = "paper, Table 5 (pruning all connections)"


@dataclass(frozen=True)
class Claim:
    """One thing the paper reports. `value` is a number (in `unit`), a tuple, or a short phrase."""

    id: str
    chapter: str
    text: str
    value: object
    source: str
    unit: str = ""  # "points" (a difference of accuracies), "%", "x" (a ratio), or "" (a count, a phrase)

    def shown(self) -> str:
        """The value as the paper would print it: '+11.19 points', '98.09%', '≈ 10×', '10, 32, 64'."""
        v = self.value
        if isinstance(v, tuple):
            return ", ".join(map(str, v))
        if self.unit == "points":
            return f"{v:+.2f} points"
        if self.unit == "%":
            return f"{v:.2f}%"
        if self.unit == "x":
            return f"≈ {v:g}×"
        return str(v)


CLAIMS: tuple[Claim, ...] = (
    # ---- CIFAR-10 ----------------------------------------------------------------------------------------
    Claim("cifar10.gap_lenet5", "03_cifar10", "LuminaNet top-1 above LeNet-5", 11.19, CIFAR, "points"),
    Claim("cifar10.gap_alexnet", "03_cifar10", "LuminaNet top-1 above AlexNet", 5.46, CIFAR, "points"),
    Claim("cifar10.beats_mlp_vit", "03_cifar10", "LuminaNet top-1 above the MLP and ViT models",
          ("mlp_mixer", "resmlp", "deit_tiny"), CIFAR),
    Claim("cifar10.top5", "03_cifar10", "LuminaNet top-5", 98.09, CIFAR, "%"),
    Claim("cifar10.top5_mobilevit", "03_cifar10", "MobileViT top-5 (below LuminaNet)", 97.39, CIFAR, "%"),
    Claim("cifar10.top5_resnet18", "03_cifar10", "ResNet-18 top-5 (above LuminaNet)", 99.41, CIFAR, "%"),
    Claim("cifar10.resnet18_params", "03_cifar10", "ResNet-18 parameters / LuminaNet parameters", 10, CIFAR, "x"),
    Claim("cifar10.d_hidden", "03_cifar10", "d_hidden of the released CIFAR-10 structures",
          (10, 32, 64, 84, 128), RELEASED),
    # ---- TinyStories -------------------------------------------------------------------------------------
    Claim("tinystories.ppl", "04_tinystories", "LuminaNet best validation perplexity", 8.4, TEXT),
    Claim("tinystories.ppl_gpt2", "04_tinystories", "1-layer GPT-2 validation perplexity", 8.08, TEXT),
    Claim("tinystories.top1", "04_tinystories", "LuminaNet top-1 next-token accuracy", 53.38, TEXT, "%"),
    Claim("tinystories.top1_gpt2", "04_tinystories", "1-layer GPT-2 top-1 next-token accuracy", 53.29, TEXT, "%"),
    Claim("tinystories.compute_ratio", "04_tinystories", "compute, LuminaNet / 1-layer GPT-2 (about 25% less)",
          0.75, TEXT, "x"),
    Claim("tinystories.memory_ratio", "04_tinystories", "peak memory, LuminaNet / 1-layer GPT-2 (about half)",
          0.5, TEXT, "x"),
    Claim("tinystories.samples", "04_tinystories", "generated stories with and without connections",
          "coherent over several sentences; without connections the text drifts, repeats and ends early", TEXT),
    # ---- evolved structures ------------------------------------------------------------------------------
    Claim("tinystories.d_hidden", "05_structures", "d_hidden of the TinyStories networks", (128, 256, 384), STRUCT),
    Claim("tinystories.depth.d128", "05_structures", "evolved topological depth at d_hidden = 128", 21, STRUCT),
    Claim("tinystories.depth.d256", "05_structures", "evolved topological depth at d_hidden = 256", 13, STRUCT),
    Claim("tinystories.depth.d384", "05_structures", "evolved topological depth at d_hidden = 384", 9, STRUCT),
    Claim("tinystories.recurrent.d128", "05_structures", "recurrent structures at d_hidden = 128", 24, STRUCT),
    Claim("tinystories.recurrent.d256", "05_structures", "recurrent structures at d_hidden = 256", 24, STRUCT),
    Claim("tinystories.recurrent.d384", "05_structures", "recurrent structures at d_hidden = 384", 4, STRUCT),
    Claim("tinystories.seeds_converge", "05_structures", "two networks started at d_hidden = 384 converge",
          "very similar architectures", STRUCT),
    # ---- ablations -----------------------------------------------------------------------------------------
    Claim("pruning.evolved_keeps", "06_ablations",
          "evolved-from-scratch network keeps its accuracy when all connections are pruned", "keeps", TABLE5),
    Claim("pruning.dense_collapses", "06_ablations", "dense-start network collapses when pruned", "collapses",
          TABLE5),
)

_BY_ID = {c.id: c for c in CLAIMS}
assert len(_BY_ID) == len(CLAIMS), "duplicate claim id"


def claim(cid: str) -> Claim:
    try:
        return _BY_ID[cid]
    except KeyError:
        raise KeyError(f"no paper claim {cid!r}; known: {', '.join(_BY_ID)}") from None


def value(cid: str):
    return claim(cid).value


def for_chapter(chapter: str) -> list[Claim]:
    """The claims a chapter tests (`chapter` is a file stem such as '03_cifar10'), in the order above."""
    return [c for c in CLAIMS if c.chapter == chapter]


def by_width(kind: str) -> dict[int, object]:
    """Per-width structure claims: by_width('depth') -> {128: 21, 256: 13, 384: 9}."""
    return {int(c.id.rsplit(".d", 1)[1]): c.value for c in CLAIMS if c.id.startswith(f"tinystories.{kind}.d")}
