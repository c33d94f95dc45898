"""Pictures of LuminaNet: static matplotlib plots and interactive pyvis graphs that render offline.

Topology drawings share one layout: x = feedforward level (the pass order), y = position in the level, so
information flows left to right; node size = neurons, colour = birth step (or lineage), edge style =
feedforward (grey, solid) / feedback (orange, dashed) / recurrent (red self-loop).
"""
from __future__ import annotations

import html
import re

import matplotlib.pyplot as plt

from .topology import Graph

EDGE_STYLE = {"feedforward": ("#7f7f7f", "solid"), "feedback": ("#ff7f0e", "dashed"), "recurrent": ("#d62728", "solid")}


def layout(g: Graph) -> dict[int, tuple[float, float]]:
    pos = {}
    for x, lvl in enumerate(g.levels()):
        for k, i in enumerate(lvl):
            pos[i] = (float(x), (len(lvl) - 1) / 2 - k)
    return pos


def _birth_colour(g: Graph):
    import matplotlib as mpl

    last = max([c.born for c in g.clusters.values()] + [1])
    cmap = mpl.colormaps["viridis"]
    return {i: mpl.colors.to_hex(cmap(g.clusters[i].born / last)) for i in g.ids}


def draw_topology(g: Graph, ax=None, title: str | None = None, highlight: dict | None = None):
    """Static twin of the pyvis graph. `highlight` = {"clusters": set, "edges": set} drawn thick (a diff)."""
    import networkx as nx

    ax = ax or plt.subplots(figsize=(8, 5))[1]
    G, pos, colour = g.to_networkx(), layout(g), _birth_colour(g)
    hl = highlight or {}
    sizes = [40 + 4 * g.clusters[i].size for i in G.nodes]
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=sizes, node_color=[colour[i] for i in G.nodes],
                           edgecolors=["#d62728" if i in hl.get("clusters", ()) else "black" for i in G.nodes],
                           linewidths=[3 if i in hl.get("clusters", ()) else 0.5 for i in G.nodes])
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=7, font_color="white")
    for kind, (col, style) in EDGE_STYLE.items():
        edges = [(u, v) for u, v, d in G.edges(data=True) if d["kind"] == kind]
        if edges:
            nx.draw_networkx_edges(G, pos, edgelist=edges, ax=ax, edge_color=col, style=style, arrows=True,
                                   width=[2.5 if e in hl.get("edges", ()) else 0.8 for e in edges],
                                   connectionstyle="arc3,rad=0.15", node_size=sizes, arrowsize=8)
    ax.set_title(title or f"{len(g.clusters)} clusters, {len(g.edges)} edges, depth {len(g.levels())}")
    ax.set_xlabel("feedforward level (pass order →)")
    ax.set_yticks([])
    for kind, (col, style) in EDGE_STYLE.items():
        ax.plot([], [], color=col, linestyle=style, label=kind)
    ax.legend(loc="best", fontsize=7)  # matplotlib picks the corner with the fewest nodes and edges
    return ax


def pyvis_html(g: Graph, events: list[dict] | None = None, height: str = "520px") -> str:
    """A standalone HTML page (vis-network inlined: no CDN) of the topology, with hover text per cluster."""
    from pyvis.network import Network

    net = Network(height=height, width="100%", directed=True, cdn_resources="in_line", notebook=False)
    colour, pos = _birth_colour(g), layout(g)
    history = {}
    for e in events or []:
        for c in e["clusters"][: 1 if e["op"] in ("connect", "prune") else 2]:
            history.setdefault(c, []).append(f"step {e['step']}: {e['op']}")
    for i in g.ids:
        c = g.clusters[i]
        title = (f"cluster {i}\nslot {c.slot}, {c.size} neurons\nborn at step {c.born}"
                 + (f", split from {c.parent}" if c.parent is not None else "")
                 + "".join(f"\n{h}" for h in history.get(i, [])[-8:]))
        net.add_node(i, label=str(i), title=title, size=8 + c.size ** 0.5 * 2, color=colour[i],
                     x=pos[i][0] * 160, y=-pos[i][1] * 90)
    for e in g.edges.values():
        col, style = EDGE_STYLE[e.kind]
        net.add_edge(e.src, e.dst, color=col, dashes=style == "dashed", title=f"{e.kind}, born at step {e.born}")
    net.toggle_physics(False)
    # pyvis 0.3.2 links Bootstrap from a CDN even with cdn_resources="in_line"; the graph does not need it
    return re.sub(r'<(link|script)[^>]*cdn\.jsdelivr\.net[^>]*>(\s*</script>)?', "", net.generate_html())


def iframe(page: str, height: int = 540):
    """Embed a standalone HTML page in a notebook/book through an iframe `srcdoc` (renders offline)."""
    from IPython.display import HTML

    # wrapped in a div: IPython warns about a bare <iframe> in HTML(), and the book treats warnings as errors
    return HTML(f'<div><iframe srcdoc="{html.escape(page, quote=True)}" '
                f'style="width:100%;height:{height}px;border:1px solid #ddd"></iframe></div>')


def show_topology(g: Graph, events: list[dict] | None = None, save_html: str | None = None):
    """The interactive graph (pyvis, offline); also written to `save_html` as a standalone page."""
    page = pyvis_html(g, events)
    if save_html:
        from pathlib import Path

        Path(save_html).parent.mkdir(parents=True, exist_ok=True)
        Path(save_html).write_text(page, encoding="utf-8")
    return iframe(page)


