"""Markdown tables of the stored results (`python -m lumina report --profile full`), generated, never typed.

The rows come from `lumina.verdicts` (the same rows the chapters and the intro show) and are formatted by
`lumina.tables`, so the report, the README and the book print a number the same way.
"""
from __future__ import annotations

import json

from . import verdicts
from .paths import ROOT
from .verdicts import text_scaling
from .published import WIDTH_EPOCHS, cifar10_runs, text_dev_runs, text_v3_runs, text_v3_seed1, text_v3_sensitivity, tinystories_runs
from .results import load_result, references_or_load
from .text import bucket_ppl
from .tables import display_name, hardware, paper_vs_ours, show_table


def _rows(cfgs) -> list[dict]:
    out = []
    for c in cfgs:
        r = load_result(c)
        if r is None:
            continue
        m = r["metrics"]
        row = {"model": display_name(c.model.arch, c.model.d_hidden if c.model.arch in ("luminanet", "gpt2") else None),
               "seed": c.train.seed, "epochs": r["epochs_done"], "parameters": r["n_params"]}
        row.update({"top-1 (%)": m["test_top1"], "top-5 (%)": m["test_top5"]} if "test_ppl" not in m else
                   {"perplexity": m["test_ppl"], "top-1 (%)": m["test_top1"], "bits per byte": m["test_bpb"]})
        row.update({"training (min)": r["train_s"] / 60, "hardware": hardware(r["provenance"]["hardware"])})
        out.append(row)
    return out


def text_rows(named: dict, with_references: bool = True) -> list[dict]:
    """One row per stored text run of `named` (name -> config), and the n-gram references of their evaluation
    text: perplexity, top-1, bits per byte and the perplexity per bucket of positions (does it use context?)."""
    out, refs = [], None
    for name, c in named.items():
        r = load_result(c)
        if r is None:
            continue
        m = r["metrics"]
        row = {"model": name, "epochs": r["epochs_done"], "lr": f"{c.train.lr:g}", "parameters": r["n_params"],
               "perplexity": m["test_ppl"], "top-1 (%)": m["test_top1"], "bits per byte": m["test_bpb"]}
        row.update({f"ppl @ {k}": v for k, v in bucket_ppl(r.get("loss_by_position") or []).items()})
        out.append(row)
        refs = refs or (c if with_references else None)
    if refs is not None:
        for name, m in references_or_load(refs).items():
            out.append({"model": f"{name} (table of counts)", "perplexity": m["ppl"], "top-1 (%)": m["top1"],
                        "bits per byte": m["bpb"], **{f"ppl @ {k}": v for k, v in bucket_ppl(m["loss_by_pos"]).items()}})
    return out


def speed_targets() -> list[dict]:
    """The speed targets of the benchmarks (`python -m benchmarks --update`), each with what was measured."""
    def load(name):
        f = ROOT / "benchmarks" / "results" / f"{name}.json"
        return json.loads(f.read_text()) if f.exists() else None
    rows = []
    if ex := load("executor"):
        rows += [{"benchmark": f"fast executor / reference loop, {r['clusters']} clusters, d_hidden {r['d_hidden']}",
                  "measured": f"{r['speedup']:.2f}×", "target": f"≥ {r['target']:g}×",
                  "met": "yes" if r["speedup"] >= r["target"] else "no"} for r in ex["rows"] if r.get("target")]
    if fr := load("flops_rate"):
        rows += [{"benchmark": f"training step, share of the dense matmul rate: {r['network']}",
                  "measured": f"{100 * r['share_of_matmul']:.0f}%", "target": f"≥ {100 * r['target']:.0f}%" if r.get("target") else "",
                  "met": ("yes" if r["share_of_matmul"] >= r["target"] else "no") if r.get("target") else ""} for r in fr["rows"]]
    if ep := load("epoch"):
        rows.append({"benchmark": f"CIFAR-10 epoch, {ep['rows'][0]['model']} / LeNet-5", "measured": f"{ep['ratio']:.2f}×",
                     "target": f"≤ {ep['target']:g}×", "met": "yes" if ep["ratio"] <= ep["target"] else "no"})
    if (runs := load("runs")) and runs["rows"]:
        share = [r["evolve_share"] for r in runs["rows"] if r["events"]]  # runs that evolved
        rows.append({"benchmark": f"evolution's share of training time, {len(share)} stored evolving runs",
                     "measured": f"{100 * min(share):.1f}–{100 * max(share):.1f}%", "target": "≤ 2%",
                     "met": f"{sum(x <= 0.02 for x in share)} of {len(share)}"})
    if ee := load("evolution_event"):
        rows.append({"benchmark": f"evolution's share of training time, one event of today's code beside its steps ({ee['network']})",
                     "measured": f"{100 * ee['share']:.2f}%", "target": f"≤ {100 * ee['target']:.0f}%",
                     "met": "yes" if ee["share"] <= ee["target"] else "no"})
    if ts := load("text_speed"):
        for r in ts["rows"][1:]:
            rows.append({"benchmark": f"{r['model']}: training throughput / {ts['rows'][0]['model']}", "measured": f"{r['train_throughput_vs_gpt2']:.2f}×",
                         "target": "≥ 0.25×" if "recurrent" in r["model"] else "≥ 0.5×",
                         "met": "yes" if r["train_throughput_vs_gpt2"] >= (0.25 if "recurrent" in r["model"] else 0.5) else "no"})
    return rows


