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
     swap:    (`swap_k` > 0, with connect and prune on) a cluster at or above the cap scores its absent edges
              the same way (/ n_i: its in-degree stays) and swaps its weakest in-edge (lowest saliency, older
              than `min_edge_age`) for the best one when score > `swap_ratio` × that saliency (with
              `swap_score="per_example"` the candidate is scored by the saliency's own estimator, summed
              per-example magnitudes; the batch gradient's |Σ_b| is smaller than Σ_b |·| by about √B for
              noise-like terms, so under "batch" a swap almost never fires); at most `swap_k`
              swaps per event, the largest score/saliency ratios first. So edges keep evolving at the cap;
  3. reduce:  a neuron's contribution is mean|h_n| · ‖v_n‖ on the probe; those below reduce_frac × the
              cluster's median are removed (at most `reduce_max` of the cluster, never below `m_min`). With the
              capacity schedule on and the network at `max_neurons`, only dead neurons (below dead_frac × the
              median) are removed: trained neurons are no longer traded for fresh ones;
  4. grow:    the `grow_k` clusters with the highest load (EMA of their gradient norm per sqrt(neuron),
              measured every `load_every` training steps) gain `grow_n` neurons, up to `max_neurons`. With
              `grow_until_frac` > 0 (the capacity schedule) each event instead grows the deficit to
              `max_neurons` divided by the events left until `grow_until_frac` of training, in chunks of
              `grow_n` dealt to the clusters in order of load: the budget is reached by then;
  5. split:   clusters with more than `m_max` neurons split in two (a random half of the neurons moves); the
              child inherits every edge of its parent, over the in-degree cap if need be, with the gates
              rescaled so the split is exact where it can be (`ops` module docstring; the event's reason says
              whether it was). `split_keep_wiring=False` restores v2's split (the cap dropped inherited edges).
All random choices draw from the policy's own generator (seeded from the run seed), so a run's architecture
is reproducible; each decision is appended to `events` (and to a JSON-lines log by the trainer).
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import EvolutionConfig
from ..model import LuminaNet
from ..naming import ckey, ekey
from ..topology import edge_kind, is_feedforward
from . import ops

OPS = ("split", "grow", "reduce", "connect", "prune")  # the mechanisms, each with its switch in EvolutionConfig
EVENT_OPS = (*OPS, "swap")  # what an event can be: a swap is a prune and a connect into one cluster at the cap


@dataclass
class Event:
    step: int
    op: str  # split | grow | reduce | connect | prune | swap
    clusters: list[int]  # split: parent, child; connect/prune: src, dst; swap: old src, new src, dst
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
    if "S" in entry:  # fast executor: row t of the group's S
        g = entry["S"].grad
        return g[entry["t"]] if g is not None else torch.zeros_like(entry["S"][entry["t"]])
    g = entry["s2"].grad
    return g if g is not None else torch.zeros_like(entry["s2"])


