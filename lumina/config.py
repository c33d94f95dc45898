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
INIT_CONNECT = ("none", "dense", "dense_fb", "multiscale", "random", "recurrent")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "luminanet"  # "luminanet" or a baseline name (lumina.baselines)
    d_hidden: int = 64  # CL channel width d_hidden [paper]; CIFAR-10 structures use 10/32/64/84/128
    init_size: int = 64  # neurons m_i of each initial Neuron Cluster [ours]
    patch: int = 16  # image patch side: 3x32x32 -> 12 channel-wise 16x16 patches [paper]
    aggregate: str = "mean"  # CL aggregation: "mean" is the paper's (1/n) sum; "sum" makes connect exact
    cl: str = "source"  # CL weights: "source" = one W_Cj per source, as the paper prints it; "edge" = one per edge
    init_connect: str = "none"  # initial edges: "none" evolves them from scratch [paper]; "dense" = every
    #                             feedforward edge (Table 5's dense start); "dense_fb" = feedforward + feedback;
    #                             text [ours]: "multiscale" = slot t reads t-1, t-2, t-4, ... and itself (a
    #                             self-loop); "random" = 3 random earlier slots and itself; "recurrent" = a
    #                             self-loop on every cluster (a recurrent text network's state carry)
    init_from: str = ""  # start from a stored topology (a results-relative topology.json): control (a) [ours]
    context: int = 64  # tokens per window, one slot (cluster) per position (text only) [ours]
    text_net: str = "slot"  # how text enters the network [ours]: "slot" = one cluster per position (its IL reads
    #                         that token), causal by wiring; "recurrent" = one network of clusters applied at
    #                         every position with the same weights, carrying state from t-1 to t through its
    #                         feedback and recurrent edges (book chapter 4)
    n_clusters: int = 8  # initial clusters of a recurrent text network [ours] (a slot network has `context`)
    readout: str = "slot+context"  # text OL at position t [ours]: "slot" = LN(mean of slot t's clusters), which
    #                                 see the earlier tokens through their in-edges; "context" = LN(mean of the
    #                                 clusters of slots <= t); "slot+context" = the sum of both means
    image_readout: str = "mean"  # image OL [ours]: "mean" = LN(mean_i f_i), SPEC's default; "slots" = LN of the
    #                              per-patch sums (over the clusters reading each patch) concatenated, 12·d_hidden
    #                              features, so the OL can tell which patch a signal came from; split children
    #                              keep their parent's patch and their outputs add up to its, so a split leaves
    #                              it unchanged
    d_embed: int = 64  # token embedding width, the IL input for text [ours]
    tie_head: bool = False  # text: the OL's output matrix is the token embedding (GPT-2 ties too) [ours]; needs
    #                         d_embed == d_hidden
    embed_std: float = 1.0  # std of the initial token embedding [ours] (GPT-2 uses 0.02)
    msg_norm: bool = False  # a LayerNorm (no affine) on each cluster's aggregated message s_i [ours]
    in_norm: bool = False  # text: a LayerNorm (no affine) on the token embedding before the ILs [ours]
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
    split_keep_wiring: bool = False  # [ours] True: a split child inherits every edge of its parent, over the
    #                                  in-degree cap if need be, gates rescaled so the split is exact where it can
    #                                  be (the fix SPEC §2 asks for; every v3 run sets it). False: v2's split, in
    #                                  which the cap dropped inherited edges; the default until the stored v2
    #                                  results it produced are replaced, so a stored result never claims a
    #                                  split it did not run (a changed default would keep its key)
    max_clusters: int = 64  # no splits beyond this many clusters
    max_neurons: int = 8192  # no growth beyond this many neurons in total
    grow_until_frac: float = 0.0  # [ours] capacity schedule: grow to max_neurons by this fraction of training, the
    #                               deficit spread over the events left until then, and at the budget reduce
    #                               only dead neurons (dead_frac). 0 = off (v2: grow_k x grow_n per event until
    #                               the budget, reduce_frac at the budget too, which kept trading trained neurons
    #                               for fresh ones); recommended 0.25, so the final capacity trains for the
    #                               three quarters of the run at the higher learning rates (issue 22)
    dead_frac: float = 0.001  # [ours] with the capacity schedule, at the budget a neuron is dead (removed, and
    #                           replaced by growth) when its contribution < dead_frac x its cluster's median:
    #                           ~0, e.g. a grown neuron whose output weights never left zero
    reduce_frac: float = 0.02  # a neuron whose contribution < reduce_frac x its cluster's median is removed
    reduce_max: float = 0.1  # at most this fraction of a cluster's neurons removed per event
    m_min: int = 8  # clusters never shrink below this
    connect_k: int = 4  # new edges per event (the best gradient scores)
    connect_gate: float = 1.0  # the gate a new edge starts with: 1 = the paper's formula (the source's message
    #                            at full strength); 0 = function-preserving, but Adam then moves a gate by about
    #                            lr per step, so late edges stay almost silent (chosen on the validation split)
    max_in_degree: int = 6  # no new in-edges beyond this
    feedforward: bool = True  # which edge kinds connect may add
    feedback: bool = True
    recurrent: bool = True
    prune_frac: float = 0.1  # an edge whose saliency < prune_frac x the median edge saliency is removed
    prune_k: int = 4  # at most this many edges pruned per event
    swap_k: int = 0  # [ours] at most this many swaps per event: a cluster at max_in_degree replaces its weakest
    #                  in-edge by a better-scored absent one, so edges keep evolving at the cap. 0 = off (v2, where
    #                  every cluster sat at the cap and connect stopped); recommended 2 (half of connect_k)
    swap_ratio: float = 1.0  # [ours] a swap needs the candidate's score (|dL/dgate| at gate 0) > swap_ratio x the
    #                          weak edge's saliency (Σ_b |first-order loss change|, an upper bound of its worth);
    #                          1 = the candidate must promise more than the edge is worth
    swap_score: str = "batch"  # [ours] how a swap scores its candidate: "batch" = connect's |Σ_b ⟨m, G⟩| (v3's first
    #                            runs, where no swap fired: that is ~√B below the saliency's Σ_b |⟨m, G⟩|);
    #                            "per_example" = the saliency's own estimator, so the two are compared like for like
    min_edge_age: int = 300  # steps an edge lives before it can be pruned
    probe_batch: int = 128  # batch used to score connections and neuron contributions


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 10.0  # passes over the training set: budgets are epochs, never seconds (the intro: how a comparison is run)
    batch_size: int = 128
    lr: float = 2e-3  # AdamW peak learning rate, cosine decay after a linear warm-up
    lr_warmup: float = 0.03  # fraction of training with linear LR warm-up
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    augment: bool = True  # random crop (pad 4) + horizontal flip, in batches
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    eval_every: int = 0  # steps between evaluations; 0 = once per epoch
    seed: int = 0
    threads: int = 2  # torch threads (CPU); never more than the machine's cores
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
    amp: bool = False  # bf16 autocast for the forward pass: GPU runs, and the CPU fast path's "bf16" table on CPUs with
    #                    native bf16 kernels (lumina.baselines.vision.FAST_PATHS); where bf16 is emulated it is slower
    channels_last: bool = False  # [ours] the CPU fast path of the convolutional baselines: weights and batches in
    #                              NHWC memory format (lumina.baselines.vision.FAST_PATHS); same math as float32


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"  # "cifar10", "tinystories" or "synthetic" (tests)
    validation: bool = False  # CIFAR-10: train on the first 45,000 images, evaluate on the last 5,000 (the intro: how a comparison is run);
    #                           TinyStories: hold the last `dev_stories` training stories out, evaluate on them
    dev_stories: int = 500  # TinyStories dev split: training stories held out for every choice [ours]
    random_offsets: bool = False  # text: each training window starts at a random offset in [0, L) from its
    #                               nominal start, drawn anew every time it is read [ours]
    train_subset: int = 0  # use the first N training examples; 0 = all
    test_subset: int = 0  # use the first N test examples (text: the first N tokens of the evaluation stream); 0 = all
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
                if f.name.endswith("_frac") or f.name in ("load_ema", "reduce_max", "lr_warmup", "connect_gate"):
                    if not 0.0 <= v <= 1.0:
                        errs.append(f"{f.name}={v} must lie in [0, 1]")
                elif f.name in ("train_subset", "test_subset", "n_stories", "grad_clip",
                                "weight_decay", "label_smoothing", "seed", "swap_k"):
                    if v < 0:
                        errs.append(f"{f.name}={v} must be >= 0")
                elif f.name == "eval_every":
                    if v < 0:
                        errs.append(f"eval_every={v} must be >= 0 (0 = once per epoch)")
                elif v <= 0:
                    errs.append(f"{f.name}={v} must be > 0")
        if m.aggregate not in ("mean", "sum"):
            errs.append(f"aggregate={m.aggregate!r}; valid: 'mean', 'sum'")
        if m.init_connect not in INIT_CONNECT:
            errs.append(f"init_connect={m.init_connect!r}; valid: {', '.join(map(repr, INIT_CONNECT))}")
        elif m.init_connect in ("multiscale", "random") and (d.dataset != "tinystories" or m.text_net != "slot"):
            errs.append(f"init_connect={m.init_connect!r} wires slots of a text slot network (dataset='tinystories', text_net='slot')")
        if e.swap_score not in ("batch", "per_example"):
            errs.append(f"swap_score={e.swap_score!r}; valid: 'batch', 'per_example'")
        if m.image_readout not in ("mean", "slots"):
            errs.append(f"image_readout={m.image_readout!r}; valid: 'mean', 'slots'")
        if m.readout not in ("slot", "context", "slot+context"):
            errs.append(f"readout={m.readout!r}; valid: 'slot', 'context', 'slot+context'")
        if m.text_net not in ("slot", "recurrent"):
            errs.append(f"text_net={m.text_net!r}; valid: 'slot', 'recurrent'")
        if m.tie_head and m.d_embed != m.d_hidden and d.dataset == "tinystories" and m.arch == "luminanet":
            errs.append(f"tie_head=True needs d_embed == d_hidden (got {m.d_embed} and {m.d_hidden})")
        if m.cl not in ("source", "edge"):
            errs.append(f"cl={m.cl!r}; valid: 'source', 'edge'")
        if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
            errs.append(f"device={t.device!r}; valid: 'auto', 'cpu', 'cuda', 'cuda:N'")
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
        if t.channels_last and m.arch in ("luminanet", "gpt2"):
            errs.append(f"channels_last=True is for the convolutional image baselines, not arch={m.arch!r}")
        if e.m_min > m.init_size:
            errs.append(f"m_min={e.m_min} exceeds init_size={m.init_size}")
        if e.warmup_frac + e.freeze_frac > 1:
            errs.append("warmup_frac + freeze_frac must not exceed 1")
        if e.grow_until_frac and e.grow_until_frac >= 1 - e.freeze_frac:
            errs.append(f"grow_until_frac={e.grow_until_frac} must lie before the frozen end of training "
                        f"(< 1 - freeze_frac = {1 - e.freeze_frac:g}), or be 0 (off)")
        if errs:
            raise ValueError(f"invalid config for {self.experiment}/{self.profile}: " + "; ".join(errs))
        return self