README_BEGIN = "<!-- results: generated by `python -m lumina report --profile full --readme`; edit the code, not this -->"
README_END = "<!-- results: end -->"


def readme_results(profile: str = "full") -> str:
    """The README's results section: every claim with its verdict (the intro's table), the headline runs of
    both datasets, and the speed targets, as markdown."""
    rows = [{**r, "chapter": r["chapter"][:2]} for r in landing_rows(profile)]
    parts = [("Every claim (the book's intro; the headline networks: CIFAR-10 v3 and the recurrent TinyStories v3)",
              show_table(rows)),
             ("CIFAR-10: the headline runs (test set, 50 epochs)",
              show_table(_rows(c for g in cifar10_runs(profile).values() for c in g))),
             ("TinyStories v3: the reported pair (V1 validation stories, d128, 2 epochs) and the n-gram tables",
              show_table(text_rows({**text_v3_runs(profile), **text_v3_sensitivity(profile),
                                    **{f"{v}, seed 1": c for v, c in text_v3_seed1(profile).items()}}),
                         precision={"bits per byte": 3})),
             (f"TinyStories v3: the widths (V1 validation stories, {WIDTH_EPOCHS:g} epoch, each model at its rate chosen on the dev "
              "split at each width)", show_table(verdicts.text_widths_table(profile))),
             ("Speed (`python -m benchmarks --update`, ratios measured side by side in one process)", show_table(speed_targets()))]
    body = "\n\n".join(f"**{title}**\n\n{table.to_markdown()}" for title, table in parts if len(table))
    return f"{README_BEGIN}\n\n{body}\n\n{README_END}"


def update_readme(profile: str = "full", path=None) -> bool:
    """Replace the README's results section with `readme_results`; True when it changed."""
    path = path or ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{path} has no results section between {README_BEGIN!r} and {README_END!r}")
    head, rest = text.split(README_BEGIN, 1)
    new = head + readme_results(profile) + rest.split(README_END, 1)[1]
    path.write_text(new, encoding="utf-8")
    return new != text