class EvolutionPolicy:
    def __init__(self, cfg: EvolutionConfig, seed: int, state: dict | None = None):
        """A fresh policy, or the one a checkpoint stored (`state`, from `state_dict`)."""
        self.cfg = cfg
        self.rng = random.Random(f"evolution-{seed}")  # evolution's own stream
        self.gen = torch.Generator().manual_seed(seed + 7919)  # initialises new neurons
        self.load: dict[int, float] = {}
        self.events: list[Event] = []
        self._change: ops.Change | None = None  # the event being composed (inside `evolve` only)
        if state:
            self.load_state_dict(state)

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
    def evolve(self, model: LuminaNet, probe_x: torch.Tensor, probe_y: torch.Tensor, loss_fn, step: int,
               progress: float | None = None) -> ops.Change | None:
        """Decide and apply one event at `step` (`progress` = step / total steps, which the capacity schedule
        needs; None plans as if this were the schedule's last event). Returns the composed Change or None."""
        c = self.cfg
        trace: dict = {}
        model.zero_grad(set_to_none=True)
        loss_fn(model(probe_x, trace=trace), probe_y).backward()
        model.zero_grad(set_to_none=True)  # the probe's gradients are not a training step

        base = model.params_dict()
        self._change, n_events = ops.Change(model.graph, base, origin=base), len(self.events)
        signals = _Signals(model, base, trace)
        swaps = c.swap_k and c.connect and c.prune  # a swap is a prune and a connect: both mechanisms on
        sal = signals.saliencies(list(model.graph.edges)) if c.prune or swaps else {}
        pruned = self._prune(sal, step) if c.prune and sal else set()
        if c.connect:
            self._connect(model, signals, pruned, step)
        if swaps:
            self._swap(model, signals, sal, pruned, step)
        if c.reduce:
            self._reduce(trace, step)
        if c.grow and self.load:
            self._grow(model, step, progress)
        if c.split:
            self._split(model, step)
        change, self._change = self._change, None
        return change if len(self.events) > n_events else None

    def _apply(self, new: ops.Change) -> None:
        self._change = ops.compose(self._change, new)

    def _prune(self, sal: dict, step: int) -> set:
        """1. prune the edges that contribute least to the loss."""
        c, g = self.cfg, self._change.graph
        median = statistics.median(sal.values())
        old = [k for k, e in g.edges.items() if step - e.born >= c.min_edge_age and sal[k] < c.prune_frac * median]
        pruned = set()
        for (s, d) in sorted(old, key=lambda k: (sal[k], k))[: c.prune_k]:
            kind = self._change.graph.edges[(s, d)].kind
            self._apply(ops.prune(self._change.graph, self._change.params, s, d))
            pruned.add((s, d))
            self._log(step, "prune", [s, d], f"saliency {sal[(s, d)]:.3g} < {c.prune_frac}x median {median:.3g}",
                      [], [], kind=kind, score=sal[(s, d)])
        return pruned

    def _connect(self, model: LuminaNet, signals: "_Signals", pruned: set, step: int) -> None:
        """2. connect by the gradient a zero edge would receive."""
        c = self.cfg
        for (s, d), score in self._candidates(self._change.graph, signals, pruned)[: c.connect_k]:
            self._apply(ops.connect(self._change.graph, self._change.params, s, d, model.edge_shape, step,
                                    c.connect_gate))
            self._log(step, "connect", [s, d], "largest |dL/d edge| among absent edges", [], [],
                      kind=self._change.graph.edges[(s, d)].kind, score=score)

    def _swap(self, model: LuminaNet, signals: "_Signals", sal: dict, pruned: set, step: int) -> None:
        """2b. a cluster at the in-degree cap swaps its weakest in-edge (old enough to be pruned) for its best
        absent edge, when that edge's score beats `swap_ratio` x the weak edge's saliency; the `swap_k` swaps
        with the largest ratio happen."""
        c, g = self.cfg, self._change.graph
        best: dict = {}
        for (j, i), score in self._scored(g, signals, pruned, full=True, per_example=c.swap_score == "per_example"):
            best.setdefault(i, (j, score))  # sorted best first
        planned = []
        for i, (j, score) in best.items():
            old = [e.src for e in g.in_edges(i) if (e.src, i) in sal and step - e.born >= c.min_edge_age]
            if not old:
                continue
            k = min(old, key=lambda k: (sal[(k, i)], k))
            weak = sal[(k, i)]
            if score > c.swap_ratio * weak:
                planned.append((score / weak if weak > 0 else float("inf"), i, k, j, score, weak))
        for _, i, k, j, score, weak in sorted(planned, key=lambda t: (-t[0], t[1]))[: c.swap_k]:
            self._apply(ops.swap(self._change.graph, self._change.params, i, k, j, model.edge_shape, step,
                                 c.connect_gate))
            self._log(step, "swap", [k, j, i], f"score {score:.3g} of {j}->{i} > {c.swap_ratio}x saliency "
                      f"{weak:.3g} of {k}->{i}, its weakest in-edge at the cap", [], [],
                      kind=self._change.graph.edges[(j, i)].kind, score=score)

    def _reduce(self, trace: dict, step: int) -> None:
        """3. reduce neurons that contribute nothing. At the neuron budget, with the capacity schedule on,
        only dead ones (contribution < dead_frac x median): trained neurons are no longer traded for new ones."""
        c, g = self.cfg, self._change.graph
        at_budget = c.grow_until_frac > 0 and g.n_neurons() >= c.max_neurons
        frac = c.dead_frac if at_budget else c.reduce_frac
        for i in g.ids:
            h = trace[i]["h2"].detach().abs().mean(0)  # (m_i,)
            contrib = h * self._change.params[ckey(i, "v")].detach().norm(dim=1)
            m = len(contrib)
            low = (contrib < frac * contrib.median()).nonzero().flatten().tolist()
            low = sorted(low, key=lambda k: float(contrib[k]))[: max(0, min(int(c.reduce_max * m), m - c.m_min))]
            if low:
                keep = [k for k in range(m) if k not in set(low)]
                self._apply(ops.reduce(self._change.graph, self._change.params, i, keep))
                what = "dead (at the neuron budget)" if at_budget else "below"
                self._log(step, "reduce", [i], f"{len(low)} neurons {what} {frac}x median contribution", [m], [len(keep)])

    def _grow(self, model: LuminaNet, step: int, progress: float | None) -> None:
        """4. grow the most loaded clusters."""
        ranked = self._ranked(self._change.graph)
        for i, n in self._growth(self._change.graph, step, progress):
            m = self._change.graph.clusters[i].size
            self._apply(ops.grow(self._change.graph, self._change.params, i, n, model.d_in, model.d_hidden, self.gen))
            self._log(step, "grow", [i], f"load {self.load[i]:.3g}, rank {ranked.index(i) + 1} of {len(ranked)}",
                      [m], [m + n], score=self.load[i])

    def _ranked(self, g) -> list[int]:
        return sorted((i for i in g.ids if i in self.load), key=lambda i: (-self.load[i], i))

    def _growth(self, g, step: int, progress: float | None) -> list[tuple[int, int]]:
        """(cluster, neurons) to add now. Without the capacity schedule: `grow_n` to each of the `grow_k` most
        loaded clusters while the budget admits it. With it (`grow_until_frac` > 0): the deficit to
        `max_neurons`, divided by the events left up to `grow_until_frac` of training (all of it from then on,
        which at the budget only refills what reduce removed), dealt out in chunks of `grow_n` to the clusters
        in order of load, round and round."""
        c, ranked = self.cfg, self._ranked(g)
        budget = c.max_neurons - g.n_neurons()
        if not c.grow_until_frac:
            return [(i, c.grow_n) for i in ranked[: max(0, min(c.grow_k, budget // c.grow_n))]]
        need = -(-budget // self._events_left(step, progress)) if budget > 0 else 0  # ceil
        sizes: dict[int, int] = {}
        for k in range(-(-need // c.grow_n) if ranked else 0):
            i = ranked[k % len(ranked)]
            sizes[i] = sizes.get(i, 0) + min(c.grow_n, need - k * c.grow_n)
        return [(i, sizes[i]) for i in ranked if i in sizes]

    def _events_left(self, step: int, progress: float | None) -> int:
        """Events from `step` up to the last one at or before `grow_until_frac` of training, this one included."""
        c = self.cfg
        if not progress:
            return 1
        total = round(step / progress)
        last = math.floor(c.grow_until_frac * total + 1e-9) // c.evolve_every
        return max(1, last - step // c.evolve_every + 1)

    def _split(self, model: LuminaNet, step: int) -> None:
        """5. split clusters that outgrew m_max; the child keeps every edge of its parent."""
        c, g = self.cfg, self._change.graph
        big = [i for i in g.ids if g.clusters[i].size > c.m_max]
        for i in sorted(big, key=lambda i: (-g.clusters[i].size, i))[: c.split_k]:
            g = self._change.graph
            if len(g.clusters) >= c.max_clusters:
                break
            m = g.clusters[i].size
            moved = self.rng.sample(range(m), m // 2)
            cap = 0 if c.split_keep_wiring else c.max_in_degree
            new = ops.split(g, self._change.params, i, moved, step, aggregate=model.aggregate, max_in_degree=cap)
            self._apply(new)
            why = new.inexact
            child = self._change.graph.next_id - 1
            self.load[child] = self.load.get(i, 0.0)
            self._log(step, "split", [i, child], f"size {m} > m_max={c.m_max}; " + ("exact" if why is None else
                      f"not exact: {why}"), [m], [self._change.graph.clusters[i].size,
                                                   self._change.graph.clusters[child].size],
                      edges=[list(e) for e in self._change.edges])

    def _candidates(self, g, signals: "_Signals", exclude: set) -> list[tuple[tuple[int, int], float]]:
        """The edges connect adds: the best scored into clusters below the cap, the cap held within the event."""
        c, indeg = self.cfg, g.in_degrees()
        chosen = []
        for (j, i), s in self._scored(g, signals, exclude, full=False):
            if indeg[i] < c.max_in_degree and s > 0:
                chosen.append(((j, i), s))
                indeg[i] += 1
        return chosen

    def _scored(self, g, signals: "_Signals", exclude: set, full: bool,
                per_example: bool = False) -> list[tuple[tuple[int, int], float]]:
        """Every allowed absent edge j -> i (not in `exclude`) into a cluster below the cap (`full=False`,
        connect: scaled by coef(n_i + 1)) or at or above it (`full=True`, swap: coef(n_i), the in-degree stays),
        best first. `per_example`: scored like the saliency of an existing edge (summed per-example magnitudes),
        not by the batch gradient."""
        c = self.cfg
        ids = [i for i in g.ids if i in signals.ids]  # clusters that existed during the probe
        if not ids:
            return []
        # (N, N): [a, b] = score of the edge ids[b] -> ids[a]
        scores = signals.candidate_magnitudes(ids) if per_example else signals.candidate_scores(ids)
        allowed = {"feedforward": c.feedforward, "feedback": c.feedback, "recurrent": c.recurrent}
        cands, indeg = [], g.in_degrees()
        for a, i in enumerate(ids):
            n = indeg[i]
            if (n >= c.max_in_degree) != full:
                continue
            coef = signals.model.coef(n if full else n + 1)
            for b, j in enumerate(ids):
                if (j, i) in g.edges or (j, i) in exclude or not allowed[edge_kind(j, i)] or not g.allows(j, i):
                    continue
                cands.append(((j, i), coef * float(scores[a, b])))
        cands.sort(key=lambda t: (-t[1], t[0]))
        return cands

    def _log(self, step, op, clusters, reason, before, after, kind=None, score=None, edges=None):
        self.events.append(Event(step, op, clusters, reason, before, after, kind,
                                 None if score is None else round(float(score), 6), edges))


def _reads_pass2(ids: list[int]) -> torch.Tensor:
    """(N, N) bool: [a, b] whether an edge ids[b] -> ids[a] is feedforward, so its pass-2 signal is read."""
    t = torch.tensor(ids)
    return is_feedforward(t.view(1, -1), t.view(-1, 1))


class _Signals:
    """What a probe measured, per cluster: G_i = ∂L/∂s_i and what each source sends in pass 2 (its pass-2
    signal to higher ids, its pass-1 signal to ids ≤ its own)."""

    @torch.no_grad()
    def __init__(self, model: LuminaNet, params: dict, trace: dict):
        self.model, self.params, self.ids = model, params, sorted(trace)
        self.n_in = model.graph.in_degrees()  # the probed topology's (the event's changes go to a copy)
        self._scores: tuple[list[int], torch.Tensor] | None = None
        self.G = {i: s2_grad(trace[i]).detach() for i in self.ids}  # (B, d)
        self.F1 = {i: trace[i]["f1"].detach() for i in self.ids}
        self.F2 = {i: trace[i]["f2"].detach() for i in self.ids}
        if model.cl == "source":  # the message W_Cj f_j, computed once per source and pass
            self.M1 = {i: F.linear(self.F1[i], params[ckey(i, "w_c")]) for i in self.ids}
            self.M2 = {i: F.linear(self.F2[i], params[ckey(i, "w_c")]) for i in self.ids}

    @torch.no_grad()
    def saliency(self, j: int, i: int) -> float:
        """Σ_b |⟨c_ji, G_i⟩| for the existing edge j -> i."""
        n = self.n_in[i]
        w = self.params[ekey(j, i)]
        if self.model.cl == "source":
            c = (self.M2 if is_feedforward(j, i) else self.M1)[j] * w
        else:
            c = F.linear((self.F2 if is_feedforward(j, i) else self.F1)[j], w)
        return float((c * self.G[i]).sum(1).abs().sum()) * self.model.coef(n)

    @torch.no_grad()
    def saliencies(self, edges: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
        """`saliency` of every edge of `edges` (the same values, to float rounding). cl="source": a gate scales a
        message, so Σ_b |⟨g M_j, G_i⟩| = |g| Σ_b |⟨M_j, G_i⟩|, the per-example magnitude of `candidate_magnitudes`,
        computed for every pair at once (two products of the N clusters' signals, not one per edge)."""
        if self.model.cl != "source" or not edges:
            return {e: self.saliency(*e) for e in edges}
        ids = sorted({x for e in edges for x in e})
        pos = {i: a for a, i in enumerate(ids)}
        mag = self.candidate_magnitudes(ids)  # [a, b]: edge ids[b] -> ids[a]
        src = torch.tensor([pos[j] for j, _ in edges], device=mag.device)
        dst = torch.tensor([pos[i] for _, i in edges], device=mag.device)
        gates = torch.stack([self.params[ekey(j, i)].reshape(()) for j, i in edges]).abs()
        coef = torch.tensor([self.model.coef(self.n_in[i]) for _, i in edges], dtype=mag.dtype, device=mag.device)
        return dict(zip(edges, (mag[dst, src] * gates * coef).tolist()))

    @torch.no_grad()
    def candidate_magnitudes(self, ids: list[int]) -> torch.Tensor:
        """(N, N) unscaled per-example magnitudes of every edge ids[b] -> ids[a], the saliency's estimator for
        an edge that is not there yet: Σ_b |⟨W_Cj f_j, G_i⟩| at gate 1 (cl="source"); with cl="edge", whose
        new W_C is zero, Σ_b ‖G_i‖‖f_j‖, the per-example norm of the gradient its W_C would receive."""
        G = torch.stack([self.G[i] for i in ids])  # (N, B, d)
        pass2 = _reads_pass2(ids).to(G.device)
        if self.model.cl == "source":
            pair = lambda D: torch.einsum("abd,cbd->acb", G, torch.stack([D[i] for i in ids])).abs().sum(-1)
            return torch.where(pass2, pair(self.M2), pair(self.M1))
        norms = lambda D: torch.stack([D[i] for i in ids]).norm(dim=-1)  # (N, B)
        gn = G.norm(dim=-1)
        return torch.where(pass2, gn @ norms(self.F2).T, gn @ norms(self.F1).T)

    def candidate_scores(self, ids: list[int]) -> torch.Tensor:
        """(N, N) unscaled scores of every edge ids[b] -> ids[a] (see the module docstring), computed once."""
        if self._scores is None or self._scores[0] != ids:
            self._scores = (list(ids), self._candidate_scores(ids))
        return self._scores[1]

    @torch.no_grad()
    def _candidate_scores(self, ids: list[int]) -> torch.Tensor:
        G = torch.stack([self.G[i] for i in ids])  # (N, B, d)
        pass2 = _reads_pass2(ids)
        if self.model.cl == "source":
            flat = lambda D: torch.stack([D[i] for i in ids]).flatten(1)  # (N, B*d)
            S2, S1 = G.flatten(1) @ flat(self.M2).T, G.flatten(1) @ flat(self.M1).T
            return torch.where(pass2.to(G.device), S2, S1).abs()
        gram = lambda T: torch.bmm(T, T.transpose(1, 2)).flatten(1)  # (N, B*B)
        KG = gram(G)
        # ‖G_iᵀ F_j‖² = <G_i G_iᵀ, F_j F_jᵀ>: all pairs as one matmul of batch Gram matrices
        S2 = (KG @ gram(torch.stack([self.F2[i] for i in ids])).T).clamp(min=0).sqrt()
        S1 = (KG @ gram(torch.stack([self.F1[i] for i in ids])).T).clamp(min=0).sqrt()
        return torch.where(pass2.to(G.device), S2, S1)
