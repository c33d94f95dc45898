"""Frozen configs and the three profiles, shared by notebooks, tests and the command line.

`resolve(experiment, profile, **overrides)` returns a validated `ExperimentConfig`. Overrides name a field of
any section by its plain name (`d_hidden=32`, `connect_k=8`), or `model=` / `seed=` etc.
Profiles: `smoke` (seconds, CI), `full` (the published results, sized for a 2-core CPU), `paper` (the
paper's scale, for a GPU).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace

PROFILES = ("smoke", "full", "paper")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "luminanet"  # "luminanet" or a baseline name (lumina.baselines)
    d_hidden: int = 64  # CL channel width d_hidden [paper]; CIFAR-10 structures use 10/32/64/84/128
    init_size: int = 64  # neurons m_i of each initial Neuron Cluster [ours]
    patch: int = 16  # image patch side: 3x32x32 -> 12 channel-wise 16x16 patches [paper]
    aggregate: str = "mean"  # CL aggregation: "mean" is the paper's (1/n) sum; "sum" makes connect exact
    init_connect: str = "none"  # initial edges: "none" evolves them from scratch [paper], "dense" = all feedforward
    context: int = 32  # tokens per window, one cluster per position (text only) [ours]
    d_embed: int = 64  # token embedding width, the IL input for text [ours]
    tokenizer: str = "bpe"  # text: "bpe" (trained on the training text) or "gpt2" (where available)


@dataclass(frozen=True)
class EvolutionConfig:
    evolve: bool = True  # master switch; False = fixed initial topology
    split: bool = True  # mechanism switches [paper: splitting, growth, connection]
    grow: bool = True
    reduce: bool = True  # growth's "reduction" half
    connect: bool = True
    prune: bool = True
    evolve_every: int = 100  # steps between evolution events
    warmup_frac: float = 0.05  # no events before this fraction of training
    freeze_frac: float = 0.2  # topology frozen for this last fraction of training
    load_every: int = 10  # steps between load measurements (grad norm per cluster)
    load_ema: float = 0.9  # EMA factor of the load
    grow_k: int = 2  # clusters that grow per event (the most loaded)
    grow_n: int = 16  # neurons added per growth (the paper's n)
    m_max: int = 128  # a cluster that grows beyond m_max splits in two
    split_k: int = 2  # at most this many splits per event
    max_clusters: int = 64  # no splits beyond this many clusters
    max_neurons: int = 8192  # no growth beyond this many neurons in total
    reduce_frac: float = 0.02  # a neuron whose contribution < reduce_frac x its cluster's median is removed
    reduce_max: float = 0.1  # at most this fraction of a cluster's neurons removed per event
    m_min: int = 8  # clusters never shrink below this
    connect_k: int = 4  # new edges per event (the best gradient scores)
    max_in_degree: int = 6  # no new in-edges beyond this
    feedforward: bool = True  # which edge kinds connect may add
    feedback: bool = True
    recurrent: bool = True
    prune_frac: float = 0.05  # an edge whose |W_C| < prune_frac x the median edge norm is removed
    min_edge_age: int = 300  # steps an edge lives before it can be pruned
    probe_batch: int = 128  # batch used to score connections and neuron contributions


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 10.0  # passes over the training set (upper bound when budget_s is set)
    budget_s: float = 0.0  # wall-clock training budget in seconds; 0 = none (deterministic runs)
    batch_size: int = 128
    lr: float = 2e-3  # AdamW peak learning rate, cosine decay after a linear warm-up
    lr_warmup: float = 0.03  # fraction of training with linear LR warm-up
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    augment: bool = True  # random crop (pad 4) + horizontal flip, in batches
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    eval_every: int = 500  # steps between test evaluations
    seed: int = 0
    threads: int = 2  # torch threads; never more than the machine's cores


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"  # "cifar10", "tinystories" or "synthetic" (tests)
    train_subset: int = 0  # use the first N training examples; 0 = all
    test_subset: int = 0  # use the first N test examples; 0 = all
    n_stories: int = 0  # TinyStories: stories to use from the hub; 0 = all local ones
    vocab_size: int = 4096  # TinyStories byte-level BPE vocabulary size


@dataclass(frozen=True)
class ExperimentConfig:
    experiment: str
    profile: str
    model: ModelConfig = field(default_factory=ModelConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        kw = {}
        for name, cls_ in (("model", ModelConfig), ("evolution", EvolutionConfig), ("train", TrainConfig), ("data", DataConfig)):
            known = {f.name for f in fields(cls_)}
            kw[name] = cls_(**{k: v for k, v in d.get(name, {}).items() if k in known})
        return cls(experiment=d["experiment"], profile=d["profile"], **kw).validate()

    def key(self) -> str:
        """Content hash of the result-relevant config: the fields that differ from their defaults, so a field
        added later (with a default) leaves existing keys valid. `lumina.results.load_result` also compares
        the stored config field by field, so a changed default can never pass an old result off as new."""
        blob = json.dumps(self.non_default(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def non_default(self) -> dict:
        out = {"experiment": self.experiment, "profile": self.profile}
        for name, cls in _SECTIONS.items():
            ref, sec = cls(), getattr(self, name)
            out[name] = {f.name: getattr(sec, f.name) for f in fields(sec) if getattr(sec, f.name) != getattr(ref, f.name)}
        return out

    def validate(self) -> "ExperimentConfig":
        errs = []
        m, e, t, d = self.model, self.evolution, self.train, self.data
        for sec in (m, e, t, d):
            for f in fields(sec):
                v = getattr(sec, f.name)
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                if f.name.endswith("_frac") or f.name in ("load_ema", "reduce_max", "lr_warmup"):
                    if not 0.0 <= v <= 1.0:
                        errs.append(f"{f.name}={v} must lie in [0, 1]")
                elif f.name in ("budget_s", "train_subset", "test_subset", "n_stories", "grad_clip",
                                "weight_decay", "label_smoothing", "seed"):
                    if v < 0:
                        errs.append(f"{f.name}={v} must be >= 0")
                elif v <= 0:
                    errs.append(f"{f.name}={v} must be > 0")
        if m.aggregate not in ("mean", "sum"):
            errs.append(f"aggregate={m.aggregate!r}; valid: 'mean', 'sum'")
        if m.init_connect not in ("none", "dense"):
            errs.append(f"init_connect={m.init_connect!r}; valid: 'none', 'dense'")
        if m.tokenizer not in ("bpe", "gpt2"):
            errs.append(f"tokenizer={m.tokenizer!r}; valid: 'bpe', 'gpt2'")
        if d.dataset not in ("cifar10", "tinystories", "synthetic"):
            errs.append(f"dataset={d.dataset!r}; valid: 'cifar10', 'tinystories', 'synthetic'")
        if m.arch == "gpt2":
            if d.dataset != "tinystories":
                errs.append("arch='gpt2' is a language model: it needs dataset='tinystories'")
            elif m.d_hidden % 4:
                errs.append(f"arch='gpt2' uses 4 heads: d_hidden={m.d_hidden} must be divisible by 4")
        elif m.arch != "luminanet":
            from .baselines import BASELINES
            if m.arch not in BASELINES:
                errs.append(f"arch={m.arch!r}; valid: 'luminanet', 'gpt2', {', '.join(map(repr, BASELINES))}")
            elif d.dataset == "tinystories":
                errs.append(f"arch={m.arch!r} is an image classifier; with dataset='tinystories' use 'luminanet' or 'gpt2'")
        if e.m_min > m.init_size:
            errs.append(f"m_min={e.m_min} exceeds init_size={m.init_size}")
        if e.warmup_frac + e.freeze_frac > 1:
            errs.append("warmup_frac + freeze_frac must not exceed 1")
        if errs:
            raise ValueError(f"invalid config for {self.experiment}/{self.profile}: " + "; ".join(errs))
        return self


# ---- experiments x profiles ---------------------------------------------------------------------
# Each entry is a set of overrides on the defaults above. Keep `full` within ~30 min per run on 2 cores.
_CIFAR_FULL = dict(budget_s=300.0, epochs=100.0, eval_every=400)  # 5 min of training per model
EXPERIMENTS: dict[str, dict[str, dict]] = {
    # chapter 2: watch evolution happen on a small CIFAR-10 slice (every mechanism fires often)
    "evolution": {
        "smoke": dict(dataset="cifar10", train_subset=2048, test_subset=512, d_hidden=16, init_size=16, m_max=24,
                      grow_n=8, epochs=2.0, batch_size=64, evolve_every=8, load_every=2, min_edge_age=16,
                      eval_every=16, warmup_frac=0.1, reduce_frac=0.5, prune_frac=0.5, probe_batch=64),
        "full": dict(dataset="cifar10", train_subset=10000, test_subset=2000, d_hidden=32, init_size=32, m_max=48,
                     grow_n=16, epochs=20.0, evolve_every=40, min_edge_age=200, eval_every=100, reduce_frac=0.1,
                     prune_frac=0.5, max_neurons=2048),
        "paper": dict(dataset="cifar10", d_hidden=64, init_size=64, epochs=20.0),
    },
    # chapter 3: LuminaNet on the whole CIFAR-10 (the paper's widths via d_hidden overrides)
    "cifar10": {
        "smoke": dict(dataset="cifar10", train_subset=1024, test_subset=512, d_hidden=16, init_size=16, m_max=24,
                      grow_n=8, epochs=2.0, batch_size=64, evolve_every=4, load_every=2, min_edge_age=4,
                      eval_every=8, probe_batch=64, prune_frac=0.8, reduce_frac=0.3),  # every op fires in seconds
        # growth bounded at 4x the initial neurons: every neuron costs step time inside the equal budget
        "full": dict(dataset="cifar10", max_neurons=3072, max_clusters=48, **_CIFAR_FULL),
        "paper": dict(dataset="cifar10", epochs=200.0, evolve_every=390, min_edge_age=1200, eval_every=1950),
    },
    # chapter 3: the baselines under the same recipe (arch= picks the model)
    "cifar10_baseline": {
        "smoke": dict(dataset="cifar10", arch="lenet5", train_subset=1024, test_subset=512, epochs=1.0,
                      batch_size=64, eval_every=8),
        "full": dict(dataset="cifar10", arch="lenet5", **_CIFAR_FULL),
        "paper": dict(dataset="cifar10", arch="lenet5", epochs=200.0, eval_every=1950),
    },
    # chapter 7: ablations on CIFAR-10 (half budget, one thread each so two can run side by side)
    "cifar10_ablation": {
        "smoke": dict(dataset="cifar10", train_subset=1024, test_subset=512, d_hidden=16, init_size=16, m_max=24,
                      grow_n=8, epochs=1.0, batch_size=64, evolve_every=4, load_every=2, min_edge_age=8,
                      eval_every=8, probe_batch=64),
        "full": dict(dataset="cifar10", d_hidden=32, budget_s=150.0, epochs=100.0, eval_every=400, threads=1,
                     max_neurons=3072, max_clusters=48),
        "paper": dict(dataset="cifar10", d_hidden=32, epochs=200.0, evolve_every=390, min_edge_age=1200, eval_every=1950),
    },
    # chapter 5: TinyStories next-token prediction. Every model sees the same windows (token budget =
    # steps x batch windows of context+1 tokens); no label smoothing, so perplexities are comparable.
    "tinystories": {
        "smoke": dict(dataset="tinystories", vocab_size=512, context=8, d_embed=16, d_hidden=32, init_size=16,
                      m_max=24, grow_n=8, train_subset=20000, test_subset=1000, epochs=0.1, batch_size=32,
                      evolve_every=8, load_every=2, min_edge_age=8, eval_every=30, probe_batch=32, label_smoothing=0.0,
                      augment=False, max_in_degree=3),
        "full": dict(dataset="tinystories", context=16, d_embed=64, d_hidden=128, init_size=64, epochs=0.054,
                     batch_size=64, test_subset=20000, eval_every=500, evolve_every=50, min_edge_age=150,
                     max_in_degree=4, max_neurons=3072, max_clusters=48, label_smoothing=0.0, augment=False,
                     threads=1, probe_batch=128),
        "paper": dict(dataset="tinystories", context=64, d_embed=128, d_hidden=384, init_size=128, epochs=1.0,
                      batch_size=128, n_stories=0, evolve_every=500, min_edge_age=1500, eval_every=5000,
                      label_smoothing=0.0, augment=False, max_in_degree=6),
    },
    # chapter 5: the single-layer GPT-2-style Transformer, same tokenizer, windows and budget (width = d_hidden)
    "tinystories_baseline": {
        "smoke": dict(dataset="tinystories", arch="gpt2", vocab_size=512, context=8, d_hidden=32, train_subset=20000,
                      test_subset=1000, epochs=0.1, batch_size=32, eval_every=30, label_smoothing=0.0, augment=False),
        "full": dict(dataset="tinystories", arch="gpt2", context=16, d_hidden=128, epochs=0.054, batch_size=64,
                     test_subset=20000, eval_every=500, label_smoothing=0.0, augment=False, threads=1),
        "paper": dict(dataset="tinystories", arch="gpt2", context=64, d_hidden=384, epochs=1.0, batch_size=128,
                      eval_every=5000, label_smoothing=0.0, augment=False),
    },
    # unit tests: synthetic images, no data needed
    "synthetic": {
        "smoke": dict(dataset="synthetic", train_subset=512, test_subset=256, d_hidden=8, init_size=8, m_max=12,
                      m_min=2, grow_n=4, epochs=2.0, batch_size=32, evolve_every=4, load_every=1, min_edge_age=4,
                      eval_every=8, probe_batch=32, augment=False, warmup_frac=0.1, freeze_frac=0.1),
        "full": dict(dataset="synthetic"), "paper": dict(dataset="synthetic"),
    },
}

_SECTIONS = {"model": ModelConfig, "evolution": EvolutionConfig, "train": TrainConfig, "data": DataConfig}


def _field_index() -> dict[str, str]:
    return {f.name: sec for sec, cls in _SECTIONS.items() for f in fields(cls)}


def resolve(experiment: str, profile: str = "smoke", **overrides) -> ExperimentConfig:
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; valid: {', '.join(sorted(EXPERIMENTS))}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    index = _field_index()
    per_section: dict[str, dict] = {s: {} for s in _SECTIONS}
    for name, value in {**EXPERIMENTS[experiment][profile], **overrides}.items():
        if name not in index:
            raise ValueError(f"unknown config field {name!r}; valid fields: {', '.join(sorted(index))}")
        per_section[index[name]][name] = value
    cfg = ExperimentConfig(experiment=experiment, profile=profile,
                           **{s: _coerce(cls(), per_section[s]) for s, cls in _SECTIONS.items()})
    return cfg.validate()


def _coerce(default, values: dict):
    """Apply overrides, converting types papermill may hand over (e.g. an int for a float field)."""
    out = {}
    for f in fields(default):
        if f.name not in values:
            continue
        v, ref = values[f.name], getattr(default, f.name)
        if isinstance(ref, bool):
            if not isinstance(v, bool):
                raise ValueError(f"{f.name} must be True or False, got {v!r}")
        elif isinstance(ref, float) and isinstance(v, int):
            v = float(v)
        elif isinstance(ref, int) and isinstance(v, float) and v.is_integer():
            v = int(v)
        elif type(ref) is not type(v):
            raise ValueError(f"{f.name} must be a {type(ref).__name__}, got {v!r}")
        out[f.name] = v
    return replace(default, **out)
