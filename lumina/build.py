"""Config -> the things a run needs: the device, the task and the model (with its initial graph).

The one place that knows how an `ExperimentConfig` maps onto classes; the loop and the results store call it,
never the other way round.
"""
from __future__ import annotations

import torch
from torch import nn

from .baselines import build_baseline
from .baselines.gpt2 import build_gpt2
from .config import ExperimentConfig
from .model import LuminaNet
from .paths import results_root
from .tasks import ImageTask, n_slots_for_images
from .text import TextTask
from .topology import Graph


def resolve_device(cfg: ExperimentConfig) -> torch.device:
    want = cfg.train.device
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={want!r} but no CUDA device is available here; use device='auto' or 'cpu'")
    return torch.device(want)


def make_task(cfg: ExperimentConfig):
    return TextTask(cfg) if cfg.data.dataset == "tinystories" else ImageTask(cfg)


def initial_graph(cfg: ExperimentConfig) -> Graph:
    m = cfg.model
    if m.init_from:  # e.g. an evolved run's final topology, trained from scratch (the intro: how a comparison is run, control (a))
        path = results_root() / m.init_from
        if not path.is_file():
            raise ValueError(f"init_from={m.init_from!r}: {path} does not exist; train the run it names first")
        return Graph.from_json(path.read_text())
    if cfg.data.dataset == "tinystories" and m.text_net == "recurrent":  # one slot: the current token
        return Graph.initial(1, m.init_size, m.init_connect, per_slot=m.n_clusters)
    if cfg.data.dataset == "tinystories":  # one slot per position; causal by wiring
        return Graph.initial(m.context, m.init_size, m.init_connect, causal=True, seed=cfg.train.seed)
    return Graph.initial(n_slots_for_images(m.patch), m.init_size, m.init_connect)


def build_model(cfg: ExperimentConfig, graph: Graph | None = None, params: dict | None = None,
                extra: dict | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A fresh model for `cfg` or, with `graph`/`params`/`extra` (LuminaNet) the network they describe,
    without a throw-away initialisation."""
    m = cfg.model
    if m.arch == "gpt2":  # the 1-layer GPT-2 baseline of the TinyStories chapter; width = d_hidden
        model = build_gpt2(cfg.data.vocab_size, m.context, m.d_hidden, n_head=4, full_sequence=True, seed=cfg.train.seed)
    elif m.arch != "luminanet":
        torch.manual_seed(cfg.train.seed)
        model = build_baseline(m.arch, num_classes=10)
    else:
        graph = graph or initial_graph(cfg)
        kw = dict(d_hidden=m.d_hidden, aggregate=m.aggregate, cl=m.cl, seed=cfg.train.seed, params=params,
                  extra=extra, msg_norm=m.msg_norm)
        if cfg.data.dataset == "tinystories":
            model = LuminaNet(graph, d_in=m.d_embed, n_out=cfg.data.vocab_size, input_kind="tokens",
                              vocab_size=cfg.data.vocab_size, readout=m.readout, text_net=m.text_net,
                              tie_head=m.tie_head, embed_std=m.embed_std, in_norm=m.in_norm, **kw)
        else:
            model = LuminaNet(graph, d_in=m.patch * m.patch, n_out=10, patch=m.patch, image_readout=m.image_readout, **kw)
    return model.to(device)
