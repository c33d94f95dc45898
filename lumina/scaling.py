"""Token scaling: validation loss against predicted training tokens, a power law per model, and where two
models' curves would meet (book chapter 4: what this CPU cannot run, extrapolated with its interval).

Each model is trained from scratch at several budgets N (tokens predicted in training; each run with its own
warm-up and cosine decay), and its validation loss fitted by least squares in log-log space:

    ln L(N) = ln a - b ln N          (a power law L = a N^-b; b > 0 when more tokens help)

The fit's parameter covariance (residual variance x (XᵀX)⁻¹) gives an interval by Monte Carlo: the parameters of
both models are drawn from their normal approximations and, per draw, the budget N* at which the two lines cross,
ln N* = (ln a1 - ln a2) / (b1 - b2), is kept when it lies ahead of the measured budgets (the curves meet later)
and counted as "diverge" otherwise. The answer is the median N* with its 5-95% range among meeting draws, and
the share of draws that meet. With 4-5 points per model this is a rough extrapolation, and it assumes the power
law holds beyond the largest budget: it says where the trend points, not what a larger run would get.
"""
from __future__ import annotations

import math

import torch

__all__ = ["fit_power_law", "meet"]


def fit_power_law(tokens: list[float], losses: list[float]) -> dict:
    """Least squares of ln L on ln N: {"ln_a", "b", "cov" (2x2, for (ln_a, b)), "n"}; needs >= 3 budgets."""
    if len(tokens) != len(losses) or len(tokens) < 3:
        raise ValueError(f"a power-law fit needs >= 3 (tokens, loss) pairs, got {len(tokens)} and {len(losses)}")
    x = torch.tensor([math.log(t) for t in tokens], dtype=torch.float64)
    y = torch.tensor([math.log(v) for v in losses], dtype=torch.float64)
    X = torch.stack([torch.ones_like(x), -x], 1)  # y = ln_a - b x
    coef = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    resid = y - X @ coef
    dof = max(len(x) - 2, 1)
    cov = float(resid.pow(2).sum()) / dof * torch.linalg.inv(X.T @ X)
    return {"ln_a": float(coef[0]), "b": float(coef[1]), "cov": cov.tolist(), "n": len(x)}


def predict(fit: dict, tokens: float) -> float:
    return math.exp(fit["ln_a"] - fit["b"] * math.log(tokens))


def meet(fit1: dict, fit2: dict, beyond: float, draws: int = 20000, seed: int = 0) -> dict:
    """Where model 1's fitted curve meets model 2's, beyond `beyond` tokens (the largest measured budget):
    {"tokens": median N*, "lo": 5%, "hi": 95% (among meeting draws), "p_meet": share of draws that meet}."""
    gen = torch.Generator().manual_seed(seed)

    def sample(fit):
        mean = torch.tensor([fit["ln_a"], fit["b"]], dtype=torch.float64)
        cov = torch.tensor(fit["cov"], dtype=torch.float64) + 1e-18 * torch.eye(2, dtype=torch.float64)
        L = torch.linalg.cholesky(cov)
        return mean + torch.randn(draws, 2, generator=gen, dtype=torch.float64) @ L.T

    p1, p2 = sample(fit1), sample(fit2)
    db = p1[:, 1] - p2[:, 1]
    ln_n = (p1[:, 0] - p2[:, 0]) / db.where(db != 0, torch.full_like(db, 1e-300))
    ok = ln_n > math.log(beyond)
    out = {"p_meet": float(ok.double().mean())}
    if ok.any():
        q = torch.quantile(ln_n[ok], torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
        out.update({"lo": math.exp(q[0]), "tokens": math.exp(q[1]), "hi": math.exp(q[2])})
    return out
