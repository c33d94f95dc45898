"""When and where the network evolves (book chapter 2, [ours]: the paper does not publish its policy).

Every `evolve_every` steps, after `warmup_frac` of training and before the last `freeze_frac`, one event,
decided on a probe batch (one forward and backward that is not a training step). With G_i = ∂L/∂s_i (pass 2)
and c_ji the signal edge j→i adds to s_i (g_ji W_Cj f_j / n_i, or W_C(j→i) f_j / n_i for per-edge CLs):
  1. prune:   an edge's saliency is Σ_b |⟨c_ji, G_i⟩| (first-order loss change per example, book chapter 2: not a
              weight norm, which Adam inflates on every edge); edges older than `min_edge_age` with a saliency
              below prune_frac × the median are removed, at most `prune_k` per event, so connections keep
              being revised while the topology is unfrozen;
  2. connect: every absent edge j→i is scored by the gradient its gate (or zero W_C) would receive
              (RigL): |Σ_b ⟨W_Cj f_j, G_i⟩| / (n_i+1) (per-edge: ‖G_iᵀ F_j‖_F / (n_i+1)); the `connect_k`
              best are added with gate `connect_gate`, never into a cluster at `max_in_degree`, never
              backwards in position in a causal (text) graph;
  3. reduce:  a neuron's contribution is mean|h_n| · ‖v_n‖ on the probe; those below reduce_frac × the
              cluster's median are removed (at most `reduce_max` of the cluster, never below `m_min`);
  4. grow:    the `grow_k` clusters with the highest load (EMA of their gradient norm per sqrt(neuron),
              measured every `load_every` training steps) gain `grow_n` neurons;
  5. split:   clusters with more than `m_max` neurons split in two (a random half of the neurons moves);
              the child's inherited edges count against `max_in_degree`.
All random choices draw from the policy's own generator (seeded from the run seed), so a run's architecture
is reproducible; each decision is appended to `events` (and to a JSON-lines log by the trainer).
"""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import EvolutionConfig
from ..model import LuminaNet, ckey, ekey, forward_fast
from . import ops

OPS = ("split", "grow", "reduce", "connect", "prune")


@dataclass
class Event:
    step: int
    op: str  # split | grow | reduce | connect | prune
    clusters: list[int]
    reason: str
    before: list[int]  # sizes of the clusters involved, before
    after: list[int]  # and after (for split: parent, child)
    kind: str | None = None  # edge kind for connect / prune
    score: float | None = None
    edges: list | None = None  # split: the edges the child inherited

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def s2_grad(entry: dict) -> torch.Tensor:
    """dL/ds_i (pass 2) from a probe trace of either executor."""
    if "S" in entry:  # fast executor: row t of the level's S
        g = entry["S"].grad
        return g[entry["t"]] if g is not None else torch.zeros_like(entry["S"][entry["t"]])
    g = entry["s2"].grad
    return g if g is not None else torch.zeros_like(entry["s2"])


