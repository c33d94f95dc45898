"""Every table the book, the README and the report show, formatted one way (and model names spelled one way).

Why one helper: a raw DataFrame shows an index column, `NaN` where a baseline has no `d_hidden`, `11153408.0`
for a FLOP count and `lenet5` beside `LuminaNet-64`. `show_table` turns rows into a `Table` whose cells are
strings formatted once (blanks for missing values, thousands separators, integers without decimals, a fixed
precision per column) and which renders as HTML without an index in a notebook, and as aligned plain text
or markdown elsewhere. The plain text is stable (no memory addresses, no random ids), so the regression test
of published tables (tests/test_notebooks.py) compares it verbatim.

    show_table(rows, columns={"model": "model", "top1": "top-1 (%)"}, precision={"top1": 2})
    paper_vs_ours([{"claim": paper.claim("cifar10.gap_lenet5"), "ours": -9.55, "seeds": 2, ...}])
    mean_sd([64.02, 63.47])   # '63.74 ± 0.39 (2)'
"""
from __future__ import annotations

import hashlib
import math
import numbers
import statistics
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .paper import Claim

DISPLAY_NAMES = {
    "luminanet": "LuminaNet", "lenet5": "LeNet-5", "alexnet": "AlexNet", "resnet18": "ResNet-18",
    "mlp_mixer": "MLP-Mixer", "resmlp": "ResMLP", "deit_tiny": "DeiT-Tiny", "mobilevit": "MobileViT",
    "gpt2": "GPT-2 (1 layer)",
}

# Default headers (with units) for result fields that tables show often; `columns=` overrides them.
HEADERS = {
    "test_top1": "top-1 (%)", "test_top5": "top-5 (%)", "test_ppl": "perplexity", "test_bpb": "bits per byte",
    "n_params": "parameters", "flops_per_example": "FLOPs / example", "train_s": "training (s)",
    "epochs_done": "epochs", "n_clusters": "clusters", "n_neurons": "neurons", "d_hidden": "d_hidden",
}

PAPER_VS_OURS = ("claim", "paper", "ours", "seeds", "hardware", "gap", "cause")


def display_name(arch: str, d_hidden: int | None = None) -> str:
    """'luminanet', 64 -> 'LuminaNet-64'; 'gpt2', 128 -> 'GPT-2 (1 layer, d_model 128)'; 'lenet5' -> 'LeNet-5'.
    Unknown names pass through unchanged."""
    name = DISPLAY_NAMES.get(arch, arch)
    if d_hidden is None:
        return name
    return f"{name}-{d_hidden}" if arch == "luminanet" else f"GPT-2 (1 layer, d_model {d_hidden})" if arch == "gpt2" else name


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def fmt(v, precision: int = 2) -> str:
    """One cell: '' for a missing value, 'yes'/'no', '1,234' for integers and integral floats, '1,234.57'."""
    if _missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        return f"{float(v):,.{precision}f}"
    return str(v)


def mean_sd(values: Sequence[float], precision: int = 2) -> str:
    """'m ± sd (n)' over the non-missing values (sd with n-1; a single value prints as 'm (1)')."""
    xs = [float(v) for v in values if not _missing(v)]
    if not xs:
        return ""
    m = f"{statistics.fmean(xs):,.{precision}f}"
    return f"{m} ({len(xs)})" if len(xs) == 1 else f"{m} ± {statistics.stdev(xs):,.{precision}f} ({len(xs)})"


def hardware(h: Mapping | str | None) -> str:
    """A result's `provenance.hardware` as a short phrase: 'Intel Xeon, 2 cores, 2 threads' or the GPU."""
    if not isinstance(h, Mapping):
        return "" if _missing(h) else str(h)
    if h.get("gpu"):
        return str(h["gpu"])
    cpu = " ".join(w for w in str(h.get("cpu", "CPU")).replace("(R)", "").replace("(TM)", "").split()
                   if w not in ("Processor", "CPU"))
    n = lambda k, what: f"{h[k]} {what}{'s' if h[k] != 1 else ''}" if h.get(k) else ""
    parts = [cpu, n("cores", "core"), n("torch_threads", "thread")]
    return ", ".join(p for p in parts if p)


