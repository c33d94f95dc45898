"""When and where the network evolves (SPEC §2, [ours]: the paper does not publish its policy).

Every `evolve_every` steps, after `warmup_frac` of training and before the last `freeze_frac`, one event:
  1. prune:   edges older than `min_edge_age` whose ‖W_C‖ < prune_frac × median edge norm are removed;
  2. connect: every absent edge j→i is scored by the gradient the loss would send to a zero W_C
              (RigL): ‖∂L/∂W_C‖_F = coef_i ‖G_iᵀ F_j‖_F with G_i = ∂L/∂s_i (pass 2) and F_j the source's
              output as pass 2 would read it; the `connect_k` best are added with W_C = 0;
  3. reduce:  a neuron's contribution is mean|h_n| · ‖v_n‖ on a probe batch; those below
              reduce_frac × the cluster's median are removed (at most `reduce_max` of the cluster);
  4. grow:    the `grow_k` clusters with the highest load (EMA of their parameters' gradient norm per
              neuron) gain `grow_n` neurons;
  5. split:   clusters with more than `m_max` neurons split in two (a random half of the neurons moves).
All random choices draw from the policy's own generator (seeded from the run seed), so a run's architecture
is reproducible; each decision is appended to `events` (and to a JSON-lines log by the trainer).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..config import EvolutionConfig
from ..model import LuminaNet, ckey, ekey, forward_fast
from . import ops


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

    @torch.no_grad()
    def observe(self, model: LuminaNet, step: int) -> None:
        """Update each cluster's load from the gradients just computed (call after backward): the norm of
        its IL, NL and CL-output gradients per sqrt(neuron), read from the packed per-level gradients."""
        if not self.cfg.evolve or step % self.cfg.load_every:
            return
        plan, a = model._plan, self.cfg.load_ema
        for L, lvl in enumerate(plan.levels):
            grads = [model.p[f"L{L}_{k}"].grad for k in ("w_in", "ut", "v")]
            if any(t is None for t in grads):
                return
            sq = sum(t.pow(2).flatten(1).sum(1) for t in grads)  # (k,)
            for t, i in enumerate(lvl):
                v = float(sq[t]) ** 0.5 / model.graph.clusters[i].size ** 0.5
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

        def apply(new: ops.Change):
            nonlocal change
            change = ops.compose(change, new)

        # 1. prune quiet edges
        if c.prune and g.edges:
            norms = {k: float(change.params[ekey(*k)].detach().norm()) for k in g.edges}
            median = float(torch.tensor(list(norms.values())).median())
            for (s, d), e in sorted(g.edges.items()):
                if step - e.born >= c.min_edge_age and norms[(s, d)] < c.prune_frac * median:
                    apply(ops.prune(change.graph, change.params, s, d))
                    self._log(step, "prune", [s, d], f"|W_C|={norms[(s, d)]:.3g} < {c.prune_frac}x median {median:.3g}",
                              [], [], kind=e.kind, score=norms[(s, d)])

        # 2. connect by the gradient a zero W_C would receive
        if c.connect:
            for (s, d), score in self._score_candidates(change.graph, trace, model)[: c.connect_k]:
                apply(ops.connect(change.graph, change.params, s, d, model.d_hidden, step))
                self._log(step, "connect", [s, d], "largest |dL/dW_C| among absent edges", [], [],
                          kind=change.graph.edges[(s, d)].kind, score=score)

        # 3. reduce neurons that contribute nothing
        if c.reduce:
            for i in g.ids:
                h = trace[i]["h2"].detach().abs().mean(0)  # (m_i,)
                contrib = h * change.params[ckey(i, "v")].detach().norm(dim=1)
                m = len(contrib)
                low = (contrib < c.reduce_frac * contrib.median()).nonzero().flatten().tolist()
                low = sorted(low, key=lambda k: float(contrib[k]))[: min(int(c.reduce_max * m), m - c.m_min)]
                if low:
                    keep = [k for k in range(m) if k not in set(low)]
                    apply(ops.reduce(change.graph, change.params, i, keep))
                    self._log(step, "reduce", [i], f"{len(low)} neurons below {c.reduce_frac}x median contribution",
                              [m], [len(keep)])

        # 4. grow the most loaded clusters
        if c.grow and self.load:
            budget = c.max_neurons - change.graph.n_neurons()
            ranked = sorted((i for i in change.graph.ids if i in self.load), key=lambda i: -self.load[i])
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
            for i in sorted(big, key=lambda i: -change.graph.clusters[i].size)[: c.split_k]:
                if len(change.graph.clusters) >= c.max_clusters:
                    break
                m = change.graph.clusters[i].size
                moved = self.rng.sample(range(m), m // 2)
                apply(ops.split(change.graph, change.params, i, moved, step))
                child = change.graph.next_id - 1
                self.load[child] = self.load.get(i, 0.0)
                self._log(step, "split", [i, child], f"size {m} > m_max={c.m_max}", [m],
                          [change.graph.clusters[i].size, change.graph.clusters[child].size])

        return change if len(self.events) > n_events else None

    def _score_candidates(self, g, trace, model) -> list[tuple[tuple[int, int], float]]:
        c = self.cfg
        ids = [i for i in g.ids if i in trace]  # clusters that existed during the probe
        if not ids:
            return []
        G = torch.stack([s2_grad(trace[i]) for i in ids])
        F1 = torch.stack([trace[i]["f1"].detach() for i in ids])
        F2 = torch.stack([trace[i]["f2"].detach() for i in ids])
        gram = lambda T: torch.bmm(T, T.transpose(1, 2)).flatten(1)  # (N, B*B)
        KG = gram(G)
        # ‖G_iᵀ F_j‖² = <G_i G_iᵀ, F_j F_jᵀ>: all pairs as one matmul of batch Gram matrices
        S2, S1 = (KG @ gram(F2).T).clamp(min=0).sqrt(), (KG @ gram(F1).T).clamp(min=0).sqrt()
        indeg = {i: len(g.in_edges(i)) for i in ids}
        allowed = {"feedforward": c.feedforward, "feedback": c.feedback, "recurrent": c.recurrent}
        cands = []
        for a, i in enumerate(ids):
            if indeg[i] >= c.max_in_degree:
                continue
            coef = model._coef(indeg[i] + 1)
            for b, j in enumerate(ids):
                kind = "feedforward" if j < i else ("recurrent" if j == i else "feedback")
                if (j, i) in g.edges or not allowed[kind]:
                    continue
                cands.append(((j, i), coef * float(S2[a, b] if j < i else S1[a, b])))
        cands.sort(key=lambda t: (-t[1], t[0]))
        chosen, per_dst = [], {}
        for (j, i), s in cands:  # respect the in-degree cap within one event too
            if indeg[i] + per_dst.get(i, 0) < c.max_in_degree and s > 0:
                chosen.append(((j, i), s))
                per_dst[i] = per_dst.get(i, 0) + 1
        return chosen

    def _log(self, step, op, clusters, reason, before, after, kind=None, score=None):
        self.events.append(Event(step, op, clusters, reason, before, after, kind,
                                 None if score is None else round(float(score), 6)))
