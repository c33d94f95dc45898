"""The CPU fast path of the CIFAR-10 baselines (`lumina.baselines.vision.FAST_PATHS`: channels_last, and bf16
autocast where the CPU has native bf16 kernels) and the `cifar10_short` run set: same function as float32, exact
resume, a table per CPU, the equal-budget rules of the run set."""
import json

import pytest
import torch

from lumina.baselines import BASELINES, build_baseline
from lumina.baselines import vision
from lumina.baselines.vision import FAST_PATHS, channels_last, fast_path
from lumina.config import resolve
from lumina.loop import train
from lumina.optim import make_optimizer
from lumina.published import (PARITY, RUN_SETS, SHORT_BF16, SHORT_EPOCHS, SHORT_TABLE, _flat, cifar10_parity_runs, cifar10_short_bf16_runs,
                              cifar10_short_runs, cifar10_v3_choice,
                              cifar10_v3_choice_runs)
from lumina.results import result_dir

QUIET = dict(log=lambda *a: None)
TOL = 1e-4  # float32 either way: only the summation order of the convolutions differs


@pytest.mark.parametrize("name", [n for n in BASELINES if any(t[n].get("channels_last") for t in FAST_PATHS.values())])
def test_fast_forward_agrees_with_float32(name):
    """On random input the fast path's logits equal float32's within TOL x (1 + max |logit|)."""
    torch.manual_seed(0)
    ref = build_baseline(name).eval()
    torch.manual_seed(0)
    fast = channels_last(build_baseline(name).eval())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = ref(x), fast(x.contiguous(memory_format=torch.channels_last))
    assert (a - b).abs().max() <= TOL * (1 + a.abs().max())


