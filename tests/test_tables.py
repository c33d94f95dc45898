"""The one table helper (lumina.tables) and the one home of the paper's numbers (lumina.paper)."""
import math
import re

import pandas as pd
import pytest

from lumina import paper
from lumina.tables import display_name, hardware, mean_sd, paper_vs_ours, show_settings, show_table

NAN = re.compile(r"\b(nan|none)\b", re.I)  # "LuminaNet" contains "nan"


def test_nan_becomes_blank_and_no_index():
    df = pd.DataFrame({"model": ["LuminaNet-64", "LeNet-5"], "d_hidden": [64, math.nan], "top1": [64.0234, 72.9]},
                      index=[7, 8])
    t = show_table(df, columns={"model": "model", "d_hidden": "d_hidden", "top1": "top-1 (%)"})
    assert list(t.cells.columns) == ["model", "d_hidden", "top-1 (%)"]
    assert t.cells["d_hidden"].tolist() == ["64", ""]          # integral floats lose their ".0", NaN is blank
    assert t.cells["top-1 (%)"].tolist() == ["64.02", "72.90"]
    html, text = t._repr_html_(), repr(t)
    assert not NAN.search(html) and not NAN.search(text)
    assert ">7<" not in html and ">8<" not in html and not text.splitlines()[1].lstrip().startswith("7")
    assert text.splitlines()[0].split() == ["model", "d_hidden", "top-1", "(%)"]


def test_big_numbers_precision_and_defaults():
    rows = [{"arch": "lenet5", "flops_per_example": 11153408.0, "n_params": 62006, "test_top1": 72.957, "ok": True},
            {"arch": "alexnet", "flops_per_example": None, "n_params": 28710000, "test_top1": None, "ok": False}]
    t = show_table(rows, precision={"test_top1": 1})
    assert list(t.cells.columns) == ["arch", "FLOPs / example", "parameters", "top-1 (%)", "ok"]
    assert t.cells["FLOPs / example"].tolist() == ["11,153,408", ""]
    assert t.cells["parameters"].tolist() == ["62,006", "28,710,000"]
    assert t.cells["top-1 (%)"].tolist() == ["73.0", ""]
    assert t.cells["ok"].tolist() == ["yes", "no"]
    assert t.numeric == ["FLOPs / example", "parameters", "top-1 (%)"]
    assert t.to_markdown().splitlines()[2] == "| lenet5 | 11,153,408 | 62,006 | 73.0 | yes |"
    with pytest.raises(KeyError, match="no column"):
        show_table(rows, columns=["nope"])


def test_named_index_becomes_a_column():
    t = show_table(pd.DataFrame({"top1": [60.1]}, index=pd.Index(["dense start"], name="variant")))
    assert list(t.cells.columns) == ["variant", "top1"] and t.cells.iloc[0].tolist() == ["dense start", "60.10"]


@pytest.mark.parametrize("arch, d, name", [
    ("luminanet", 64, "LuminaNet-64"), ("luminanet", None, "LuminaNet"), ("lenet5", None, "LeNet-5"),
    ("alexnet", None, "AlexNet"), ("resnet18", None, "ResNet-18"), ("mlp_mixer", None, "MLP-Mixer"),
    ("resmlp", None, "ResMLP"), ("deit_tiny", None, "DeiT-Tiny"), ("mobilevit", None, "MobileViT"),
    ("gpt2", 128, "GPT-2 (1 layer, d_model 128)"), ("gpt2", None, "GPT-2 (1 layer)"), ("something_new", None, "something_new")])
def test_display_names(arch, d, name):
    assert display_name(arch, d) == name