class EvolutionPolicy:
    def __init__(self, cfg: EvolutionConfig, seed: int):
        self.cfg = cfg
        self.rng = random.Random(f"evolution-{seed}")  # evolution's own stream
        self.gen = torch.Generator().manual_seed(seed + 7919)  # initialises new neurons
        self.load: dict[int, float] = {}
        self.events: list[Event] = []

    # ---- state (for checkpoints) ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "gen": self.gen.get_state().tolist(),
                "load": {str(k): v for k, v in self.load.items()}, "events": [e.to_dict() for e in self.events]}

    def load_state_dict(self, s: dict) -> None:
        st = s["rng"]
        self.rng.setstate((st[0], tuple(st[1]), st[2]))
        self.gen.set_state(torch.tensor(s["gen"], dtype=torch.uint8))
        self.load = {int(k): v for k, v in s["load"].items()}
        self.events = [Event(**e) for e in s["events"]]

    # ---- scheduling ----------------------------------------------------------------------------
    def due(self, step: int, progress: float) -> bool:
        c = self.cfg
        return (c.evolve and step > 0 and step % c.evolve_every == 0
                and c.warmup_frac <= progress < 1.0 - c.freeze_frac)

    def observe(self, model: LuminaNet, step: int) -> None:
        """Update each cluster's load from the gradients just computed (call after backward)."""
        if not self.cfg.evolve or step % self.cfg.load_every:
            return
        a = self.cfg.load_ema
        for i, norm in model.cluster_grad_norms().items():
            v = norm / model.graph.clusters[i].size ** 0.5
            self.load[i] = a * self.load.get(i, v) + (1 - a) * v

    # ---- one event -----------------------------------------------------------------------------
    def evolve(self, model: LuminaNet, probe_x: torch.Tensor, probe_y: torch.Tensor, loss_fn, step: int) -> ops.Change | None:
        """Decide and apply one event. Returns the composed Change (graph, params, lineage) or None."""
        c, g = self.cfg, model.graph
        trace: dict = {}
        model.zero_grad(set_to_none=True)
        X = model.encode_inputs(probe_x)
        f2 = forward_fast(model, X, trace=trace)
        loss_fn(model.readout(f2), probe_y).backward()
        model.zero_grad(set_to_none=True)  # the probe's gradients are not a training step

        base = model.params_dict()
        change = ops.Change(g, base, origin=base)
        n_events = len(self.events)
        signals = _Signals(model, base, trace)

        def apply(new: ops.Change):
            nonlocal change
            change = ops.compose(change, new)

        # 1. prune the edges that contribute least to the loss
        pruned = set()
        if c.prune and g.edges:
            sal = {k: signals.saliency(*k) for k in g.edges}
            median = statistics.median(sal.values())
            old = [k for k, e in g.edges.items() if step - e.born >= c.min_edge_age and sal[k] < c.prune_frac * median]
            for (s, d) in sorted(old, key=lambda k: (sal[k], k))[: c.prune_k]:
                kind = change.graph.edges[(s, d)].kind
                apply(ops.prune(change.graph, change.params, s, d))
                pruned.add((s, d))
                self._log(step, "prune", [s, d], f"saliency {sal[(s, d)]:.3g} < {c.prune_frac}x median {median:.3g}",
                          [], [], kind=kind, score=sal[(s, d)])

        # 2. connect by the gradient a zero edge would receive
        if c.connect:
            for (s, d), score in self._candidates(change.graph, signals, pruned)[: c.connect_k]:
                apply(ops.connect(change.graph, change.params, s, d, model.edge_shape, step, c.connect_gate))
                self._log(step, "connect", [s, d], "largest |dL/d edge| among absent edges", [], [],
                          kind=change.graph.edges[(s, d)].kind, score=score)

        # 3. reduce neurons that contribute nothing
        if c.reduce:
            for i in g.ids:
                h = trace[i]["h2"].detach().abs().mean(0)  # (m_i,)
                contrib = h * change.params[ckey(i, "v")].detach().norm(dim=1)
                m = len(contrib)
                low = (contrib < c.reduce_frac * contrib.median()).nonzero().flatten().tolist()
                low = sorted(low, key=lambda k: float(contrib[k]))[: max(0, min(int(c.reduce_max * m), m - c.m_min))]
                if low:
                    keep = [k for k in range(m) if k not in set(low)]
                    apply(ops.reduce(change.graph, change.params, i, keep))
                    self._log(step, "reduce", [i], f"{len(low)} neurons below {c.reduce_frac}x median contribution",
                              [m], [len(keep)])

        # 4. grow the most loaded clusters
        if c.grow and self.load:
            budget = c.max_neurons - change.graph.n_neurons()
            ranked = sorted((i for i in change.graph.ids if i in self.load), key=lambda i: (-self.load[i], i))
            for i in ranked[: c.grow_k]:
                if budget < c.grow_n:
                    break
                m = change.graph.clusters[i].size
                apply(ops.grow(change.graph, change.params, i, c.grow_n, model.d_in, model.d_hidden, self.gen))
                budget -= c.grow_n
                self._log(step, "grow", [i], f"load {self.load[i]:.3g} in the top {c.grow_k}", [m], [m + c.grow_n],
                          score=self.load[i])

        # 5. split clusters that outgrew m_max
        if c.split:
            big = [i for i in change.graph.ids if change.graph.clusters[i].size > c.m_max]
            for i in sorted(big, key=lambda i: (-change.graph.clusters[i].size, i))[: c.split_k]:
                if len(change.graph.clusters) >= c.max_clusters:
                    break
                m = change.graph.clusters[i].size
                moved = self.rng.sample(range(m), m // 2)
                apply(ops.split(change.graph, change.params, i, moved, step, c.max_in_degree))
                child = change.graph.next_id - 1
                self.load[child] = self.load.get(i, 0.0)
                self._log(step, "split", [i, child], f"size {m} > m_max={c.m_max}", [m],
                          [change.graph.clusters[i].size, change.graph.clusters[child].size],
                          edges=[list(e) for e in change.edges])

        return change if len(self.events) > n_events else None

    def _candidates(self, g, signals: "_Signals", exclude: set) -> list[tuple[tuple[int, int], float]]:
        c = self.cfg
        ids = [i for i in g.ids if i in signals.ids]  # clusters that existed during the probe
        if not ids:
            return []
        scores = signals.candidate_scores(ids)  # (N, N): [a, b] = score of the edge ids[b] -> ids[a]
        indeg = {i: g.in_degree(i) for i in ids}
        allowed = {"feedforward": c.feedforward, "feedback": c.feedback, "recurrent": c.recurrent}
        cands = []
        for a, i in enumerate(ids):
            if indeg[i] >= c.max_in_degree:
                continue
            coef = signals.model.coef(indeg[i] + 1)
            for b, j in enumerate(ids):
                kind = "feedforward" if j < i else ("recurrent" if j == i else "feedback")
                if (j, i) in g.edges or (j, i) in exclude or not allowed[kind] or not g.allows(j, i):
                    continue
                cands.append(((j, i), coef * float(scores[a, b])))
        cands.sort(key=lambda t: (-t[1], t[0]))
        chosen, per_dst = [], {}
        for (j, i), s in cands:  # respect the in-degree cap within one event too
            if indeg[i] + per_dst.get(i, 0) < c.max_in_degree and s > 0:
                chosen.append(((j, i), s))
                per_dst[i] = per_dst.get(i, 0) + 1
        return chosen

    def _log(self, step, op, clusters, reason, before, after, kind=None, score=None, edges=None):
        self.events.append(Event(step, op, clusters, reason, before, after, kind,
                                 None if score is None else round(float(score), 6), edges))


class _Signals:
    """What a probe measured, per cluster: G_i = ∂L/∂s_i and what each source sends in pass 2 (its pass-2
    signal to higher ids, its pass-1 signal to ids ≤ its own)."""

    @torch.no_grad()
    def __init__(self, model: LuminaNet, params: dict, trace: dict):
        self.model, self.params, self.ids = model, params, sorted(trace)
        self.G = {i: s2_grad(trace[i]).detach() for i in self.ids}  # (B, d)
        self.F1 = {i: trace[i]["f1"].detach() for i in self.ids}
        self.F2 = {i: trace[i]["f2"].detach() for i in self.ids}
        if model.cl == "source":  # the message W_Cj f_j, computed once per source and pass
            self.M1 = {i: F.linear(self.F1[i], params[ckey(i, "w_c")]) for i in self.ids}
            self.M2 = {i: F.linear(self.F2[i], params[ckey(i, "w_c")]) for i in self.ids}

    @torch.no_grad()
    def saliency(self, j: int, i: int) -> float:
        """Σ_b |⟨c_ji, G_i⟩| for the existing edge j -> i."""
        n = self.model.graph.in_degree(i)
        w = self.params[ekey(j, i)]
        if self.model.cl == "source":
            c = (self.M2 if j < i else self.M1)[j] * w
        else:
            c = F.linear((self.F2 if j < i else self.F1)[j], w)
        return float((c * self.G[i]).sum(1).abs().sum()) * self.model.coef(n)

    @torch.no_grad()
    def candidate_scores(self, ids: list[int]) -> torch.Tensor:
        """(N, N) unscaled scores of every edge ids[b] -> ids[a] (see the module docstring)."""
        G = torch.stack([self.G[i] for i in ids])  # (N, B, d)
        lower = torch.tensor(ids).view(-1, 1) > torch.tensor(ids).view(1, -1)  # j < i: pass-2 signal
        if self.model.cl == "source":
            flat = lambda D: torch.stack([D[i] for i in ids]).flatten(1)  # (N, B*d)
            S2, S1 = G.flatten(1) @ flat(self.M2).T, G.flatten(1) @ flat(self.M1).T
            return torch.where(lower.to(G.device), S2, S1).abs()
        gram = lambda T: torch.bmm(T, T.transpose(1, 2)).flatten(1)  # (N, B*B)
        KG = gram(G)
        # ‖G_iᵀ F_j‖² = <G_i G_iᵀ, F_j F_jᵀ>: all pairs as one matmul of batch Gram matrices
        S2 = (KG @ gram(torch.stack([self.F2[i] for i in ids])).T).clamp(min=0).sqrt()
        S1 = (KG @ gram(torch.stack([self.F1[i] for i in ids])).T).clamp(min=0).sqrt()
        return torch.where(lower.to(G.device), S2, S1)