# ---- experiments x profiles ---------------------------------------------------------------------
# Each entry is a set of overrides on the defaults above. Keep a `full` run within ~30 min on one core.
# Budgets are epochs (the intro: how a comparison is run); eval_every=0 evaluates once per epoch (the curves of the chapters).
_CIFAR_SMOKE = dict(dataset="cifar10", train_subset=1024, test_subset=512, d_hidden=16, init_size=16, m_max=24,
                    grow_n=8, epochs=2.0, batch_size=64, evolve_every=4, load_every=2, min_edge_age=4,
                    eval_every=8, probe_batch=64, prune_frac=0.8, reduce_frac=0.3)  # every op fires in seconds
# full: sized for this 2-core CPU (one 1-thread run per core); growth bounded at 2,048 neurons and 32 clusters,
# since every neuron costs step time. The headline pair trains 50 epochs; choices on the validation split 10.
_CIFAR_FULL = dict(dataset="cifar10", epochs=50.0, eval_every=0, threads=1, max_neurons=2048, max_clusters=32)
_CIFAR_PAPER = dict(dataset="cifar10", epochs=200.0, evolve_every=390, min_edge_age=1200, eval_every=0)
_TEXT = dict(dataset="tinystories", label_smoothing=0.0, augment=False)
EXPERIMENTS: dict[str, dict[str, dict]] = {
    # chapter 2: watch evolution happen on a small CIFAR-10 slice (every mechanism fires often)
    "evolution": {
        "smoke": dict(dataset="cifar10", train_subset=2048, test_subset=512, d_hidden=16, init_size=16, m_max=24,
                      grow_n=8, epochs=2.0, batch_size=64, evolve_every=8, load_every=2, min_edge_age=16,
                      eval_every=16, warmup_frac=0.1, reduce_frac=0.5, prune_frac=0.5, probe_batch=64),
        "full": dict(dataset="cifar10", train_subset=10000, test_subset=2000, d_hidden=32, init_size=32, m_max=48,
                     grow_n=16, epochs=20.0, evolve_every=40, min_edge_age=200, eval_every=100, reduce_frac=0.1,
                     max_neurons=2048, threads=1),
        "paper": dict(dataset="cifar10", d_hidden=64, init_size=64, epochs=20.0),
    },
    # chapter 3: LuminaNet on the whole CIFAR-10 (the paper's widths via d_hidden overrides)
    "cifar10": {"smoke": _CIFAR_SMOKE, "full": _CIFAR_FULL, "paper": _CIFAR_PAPER},
    # chapter 3: the baselines under the same recipe and epochs (arch= picks the model)
    "cifar10_baseline": {
        "smoke": dict(dataset="cifar10", arch="lenet5", train_subset=1024, test_subset=512, epochs=2.0,
                      batch_size=64, eval_every=8),
        "full": dict(arch="lenet5", **_CIFAR_FULL),
        "paper": dict(arch="lenet5", **_CIFAR_PAPER),
    },
    # chapters 3 and 6: evolution's worth and the mechanism ablations, chosen on the validation split
    "cifar10_ablation": {
        "smoke": dict(_CIFAR_SMOKE, validation=True),
        "full": dict(_CIFAR_FULL, validation=True, epochs=10.0),
        "paper": dict(_CIFAR_PAPER, validation=True, epochs=40.0),
    },
    # chapter 4: TinyStories next-token prediction, every position of every window a target
    "tinystories": {
        "smoke": dict(_TEXT, vocab_size=512, context=8, d_embed=16, d_hidden=32, init_size=16, m_max=24, grow_n=8,
                      train_subset=256, test_subset=800, epochs=2.0, batch_size=16, evolve_every=8, load_every=2,
                      min_edge_age=8, eval_every=16, probe_batch=16, max_in_degree=3),
        "full": dict(_TEXT, context=64, d_embed=64, d_hidden=128, init_size=32, m_max=64, grow_n=8, epochs=2.0,
                     batch_size=32, test_subset=65536, eval_every=250, evolve_every=100, min_edge_age=300,
                     max_in_degree=4, max_neurons=4096, max_clusters=96, threads=1, probe_batch=32),
        "paper": dict(_TEXT, context=64, d_embed=128, d_hidden=384, init_size=128, epochs=1.0, batch_size=128,
                      evolve_every=500, min_edge_age=1500, eval_every=5000, max_in_degree=6),
    },
    # chapter 4: the single-layer GPT-2-style Transformer, same tokenizer, windows and epochs (width = d_hidden)
    "tinystories_baseline": {
        "smoke": dict(_TEXT, arch="gpt2", vocab_size=512, context=8, d_hidden=32, train_subset=256, test_subset=800,
                      epochs=2.0, batch_size=16, eval_every=16),
        "full": dict(_TEXT, arch="gpt2", context=64, d_hidden=128, epochs=2.0, batch_size=32, test_subset=65536,
                     eval_every=250, threads=1),
        "paper": dict(_TEXT, arch="gpt2", context=64, d_hidden=384, epochs=1.0, batch_size=128, eval_every=5000),
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
    """The validated config of `experiment` x `profile` with `overrides` (plain field names) applied.

    A keyword `overrides=` holding a mapping or a JSON string is merged too (`parse_overrides`), so a
    notebook can pass its papermill parameter through unchanged: `-p overrides '{"connect_k": 8}'` arrives
    as a string. Unknown experiment, profile or field names are errors that list the valid ones.
    """
    if "overrides" in overrides:
        overrides = {**parse_overrides(overrides.pop("overrides")), **overrides}
    if not isinstance(experiment, str) or experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; valid: {', '.join(sorted(EXPERIMENTS))}")
    if not isinstance(profile, str) or profile not in PROFILES:
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


def parse_overrides(overrides) -> dict:
    """Config overrides as users type them: None (none), a mapping, or a JSON object as a string (what
    papermill's `-p overrides '{"connect_k": 8}'` and the README's examples hand over). Anything else is a
    `ValueError` that shows the expected form, so a notebook fails in its first cell with a readable line."""
    example = """'{"connect_k": 8, "d_hidden": 32}'"""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        if not overrides.strip():
            return {}
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as e:
            raise ValueError(f"overrides {overrides!r} is not valid JSON ({e.msg} at character {e.pos}); "
                             f"write an object such as {example}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a JSON object of field names and values, such as {example}; "
                         f"got {type(overrides).__name__} {overrides!r}")
    bad = [k for k in overrides if not isinstance(k, str)]
    if bad:
        raise ValueError(f"override names must be strings (config field names), got {bad!r}")
    return dict(overrides)