def test_optimizer_state_follows_the_layout():
    """Moments restored in the default layout (as from a checkpoint) are converted: fused AdamW on mismatched
    strides silently updates the wrong elements."""
    torch.manual_seed(0)
    ref, fast = build_baseline("lenet5"), build_baseline("lenet5")
    fast.load_state_dict(ref.state_dict())
    o_ref, o_fast = make_optimizer(ref, 1e-2, 0.05), make_optimizer(fast, 1e-2, 0.05)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step(model, opt, inp):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(inp), y).backward()
        opt.step()

    step(ref, o_ref, x)
    step(fast, o_fast, x)  # state created in the default layout, then the model is converted
    channels_last(fast, o_fast)
    step(ref, o_ref, x)
    step(fast, o_fast, x.contiguous(memory_format=torch.channels_last))
    for (n, p), q in zip(ref.named_parameters(), fast.parameters()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_fast_path_resumes_exactly(tmp_path):
    cfg = resolve("synthetic", "smoke", arch="lenet5", channels_last=True, epochs=1.0, threads=1)
    straight = train(cfg, **QUIET)
    assert train(cfg, ckpt=tmp_path / "c.safetensors", stop_after=7, **QUIET) is None
    resumed = train(cfg, ckpt=tmp_path / "c.safetensors", **QUIET)
    assert resumed.result["metrics"] == straight.result["metrics"]
    for (n, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), n
    assert resumed.result["provenance"]["fast_path"] == {"amp": False, "channels_last": True}
    assert "optimizer_step" not in resumed.result["provenance"]  # a baseline steps torch's fused AdamW


def test_bf16_fast_path_trains_under_autocast_and_resumes_exactly(tmp_path):
    """amp=True on the CPU: the loop trains under bf16 autocast (other arithmetic: the weights end elsewhere than
    float32's from the same seed), the weights stay float32, and a run stopped and resumed ends where the straight
    run ends."""
    cfg = resolve("synthetic", "smoke", arch="lenet5", amp=True, channels_last=True, epochs=1.0, threads=1)
    straight = train(cfg, **QUIET)
    assert train(cfg, ckpt=tmp_path / "c.safetensors", stop_after=7, **QUIET) is None
    resumed = train(cfg, ckpt=tmp_path / "c.safetensors", **QUIET)
    assert resumed.result["metrics"] == straight.result["metrics"]
    for (n, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert p.dtype == torch.float32 and torch.equal(p, q), n
    assert resumed.result["provenance"]["fast_path"] == {"amp": True, "channels_last": True}
    f32 = train(resolve("synthetic", "smoke", arch="lenet5", channels_last=True, epochs=1.0, threads=1), **QUIET)
    assert any(not torch.equal(p, q) for p, q in zip(f32.model.parameters(), straight.model.parameters()))


@pytest.mark.parametrize("native", (True, False))
def test_fast_path_picks_the_table_for_the_cpu(native, monkeypatch):
    monkeypatch.setattr(vision, "native_bf16", lambda: native)
    assert fast_path("mlp_mixer") == ({"amp": True} if native else {})
    assert fast_path("deit_tiny") == {}  # bf16 fell behind float32 at the short budget: it left the bf16 table
    assert fast_path("alexnet") == ({"amp": True, "channels_last": True} if native else {"channels_last": True})
    assert fast_path("mobilevit") == {"channels_last": True}  # bf16 slows MobileViT: it keeps the float32 entry
    assert fast_path("deit_tiny", "float32") == {} and fast_path("resmlp", "bf16") == {"amp": True}
    assert set(FAST_PATHS["bf16"]) == set(FAST_PATHS["float32"]) == set(BASELINES)
    with pytest.raises(ValueError, match="fast-path table"):
        fast_path("alexnet", "fp8")
    with pytest.raises(ValueError, match="unknown baseline"):
        fast_path("vgg")


def test_the_short_sets_stored_configs_do_not_depend_on_the_cpu(monkeypatch):
    """The stored short-budget runs used the float32 table: resolving the set on a CPU with native bf16 must give
    the same keys (else the set would retrain instead of loading)."""
    keys = {}
    for native in (True, False):
        monkeypatch.setattr(vision, "native_bf16", lambda: native)
        keys[native] = [c.key() for c in RUN_SETS["cifar10_short"]("full")]
    assert keys[True] == keys[False] and SHORT_TABLE == "float32"


def test_channels_last_is_for_image_baselines():
    with pytest.raises(ValueError, match="channels_last"):
        resolve("cifar10", "smoke", channels_last=True)


@pytest.mark.parametrize("profile", ("smoke", "full"))
def test_short_set_is_an_equal_budget(profile, tmp_path, monkeypatch):
    if cifar10_v3_choice(profile) is None:  # LuminaNet is listed once its choice grid is stored (smoke: never is)
        assert "luminanet" not in cifar10_short_runs(profile)
        assert RUN_SETS["cifar10_short"](profile)[0].key() == _flat(cifar10_v3_choice_runs(profile))[0].key()
        monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
        for c in _flat(cifar10_v3_choice_runs(profile)):
            result_dir(c).mkdir(parents=True)
            (result_dir(c) / "result.json").write_text(json.dumps({"config": c.to_dict(), "metrics": {"test_top1": 50.0}}))
    runs = cifar10_short_runs(profile)
    assert list(runs)[-1] == "luminanet" and set(runs) == {*BASELINES, "luminanet"}  # LuminaNet last
    cfgs = [c for g in runs.values() for c in g]
    assert len({c.train.epochs for c in cfgs}) == 1 and len({c.train.batch_size for c in cfgs}) == 1
    assert {c.train.threads for c in cfgs} == {1}
    assert len({c.train.eval_every for c in cfgs}) == 1  # one evaluation schedule for all (the per-epoch curves)
    for c in cfgs:
        assert c.train.channels_last == FAST_PATHS[SHORT_TABLE].get(c.model.arch, {}).get("channels_last", False)
        assert not c.train.amp
    assert [c.train.seed for c in runs["lenet5"]] == [0, 1] == [c.train.seed for c in runs["luminanet"]]
    if profile == "full":
        assert SHORT_EPOCHS >= 5 and cfgs[0].train.epochs == SHORT_EPOCHS


def test_parity_runs_differ_only_in_the_path_or_the_seed():
    runs = cifar10_parity_runs("full")
    assert {t for _, t in runs} == set(FAST_PATHS)  # every table is checked
    for (name, table), (f32, fast, fast1, f32_1) in runs.items():
        assert f32.train.epochs == fast.train.epochs == 1.0 and f32.train.seed == fast.train.seed == 0
        assert not f32.train.channels_last and not f32.train.amp and fast1.train.seed == 1
        assert PARITY[name, table]  # a model whose fast path is float32 itself has nothing to check
        assert (f32.non_default()["train"] | PARITY[name, table]) == fast.non_default()["train"]
        assert f32_1.non_default()["train"] == f32.non_default()["train"] | {"seed": 1}
        assert fast1.key() == resolve("cifar10_baseline", "full", arch=name, epochs=1.0, threads=1, seed=1,
                                      **PARITY[name, table]).key()


def test_parity_rule_agrees_within_seed_noise_or_the_bootstrap_and_waits_for_all_three_runs(tmp_path, monkeypatch):
    """`verdicts.fast_path_parity`: a model counts only with its three runs stored; the paths agree when
    |fast - float32| <= 2 |seed difference| or the paired bootstrap over images covers 0, and differ otherwise."""
    import numpy as np

    from lumina.metrics import pack_bits
    from lumina.verdicts import fast_path_parity, fast_path_parity_table

    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    rng = np.random.default_rng(0)

    def store(cfg, correct: np.ndarray):
        d = result_dir(cfg)
        d.mkdir(parents=True, exist_ok=True)
        r = {"config": cfg.to_dict(), "metrics": {"test_top1": 100.0 * correct.mean()}, "train_s": 600.0,
             "test_correct": pack_bits(torch.from_numpy(correct))}
        (d / "result.json").write_text(json.dumps(r))

    base = rng.random(10_000) < 0.5
    flip = lambda a, n: np.where(np.arange(a.size) < n, ~a, a)  # noqa: E731
    runs = cifar10_parity_runs("full")
    (a32, afast, afast1, a32_1), (m32, mfast, mfast1, _) = runs["alexnet", "float32"], runs["mobilevit", "float32"]
    assert fast_path_parity("full") == []
    # AlexNet: the fast path loses the ~300 images it got right among the first 600 (~3 points); seed noise ~0.05 points
    store(a32, base), store(afast, base & (np.arange(10_000) >= 600)), store(afast1, base & (np.arange(10_000) >= 610))
    assert [r["model"] for r in fast_path_parity("full")] == ["alexnet"]
    # MobileViT: the same accuracy, other images (a bootstrap interval around 0)
    store(m32, base), store(mfast, flip(base, 200)), store(mfast1, flip(base, 201))
    rows = {r["model"]: r for r in fast_path_parity("full")}
    assert {r["table"] for r in rows.values()} == {"float32"}  # the bf16 table's runs are not stored
    a = rows["alexnet"]
    assert a["diff_fast_minus_float32"] == pytest.approx(-base[:600].sum() / 100, abs=1e-9) and not a["agree"]
    assert a["diff_boot_ci95"][1] < 0
    m = rows["mobilevit"]
    lo, hi = m["diff_boot_ci95"]
    assert m["agree"] and lo <= 0 <= hi
    table = {r["model"]: r["verdict"] for r in fast_path_parity_table("full")}
    assert table == {"AlexNet": "differ", "MobileViT": "agree"}
    # the bf16 table's AlexNet shares the float32 run; with its two fast runs stored it is a row of its own
    b32, bfast, bfast1, b32_1 = runs["alexnet", "bf16"]
    assert b32.key() == a32.key() and b32_1.key() == a32_1.key() and bfast.train.amp
    store(bfast, base), store(bfast1, flip(base, 50))
    rows = {(r["model"], r["table"]): r for r in fast_path_parity("full")}
    assert set(rows) == {("alexnet", "float32"), ("mobilevit", "float32"), ("alexnet", "bf16")}
    assert rows["alexnet", "bf16"]["agree"] and rows["alexnet", "bf16"]["diff_fast_minus_float32"] == 0.0
    assert rows["alexnet", "bf16"]["top1_float32_seed1"] is None
    # float32 from seed 1 is shown where stored and changes no verdict
    store(a32_1, flip(base, 5000))
    rows = {(r["model"], r["table"]): r for r in fast_path_parity("full")}
    assert rows["alexnet", "bf16"]["top1_float32_seed1"] == pytest.approx(100.0 * flip(base, 5000).mean())
    assert rows["alexnet", "bf16"]["agree"] and not rows["alexnet", "float32"]["agree"]


def test_bf16_short_runs_repeat_the_stored_short_runs_under_the_bf16_table():
    short = cifar10_short_runs("full")
    for name, (f32, bf16) in cifar10_short_bf16_runs("full").items():
        assert f32.key() == short[name][0].key()  # the stored run itself, not a copy
        assert bf16.non_default()["train"] == ({k: v for k, v in f32.non_default()["train"].items() if k != "channels_last"}
                                               | SHORT_BF16[name])
        assert bf16.model == f32.model and bf16.data == f32.data and bf16.train.seed == f32.train.seed


def test_bf16_short_parity_rule_covers_zero_or_names_the_one_ahead(tmp_path, monkeypatch):
    """`verdicts.bf16_short_parity`: agree when the image bootstrap of bf16 - float32 covers 0, else the side ahead;
    a model counts only with both runs stored."""
    import numpy as np

    from lumina.metrics import pack_bits
    from lumina.verdicts import bf16_short_parity

    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))

    def store(cfg, correct: np.ndarray):
        d = result_dir(cfg)
        d.mkdir(parents=True, exist_ok=True)
        r = {"config": cfg.to_dict(), "metrics": {"test_top1": 100.0 * correct.mean(), "test_top5": 99.0},
             "train_s": 60.0, "epochs_done": cfg.train.epochs, "test_correct": pack_bits(torch.from_numpy(correct))}
        (d / "result.json").write_text(json.dumps(r))

    base = np.random.default_rng(0).random(10_000) < 0.6
    runs = cifar10_short_bf16_runs("full")
    store(runs["alexnet"][0], base)
    assert bf16_short_parity("full") == []
    swap = np.r_[np.flatnonzero(base)[:200], np.flatnonzero(~base)[:200]]  # 200 right made wrong, 200 wrong made right
    other = base.copy()
    other[swap] = ~other[swap]
    store(runs["alexnet"][1], other)  # other images, the same accuracy
    store(runs["resnet18"][0], base), store(runs["resnet18"][1], base | (np.arange(10_000) < 1000))  # bf16 ~+4 points
    store(runs["deit_tiny"][0], base), store(runs["deit_tiny"][1], base & (np.arange(10_000) >= 1000))  # bf16 ~-6
    got = {r["model"]: r for r in bf16_short_parity("full")}
    assert got["alexnet"]["verdict"] == "agree" and got["alexnet"]["diff_boot_ci95"][0] <= 0 <= got["alexnet"]["diff_boot_ci95"][1]
    assert got["resnet18"]["verdict"] == "bf16 ahead" and got["resnet18"]["diff_bf16_minus_float32"] > 3
    assert got["deit_tiny"]["verdict"] == "float32 ahead"