def plot_history(history: list[dict], keys=("train_loss", "test_top1", "n_clusters", "n_params"), x="step", axes=None,
                 label: str | None = None):
    """Curves over training, one panel per key."""
    keys = [k for k in keys if any(k in h for h in history)]
    if axes is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3))
    for ax, k in zip(list(axes), keys):
        pts = [(h[x], h[k]) for h in history if h.get(k) is not None]
        ax.plot(*zip(*pts), marker=".", label=label)
        ax.set_title(k)
        ax.set_xlabel(x)
    return axes


def plot_events(events: list[dict], ax=None):
    """Cumulative count of each evolution op over training."""
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    for op in dict.fromkeys(e["op"] for e in events):  # every op the log holds (swap included), first seen first
        steps = sorted(e["step"] for e in events if e["op"] == op)
        if steps:
            ax.step(steps, range(1, len(steps) + 1), where="post", label=op)
    ax.set_xlabel("step")
    ax.set_ylabel("events (cumulative)")
    ax.legend(fontsize=8)
    return ax


def plot_by_position(curves: dict[str, list[float]], ax=None, title: str | None = None):
    """Perplexity at each position of the window (log scale), one line per model: a model that uses its
    context falls as the position grows; a table of bigram counts stays flat after position 0."""
    import math

    ax = ax or plt.subplots(figsize=(6.4, 3.6))[1]
    for name, losses in curves.items():
        style = dict(ls="--", lw=1.2) if "table" in name or "gram" in name else dict(lw=1.8)
        ax.plot(range(len(losses)), [math.exp(v) for v in losses], label=name, **style)
    ax.set(xlabel="position in the window (tokens seen - 1)", ylabel="perplexity", yscale="log", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def plot_scaling(rows: list[dict], fits: dict, ax=None, extend_to: float | None = None):
    """Validation perplexity against predicted training tokens (log-log), one colour per model, with each
    model's power-law fit drawn out to `extend_to` tokens (dotted beyond the measured budgets)."""
    import math

    ax = ax or plt.subplots(figsize=(6.4, 3.8))[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        pts = sorted((r["predicted tokens"], r["perplexity"]) for r in rows if r["model"] == model)
        ax.plot(*zip(*pts), "o", color=colours[k], label=model)
        if model in fits:
            f, lo, hi = fits[model], pts[0][0], pts[-1][0]
            ppl = lambda n: math.exp(math.exp(f["ln_a"] - f["b"] * math.log(n)))  # noqa: E731 (loss -> ppl)
            ax.plot([lo, hi], [ppl(lo), ppl(hi)], "-", color=colours[k], lw=1)
            if extend_to and extend_to > hi:
                ax.plot([hi, extend_to], [ppl(hi), ppl(extend_to)], ":", color=colours[k], lw=1)
    ax.set(xscale="log", yscale="log", xlabel="predicted training tokens", ylabel="validation perplexity")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def plot_quality_vs_cost(points: dict[str, list[tuple[int, float, float]]], ax=None):
    """Validation perplexity against FLOPs per predicted token (log-log), one line per model through its widths,
    each point labelled with its width: `lumina.verdicts.text_widths_points`. Down and to the left is better."""
    ax = ax or plt.subplots(figsize=(6.4, 3.8))[1]
    for model, pts in points.items():
        ws, flops, ppl = zip(*sorted(pts))
        ax.plot(flops, ppl, "o-", label=model)
        for w, x, y in pts:
            ax.annotate(f"d{w}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="FLOPs per predicted token", ylabel="validation perplexity")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


VERDICT_COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "not tested here": "#757575",
                   "measured": "#1565c0", "none collapsed": "#2e7d32"}  # anything else (inconclusive, ...): amber


def verdict_board(rows: list[dict], link=lambda chapter: f"chapters/{chapter}.html") -> str:
    """Every claim at a glance, as HTML (no script, works offline): one tile per claim, coloured by its verdict
    (green reproduced, red not reproduced, grey not tested here, amber anything between), grouped by chapter,
    each tile a link to its chapter. `rows` as `lumina.report.landing_rows` gives them."""
    chapters: dict[str, list[dict]] = {}
    for r in rows:
        chapters.setdefault(r["chapter"], []).append(r)
    tile = ("display:block;margin:3px 0;padding:4px 8px;border-radius:4px;color:#fff;text-decoration:none;"
            "font-size:0.85em;line-height:1.25;")
    cols = []
    for chapter, rs in chapters.items():
        tiles = "".join(
            f'<a href="{html.escape(link(chapter))}" style="{tile}background:{VERDICT_COLOURS.get(r["verdict"].split(" (")[0].split(":")[0], "#ef8f00")}" '
            f'title="{html.escape(r["verdict"])}: {html.escape(str(r.get("ours", "")))}">{html.escape(r["claim"])}'
            f'<br><b>{html.escape(r["verdict"])}</b></a>' for r in rs)
        cols.append(f'<div style="flex:1 1 16em;min-width:14em"><div style="font-weight:bold;margin-bottom:2px">'
                    f'chapter {html.escape(chapter[:2])}</div>{tiles}</div>')
    legend = " ".join(f'<span style="background:{c};color:#fff;padding:1px 6px;border-radius:3px">{html.escape(v)}</span>'
                      for v, c in (*list(VERDICT_COLOURS.items())[:4], ("in between", "#ef8f00")))
    return (f'<div><div style="display:flex;flex-wrap:wrap;gap:12px">{"".join(cols)}</div>'
            f'<div style="margin-top:6px;font-size:0.8em">{legend}</div></div>')
