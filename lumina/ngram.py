"""n-gram references for the text chapter: tables of counts, not networks (book chapter 4).

A language model that cannot beat these has not learned more than which token tends to follow which.
`KneserNeyLM(order=2|3)` is interpolated Kneser-Ney (Chen & Goodman 1998, eq. 17-18) with one absolute
discount D per order, D = n1 / (n1 + 2 n2) from the counts of counts; the highest order uses raw counts, the
lower orders continuation counts N1+(• w), and the lowest order is interpolated with the uniform
distribution so that no token has probability 0:

    p_1(w)       = max(N1+(•w) - D1, 0) / N1+(••) + D1 · |{w: N1+(•w) > 0}| / N1+(••) · 1/V
    p_2(w | v)   = max(c2(vw) - D2, 0) / c2(v•) + D2 · N1+(v•) / c2(v•) · p_1(w)      (p_1(w) if c2(v•) = 0)
    p_3(w | u v) = max(c(uvw) - D3, 0) / c(uv•) + D3 · N1+(uv•) / c(uv•) · p_2(w | v)  (p_2 if c(uv•) = 0)

where in a trigram model c2 are the continuation counts N1+(• v w) and in a bigram model the raw counts.
The model reads windows like every text model here: position t of a window predicts token t+1 from the last
min(t+1, order-1) tokens up to t inside the window, so its per-position losses are comparable.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["KneserNeyLM"]


def _discount(counts: torch.Tensor) -> float:
    n1, n2 = float((counts == 1).sum()), float((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.5


class KneserNeyLM(nn.Module):
    """Interpolated Kneser-Ney n-gram model (order 2 or 3) of `tokens` (one stream, ids < `vocab_size`).
    `forward(x)` takes windows (B, T) and returns log-probabilities (B, T, V) of the next token."""

    def __init__(self, tokens: torch.Tensor, vocab_size: int, order: int = 2):
        super().__init__()
        if order not in (2, 3):
            raise ValueError(f"order must be 2 or 3, got {order}")
        V, t = vocab_size, tokens.flatten().cpu().long()
        self.order, self.V = order, V
        big = torch.bincount(t[:-1] * V + t[1:], minlength=V * V).view(V, V).double()  # c(v w)
        seen = (big > 0).double()
        # lowest order: continuation counts N1+(• w), interpolated with the uniform distribution
        cont = seen.sum(0)
        d1 = _discount(cont[cont > 0])
        p1 = (cont - d1).clamp(min=0) / cont.sum() + d1 * float((cont > 0).sum()) / cont.sum() / V
        # bigram level: raw counts for a bigram model, continuation counts N1+(• v w) under a trigram model
        if order == 3:
            tri = t[:-2] * V * V + t[1:-1] * V + t[2:]
            keys, tri_counts = torch.unique(tri, return_counts=True)
            c2 = torch.zeros(V * V, dtype=torch.float64).index_add_(0, keys % (V * V), torch.ones(len(keys), dtype=torch.float64)).view(V, V)
        else:
            c2 = big
        self.register_buffer("p2", self._interpolate(c2, p1), persistent=False)  # (V, V): p_2(w | v)
        if order == 3:
            self.d3 = _discount(tri_counts.double())
            ctx = keys // V  # u*V + v
            self.ctx_keys, first = torch.unique_consecutive(ctx, return_inverse=True)  # sorted contexts
            self.ctx_total = torch.zeros(len(self.ctx_keys), dtype=torch.float64).index_add_(0, first, tri_counts.double())
            self.ctx_types = torch.bincount(first, minlength=len(self.ctx_keys)).double()
            self.ctx_start = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(first), 0)])
            self.tri_w, self.tri_c = keys % V, tri_counts.double()

    @staticmethod
    def _interpolate(c: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
        d = _discount(c[c > 0])
        total, types = c.sum(1, keepdim=True), (c > 0).double().sum(1, keepdim=True)
        safe = total.clamp(min=1)
        p = (c - d).clamp(min=0) / safe + d * types / safe * lower.view(1, -1)
        return torch.where(total > 0, p, lower.view(1, -1).expand_as(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.cpu().long()
        B, T = x.shape
        p = self.p2[x].clone()  # (B, T, V): position t conditions on token t (its previous one)
        if self.order == 3:
            for b in range(B):
                for t in range(1, T):  # position 0 has no token before it inside the window
                    k = int(x[b, t - 1]) * self.V + int(x[b, t])
                    j = int(torch.searchsorted(self.ctx_keys, k))
                    if j < len(self.ctx_keys) and int(self.ctx_keys[j]) == k:
                        a, e = int(self.ctx_start[j]), int(self.ctx_start[j + 1])
                        tot = float(self.ctx_total[j])
                        row = p[b, t] * (self.d3 * float(self.ctx_types[j]) / tot)
                        row.index_add_(0, self.tri_w[a:e], (self.tri_c[a:e] - self.d3).clamp(min=0) / tot)
                        p[b, t] = row
        return p.log().float()