def test_mean_sd_and_hardware():
    assert mean_sd([64.02, 63.47]) == "63.74 ± 0.39 (2)"
    assert mean_sd([64.02, math.nan]) == "64.02 (1)" and mean_sd([]) == ""
    assert hardware({"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "torch_threads": 2, "gpu": None}) == \
        "Intel Xeon, 2 cores, 2 threads"
    assert hardware({"cpu": "x", "gpu": "NVIDIA H200"}) == "NVIDIA H200"
    assert hardware({"cpu": "x", "cores": 2, "torch_threads": 1}) == "x, 2 cores, 1 thread"


def test_paper_vs_ours_fills_the_paper_column_from_the_claim():
    hw = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "torch_threads": 2}
    t = paper_vs_ours([
        {"claim": paper.claim("cifar10.gap_lenet5"), "ours": -9.55, "seeds": 2, "hardware": hw, "gap": -20.74,
         "cause": "equal time budget"},
        {"claim": "a claim typed in place", "paper": "yes", "ours": "yes", "verdict": "reproduced"}])
    assert list(t.cells.columns) == ["claim", "paper", "ours", "seeds", "hardware", "gap", "cause", "verdict"]
    first = t.cells.iloc[0].tolist()
    assert first == ["LuminaNet top-1 above LeNet-5", "+11.19 points", "-9.55", "2", "Intel Xeon, 2 cores, 2 threads",
                     "-20.74", "equal time budget", ""]
    assert t.cells.iloc[1]["seeds"] == "" and not NAN.search(repr(t))


def test_paper_claims_are_one_home():
    assert paper.value("cifar10.gap_lenet5") == 11.19 and paper.value("cifar10.gap_alexnet") == 5.46
    assert paper.by_width("depth") == {128: 21, 256: 13, 384: 9}
    assert paper.by_width("recurrent") == {128: 24, 256: 24, 384: 4}
    assert paper.claim("cifar10.top5").shown() == "98.09%" and paper.claim("cifar10.resnet18_params").shown() == "≈ 10×"
    assert all(c.source and c.text for c in paper.CLAIMS)
    assert {c.chapter for c in paper.CLAIMS} <= {"03_cifar10", "04_tinystories", "05_structures", "06_ablations"}
    assert [c.id for c in paper.for_chapter("06_ablations")] == ["pruning.evolved_keeps", "pruning.dense_collapses"]
    with pytest.raises(KeyError, match="no paper claim"):
        paper.claim("cifar10.nope")


def test_settings_fit_in_column_pairs():
    t = show_settings({"evolve": True, "grow_k": 2, "prune_frac": 0.5, "m_max": 48, "warmup_frac": 0.05}, n_cols=2)
    assert t.cells.shape == (3, 4) and t.cells.iloc[0].tolist() == ["evolve", "yes", "m_max", "48"]
    assert t.cells.iloc[2].tolist() == ["prune_frac", "0.500", "", ""]


def test_ints_stay_ints_beside_floats():
    t = show_table([{"k": "top-1 (%)", "v": 49.0}, {"k": "steps", "v": 1560}, {"k": "top-5 (%)", "v": 91.7}])
    assert t.cells["v"].tolist() == ["49.00", "1,560", "91.70"]


def test_footer_summarises_the_provenance_of_the_runs_shown():
    from lumina.footer import footer

    def run(commit, dirty, train_s, threads, date):
        return {"train_s": train_s, "provenance": {
            "git_commit": commit, "git_dirty": dirty, "date": date, "versions": {"python": "3.11.7", "torch": "2.14.1"},
            "hardware": {"cpu": "AMD EPYC", "cores": 2, "torch_threads": threads, "gpu": None}}}
    text = footer({"a": run("a" * 40, False, 3600, 1, "2026-12-01T10:00:00"),
                   "b": run("a" * 40, False, 1800, 2, "2026-12-03T10:00:00"),
                   "c": run("b" * 40, True, 0, 1, "2026-12-02T10:00:00")})
    assert "3 stored runs, trained 2026-12-01 to 2026-12-03 in 2.0 CPU-hours" in text  # 1 h x 1 + 0.5 h x 2
    assert "aaaaaaaaaa (2 runs); bbbbbbbbbb+ (1 run)" in text and "torch 2.14.1 (3 runs)" in text
    assert footer({}) == "Reproducibility: this page shows no stored run; what it trains, it trains here."


def test_verdict_board_colours_each_claim_by_verdict_and_links_its_chapter():
    from lumina.viz import VERDICT_COLOURS, verdict_board

    rows = [{"claim": "a <b>", "verdict": "reproduced", "ours": "1", "chapter": "03_cifar10"},
            {"claim": "b", "verdict": "not reproduced", "ours": "2", "chapter": "04_tinystories"},
            {"claim": "c", "verdict": "inconclusive (above chance, far from identical)", "ours": "", "chapter": "04_tinystories"}]
    page = verdict_board(rows)
    assert page.count('href="chapters/03_cifar10.html"') == 1 and page.count('href="chapters/04_tinystories.html"') == 2
    assert f"background:{VERDICT_COLOURS['reproduced']}" in page and f"background:{VERDICT_COLOURS['not reproduced']}" in page
    assert "background:#ef8f00" in page and "a &lt;b&gt;" in page and "<script" not in page  # escaped, offline


def test_every_claim_of_the_intro_says_what_would_change_its_verdict():
    from lumina.report import landing_rows, would_change

    assert would_change("not tested here", "03_cifar10").startswith("a run at equal epochs")
    assert would_change("inconclusive (above chance, far from identical)", "05_structures") == "more seeds: the interval spans 0"
    assert "200 epochs" in would_change("not reproduced", "03_cifar10")
    assert "longer run does not" in would_change("not reproduced", "04_tinystories", "compute, LuminaNet / 1-layer GPT-2")
    assert all(r["what would change it"] for r in landing_rows("full"))


def test_verdicts_by_width_give_one_row_per_claim_with_the_widths_as_columns():
    from lumina.verdicts import by_width

    rows = [{"claim": "perplexity within 10%, width 128", "paper": "8.4", "ours": "63", "verdict": "not reproduced"},
            {"claim": "perplexity within 10%, width 384", "paper": "8.4", "ours": "64", "verdict": "not reproduced"},
            {"claim": "depth at d_hidden = 128", "paper": "21", "ours": "6", "verdict": "not reproduced"},
            {"claim": "depth at d_hidden = 384", "paper": "9", "ours": "9", "verdict": "reproduced"},
            {"claim": "no collapse", "paper": "", "ours": "none", "verdict": "none collapsed"}]
    got = by_width(rows)
    assert got[0] == {"claim": "perplexity within 10%", "paper": "8.4", "verdict": "not reproduced",
                      "d 128": "63 (not reproduced)", "d 384": "64 (not reproduced)"}
    assert got[1] == {"claim": "depth", "paper": "", "verdict": "differs by width",
                      "d 128": "paper 21; ours 6 (not reproduced)", "d 384": "paper 9; ours 9 (reproduced)"}
    assert got[2] == {"claim": "no collapse", "paper": "", "ours": "none", "verdict": "none collapsed"}