def report(profile: str = "full") -> str:
    out = [f"Generated by `python -m lumina report --profile {profile}` from the stored results.\n"]
    sections = [
        ("CIFAR-10: verdicts (the v3 headline pair)", paper_vs_ours(verdicts.cifar10(profile))),
        ("CIFAR-10: the headline runs (test set)", show_table(_rows(c for g in cifar10_runs(profile).values() for c in g))),
        ("CIFAR-10: the short budget, every baseline at equal epochs (test set)", show_table(verdicts.cifar10_short_table(profile))),
        ("CIFAR-10: the fast path against float32 (1 epoch, test set)", show_table(verdicts.fast_path_parity_table(profile))),
        ("CIFAR-10: the fast path's bf16 table at the short budget (test set)", show_table(verdicts.bf16_short_parity_table(profile))),
        ("CIFAR-10 v2: LuminaNet per width (validation split, 10 epochs)", show_table(verdicts.widths(profile))),
        ("CIFAR-10 v2: evolution's worth (validation split)", show_table(verdicts.evolution_worth(profile))),
        ("CIFAR-10 v3: the choice grid (validation split, 10 epochs)", show_table(verdicts.cifar10_v3_choice_table(profile))),
        ("CIFAR-10 v3: the image readout (validation split, 10 epochs)", show_table(verdicts.cifar10_v3_readout(profile))),
        ("CIFAR-10 v3: the neuron budget (validation split, 10 epochs)", show_table(verdicts.cifar10_v3_budget_table(profile))),
        ("CIFAR-10 v3: evolved against its controls (validation split)", show_table(verdicts.cifar10_v3_controls_table(profile))),
        ("CIFAR-10 v3: targets", show_table(verdicts.cifar10_v3_targets(profile))),
        ("TinyStories v2: verdicts", paper_vs_ours(verdicts.tinystories(profile))),
        ("TinyStories v2: runs (validation)", show_table(_rows(c for g in tinystories_runs(profile).values() for c in g),
                                                      precision={"bits per byte": 3})),
        ("TinyStories v3: the screen and the learning-rate tries (dev split, d128, 0.25 epoch)",
         show_table(text_rows(text_dev_runs(profile)), precision={"bits per byte": 3})),
        ("TinyStories v3: verdicts (the headline)", paper_vs_ours(verdicts.tinystories_v3(profile))),
        ("TinyStories v3: the reported pair (validation, d128, 2 epochs)",
         show_table(text_rows({**text_v3_runs(profile), **text_v3_sensitivity(profile),
                               **{f"{v}, seed 1": c for v, c in text_v3_seed1(profile).items()}}),
                    precision={"bits per byte": 3})),
        ("TinyStories v3: the connection claims' runs (validation, d128, one seed)",
         show_table(verdicts.text_v3_pruning(profile))),
        ("TinyStories v3: targets (d128, and the width targets)", show_table(verdicts.text_v3_targets(profile))),
        ("TinyStories v3: token scaling (validation)", show_table(text_scaling(profile)[0], precision={"loss": 3})),
        (f"TinyStories v3: the widths (validation, {WIDTH_EPOCHS:g} epoch, each model at its rate chosen on the dev split "
         "at each width)", show_table(verdicts.text_widths_table(profile))),
    ]
    for title, table in sections:
        if len(table):
            out += [f"\n### {title}\n", table.to_markdown()]
    fit = text_scaling(profile)[1]
    for v, f in fit["fits"].items():
        out.append(f"\n{v}: validation loss ∝ tokens^-{f['b']:.3f} over {f['n']} budgets")
    if "meet" in fit:
        out.append(f"\nScaling fits: {verdicts.crossing(fit)}")
    return "\n".join(out) + "\n"


def landing_rows(profile: str = "full") -> list[dict]:
    """Every claim of the intro: claim, paper, ours, verdict and its chapter (a file stem such as 03_cifar10)."""
    rows = verdicts.cifar10(profile) + verdicts.tinystories_v3(profile)  # the headline networks (v3)
    for r in verdicts.cifar10_v3_controls_table(profile):
        if r["compared with"].startswith("(a)"):
            rows.append({"claim": "evolving pays: evolved ≥ its final topology trained from scratch (our control)",
                         "paper": "", "ours": f"{r['difference']:+.2f} points (validation, v3)",
                         "verdict": r["verdict"], "chapter": "06_ablations"})
    out = []
    for r in rows:
        c = r["claim"]
        text, paper_value = (c.text, r.get("paper") or c.shown()) if hasattr(c, "shown") else (c, r.get("paper", ""))
        out.append({"claim": text, "paper": paper_value, "ours": r.get("ours", ""), "verdict": r["verdict"],
                    "what would change it": would_change(r["verdict"], r["chapter"], text), "chapter": r["chapter"]})
    return out


def would_change(verdict: str, chapter: str, claim: str = "") -> str:
    """One sentence on what could change a verdict, by its kind, chapter and claim (the intro's table)."""
    if verdict == "none collapsed":
        return "a run that collapses: none of the stored ones did"
    if claim.startswith(("compute", "peak memory")):
        return "a network as good with less compute per token: a longer run does not change this ratio"
    if verdict.startswith("not tested"):
        return "a run at equal epochs: run-set cifar10_short (this CPU) or gpu (a GPU)"
    if verdict.startswith(("inconclusive", "one seed")):
        return "more seeds: the interval spans 0"
    if verdict.startswith("measured"):
        return "nothing here: an absolute value, under another recipe than the paper's"
    if chapter == "03_cifar10":
        return "the paper's budget (200 epochs) or recipe (unpublished): run-set gpu"
    if chapter == "04_tinystories" and claim.endswith(("width 256", "width 384")):
        return "GPT-2 at a rate that suits half an epoch (its quarter-epoch dev grid chose the smallest), or more tokens"
    if chapter == "04_tinystories":
        return "more training tokens: the scaling curves say where the trend points"
    return "more seeds or epochs"


def landing(profile: str = "full"):
    """The intro's table: every claim, our measurement and its verdict, each row linking to its chapter."""
    rows = [{**r, "chapter": f'<a href="chapters/{r["chapter"]}.html">{r["chapter"][:2]}</a>'} for r in landing_rows(profile)]
    return show_table(rows, caption="Every claim of the paper, our measurement and the verdict")
