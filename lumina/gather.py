"""The CL's gate-weighted gather of in-messages as one fused CPU kernel (the fast executor's, cl="source").

For the k targets of a group, S[t] = Σ_s w[t, s] · m_{g[t,s]}: each target's in-edges' source messages, read in
place (each a (B, d) row of its group's message tensor) and summed with their weights (gate × 1/n_i).
The same sum written with torch ops (`lumina.executor._Groups.cl`, the form this replaces where it can) stacks
every in-message into a (k, D, B·d) tensor once per pass, reads it again in the gate product, and does both once
more in the backward; on the headline CIFAR-10 network (14 in-edges per cluster) that is a fifth of a training
step (`python -m benchmarks step_bound` measures the gathers). The kernel reads each message once per read and
writes nothing but S; its backward writes w · dS[t] into each row's gradient (adding where a group reads a row
twice) and forms dw[t, s] = <dS[t], m> in the same pass. Its inputs are the rows read, not the groups' whole tensors: a whole tensor's gradient would be
zero-filled and then added by autograd for every group that reads one row of it.

Built on first use with torch.utils.cpp_extension (a C++ compiler, and ninja: the system's or the project's
wheel; about 20 s, then cached per machine under ~/.cache/torch_extensions). Where the build fails, the torch-ops
form runs, after one warning; off the CPU, outside float32 or under autocast it always does. The two forms sum in
different orders: they agree to float rounding, not bit for bit.
"""
from __future__ import annotations

import logging
import os
import shutil
import warnings
from contextlib import contextmanager

import torch

_SOURCE = r"""
#include <torch/extension.h>
#include <vector>

// S (k, n): S[t] = sum_s w[t*D+s] * rows[g[t*D+s]], over the slots with g >= 0; each row n contiguous floats.
torch::Tensor gather_forward(std::vector<torch::Tensor> rows, torch::Tensor g, torch::Tensor w, int64_t k, int64_t D,
                             int64_t n) {
  auto S = torch::zeros({k, n}, w.options());
  float* out = S.data_ptr<float>();
  const int64_t* gp = g.data_ptr<int64_t>();
  const float* wp = w.data_ptr<float>();
  std::vector<const float*> base(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) base[i] = rows[i].data_ptr<float>();
  for (int64_t t = 0; t < k; ++t) {
    float* o = out + t * n;
    for (int64_t s = 0; s < D; ++s) {
      const int64_t q = t * D + s;
      if (gp[q] < 0) continue;
      const float a = wp[q];
      const float* x = base[gp[q]];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] += a * x[j];
    }
  }
  return S;
}

// The gradients: one (n) per row, then dw (k*D). A row's gradient is written by the first slot that reads it and
// added to by the others, so it is never zero-filled first.
std::vector<torch::Tensor> gather_backward(torch::Tensor dS, std::vector<torch::Tensor> rows, torch::Tensor g,
                                           torch::Tensor w, int64_t k, int64_t D, int64_t n) {
  std::vector<torch::Tensor> grads;
  std::vector<float*> dbase(rows.size());
  std::vector<const float*> base(rows.size());
  std::vector<char> touched(rows.size(), 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    grads.push_back(torch::empty_like(rows[i]));
    dbase[i] = grads.back().data_ptr<float>();
    base[i] = rows[i].data_ptr<float>();
  }
  auto dw = torch::zeros({k * D}, w.options());
  float* dwp = dw.data_ptr<float>();
  const float* d = dS.data_ptr<float>();
  const int64_t* gp = g.data_ptr<int64_t>();
  const float* wp = w.data_ptr<float>();
  for (int64_t t = 0; t < k; ++t) {
    const float* dt = d + t * n;
    for (int64_t s = 0; s < D; ++s) {
      const int64_t q = t * D + s;
      if (gp[q] < 0) continue;
      const float a = wp[q];
      const float* x = base[gp[q]];
      float* dx = dbase[gp[q]];
      float acc = 0.f;
      if (touched[gp[q]]) {
#pragma omp simd reduction(+:acc)
        for (int64_t j = 0; j < n; ++j) { dx[j] += a * dt[j]; acc += dt[j] * x[j]; }
      } else {
#pragma omp simd reduction(+:acc)
        for (int64_t j = 0; j < n; ++j) { dx[j] = a * dt[j]; acc += dt[j] * x[j]; }
        touched[gp[q]] = 1;
      }
      dwp[q] = acc;
    }
  }
  grads.push_back(dw);
  return grads;
}
"""

KERNEL = {"on": True, "mod": None}  # "on": False after a failed build (or to time the torch-ops form beside it)


def _module():
    if KERNEL["mod"] is None:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU machines
        from torch.utils.cpp_extension import load_inline

        if shutil.which("ninja") is None:  # the project's ninja wheel, where the system has none on PATH
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")

        KERNEL["mod"] = load_inline("lumina_cl_gather", cpp_sources=_SOURCE, functions=["gather_forward", "gather_backward"],
                                    extra_cflags=["-O3", "-march=native", "-fopenmp-simd"])
    return KERNEL["mod"]


@contextmanager
def torch_ops():
    """The torch-ops form inside: what FlopCounterMode can count (it counts the kernel's multiply-adds as
    zero, as it does fused attention's), and the form to time beside the kernel."""
    on, KERNEL["on"] = KERNEL["on"], False
    try:
        yield
    finally:
        KERNEL["on"] = on


def usable(like: torch.Tensor) -> bool:
    """Whether the kernel serves tensors like `like` here: on the CPU, float32, and built (building it now if it
    was never tried; a failed build turns it off, with one warning)."""
    if not KERNEL["on"] or like.device.type != "cpu" or like.dtype != torch.float32:
        return False
    try:
        _module()
        return True
    except Exception as err:  # no compiler, no ninja: the torch-ops form
        KERNEL["on"] = False
        warnings.warn(f"the fast executor gathers in-messages with torch ops (the fused kernel did not build: "
                      f"{type(err).__name__}: {str(err)[:200]})")
        return False


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, g, n, *rows):
        k, D = w.shape
        flat_w = w.detach().reshape(-1).contiguous()
        ctx.save_for_backward(flat_w, g, *rows)
        ctx.sizes = (k, D, n)
        return KERNEL["mod"].gather_forward(list(rows), g, flat_w, k, D, n)

    @staticmethod
    def backward(ctx, dS):
        w, g, *rows = ctx.saved_tensors
        k, D, n = ctx.sizes
        *drows, dw = KERNEL["mod"].gather_backward(dS.contiguous(), rows, g, w, k, D, n)
        return (dw.view(k, D), None, None, *[dr if need else None for dr, need in zip(drows, ctx.needs_input_grad[3:])])


def gather(w: torch.Tensor, g: torch.Tensor, rows: list[torch.Tensor], n: int) -> torch.Tensor:
    """S (k, n) = Σ_s w[t, s] · rows[g[t·D + s]] for w (k, D) and rows of n contiguous values (g < 0: a padded slot,
    which adds nothing; w still gets its gradient there, zero, as the torch-ops form gives it). Call only where
    `usable`."""
    return _Gather.apply(w, g, n, *(r.contiguous() for r in rows))  # the kernel reads n values from each row's start


def index(slots: list) -> tuple[list, torch.Tensor]:
    """For slots in target-major order, each a source row (any hashable name) or None (padding): the distinct rows
    read, in order of first reading, and g, each slot's position among them (-1: padding)."""
    rows = list(dict.fromkeys(q for q in slots if q is not None))
    at = {q: i for i, q in enumerate(rows)}
    return rows, torch.tensor([at[q] if q is not None else -1 for q in slots], dtype=torch.int64)