class Table:
    """Formatted cells (`.cells`, all strings) plus how to show them: HTML in a notebook, text elsewhere."""

    def __init__(self, cells: pd.DataFrame, numeric: list[str], caption: str | None = None):
        self.cells, self.numeric, self.caption = cells, numeric, caption

    @property
    def styler(self):
        """The pandas Styler the book renders: no index, numbers right-aligned, headers left as given."""
        # a uuid derived from the content, not pandas' random one: the same table renders to the same HTML,
        # so nbval can compare a published table's stored output with a fresh run's
        uid = hashlib.sha1(repr(self).encode()).hexdigest()[:8]
        st = self.cells.style.hide(axis="index").set_uuid(uid)
        st = st.set_table_styles([{"selector": "th", "props": "text-align: left; padding: 0.25em 0.7em"},
                                  {"selector": "td", "props": "padding: 0.25em 0.7em; max-width: 32em"}])
        if self.numeric:  # numbers and their headers right-aligned, so digits line up
            st = st.set_properties(subset=self.numeric, **{"text-align": "right"})
            st = st.set_table_styles({h: [{"selector": "th", "props": "text-align: right"}] for h in self.numeric},
                                     overwrite=False)
        return st.set_caption(self.caption) if self.caption else st

    def _repr_html_(self) -> str:
        return self.styler.to_html()

    def to_text(self) -> str:
        text = self.cells.to_string(index=False) if len(self.cells) else " | ".join(self.cells.columns)
        return "\n".join(line.rstrip() for line in text.splitlines())

    def to_markdown(self) -> str:
        cols = list(self.cells.columns)
        esc = lambda s: str(s).replace("|", "\\|")
        lines = ["| " + " | ".join(map(esc, cols)) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in self.cells.itertuples(index=False)]
        return "\n".join(lines)

    def __repr__(self) -> str:  # what a notebook's text/plain output holds (and the regression test reads)
        return (f"{self.caption}\n" if self.caption else "") + self.to_text()

    def __len__(self) -> int:
        return len(self.cells)


def show_table(data, columns: Mapping[str, str] | Sequence[str] | None = None,
               precision: int | Mapping[str, int] = 2, caption: str | None = None) -> Table:
    """Rows (a DataFrame, or a list of dicts) -> a formatted `Table`.

    columns: {field: header} selects, orders and renames; a list selects and orders; None keeps every
    column, renaming the fields in `HEADERS`. The index of a DataFrame is dropped unless it is named (then
    it becomes the first column). precision: decimals for floats, one int or {field: int}; a float column
    whose values are all whole numbers prints without decimals (d_hidden 64.0 -> 64); integers always do."""
    # rows keep their Python types (object columns): an int stays an int beside floats in the same column
    df = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data), dtype=object)
    if isinstance(df, pd.DataFrame) and any(n is not None for n in df.index.names):
        df = df.reset_index()
    if columns is None:
        columns = {c: HEADERS.get(c, c) for c in df.columns}
    elif not isinstance(columns, Mapping):
        columns = {c: c for c in columns}
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"show_table: no column(s) {missing}; the rows have {list(df.columns)}")
    cells, numeric = {}, []
    for field, header in columns.items():
        col = df[field]
        p = precision.get(field, 2) if isinstance(precision, Mapping) else precision
        present = [v for v in col if not _missing(v)]
        if present and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present):
            numeric.append(header)
            floats = [v for v in present if not isinstance(v, numbers.Integral)]
            if floats and all(float(v).is_integer() for v in floats):  # 64.0 beside NaN was an int: 64
                p = 0 if not isinstance(precision, Mapping) or field not in precision else p
        cells[header] = [fmt(v, p) for v in col]
    return Table(pd.DataFrame(cells), numeric, caption)


def paper_vs_ours(rows: Sequence[Mapping], precision: int = 2, caption: str | None = None) -> Table:
    """The "paper vs ours" table that closes every results chapter: claim, paper, ours, seeds, hardware, gap,
    cause (any further keys, e.g. 'verdict', come after). A row's `claim` may be a `lumina.paper.Claim`:
    its text and the paper's value (`Claim.shown()`) fill the first two columns. `hardware` may be a
    result's provenance hardware dict; a numeric `gap` prints with its sign."""
    out = []
    for r in rows:
        r = dict(r)
        c = r.get("claim")
        if isinstance(c, Claim):
            r["claim"] = c.text
            r.setdefault("paper", c.shown())
        r["hardware"] = hardware(r.get("hardware"))
        g = r.get("gap")
        if isinstance(g, numbers.Real) and not isinstance(g, bool) and not _missing(g):
            r["gap"] = f"{float(g):+,.{precision}f}"
        if isinstance(r.get("ours"), numbers.Real) and not isinstance(r.get("ours"), bool):
            r["ours"] = fmt(r["ours"], precision)
        out.append(r)
    extra = [k for r in out for k in r if k not in PAPER_VS_OURS and k != "chapter"]  # chapter: the intro's links
    cols = [c for c in PAPER_VS_OURS if any(not _missing(r.get(c)) and r.get(c) != "" for r in out)]
    cols += list(dict.fromkeys(extra))
    return show_table(pd.DataFrame(out, columns=cols), columns=cols, precision=precision, caption=caption)


def show_settings(settings: Mapping[str, object], n_cols: int = 3, precision: int = 3,
                  caption: str | None = None) -> Table:
    """A long list of settings (a config section) laid out as `n_cols` side-by-side (setting, value) pairs,
    so it fits on one screen instead of running down a 30-row column."""
    items = [(k, fmt(v, precision)) for k, v in settings.items()]
    per = max(1, math.ceil(len(items) / n_cols))
    cells = {}
    for c in range(n_cols):
        chunk = items[c * per:(c + 1) * per]
        chunk += [("", "")] * (per - len(chunk))
        pad = " " * c  # distinct headers that read the same
        cells["setting" + pad] = [k for k, _ in chunk]
        cells["value" + pad] = [v for _, v in chunk]
    return Table(pd.DataFrame(cells), [], caption)
