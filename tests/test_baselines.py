"""CIFAR-10 baselines: shapes, gradients, errors, determinism (batch 2, one step each)."""
import pytest
import torch
import torch.nn.functional as F

from lumina.baselines import BASELINES, baseline_info, build_baseline, vision

EXPECTED = ("lenet5", "alexnet", "resnet18", "mlp_mixer", "resmlp", "deit_tiny", "mobilevit")


def test_names():
    assert BASELINES == EXPECTED


@pytest.mark.parametrize("name", BASELINES)
def test_forward_backward(name):
    model = build_baseline(name).train()
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([3, 7])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"


@pytest.mark.parametrize("name", BASELINES)
def test_deterministic_init(name):
    def build_and_run(seed):
        torch.manual_seed(seed)
        model = build_baseline(name, num_classes=5).eval()
        with torch.no_grad():
            return model(x), torch.cat([p.flatten() for p in model.parameters()])

    x = torch.randn(2, 3, 32, 32)
    out_a, params_a = build_and_run(1)
    out_b, params_b = build_and_run(1)
    _, params_c = build_and_run(2)
    assert out_a.shape == (2, 5)
    assert torch.equal(params_a, params_b) and torch.equal(out_a, out_b)
    # Outputs alone are not enough: timm zero-initialises the Mixer/ResMLP heads (output 0).
    assert not torch.equal(params_a, params_c)


@pytest.mark.parametrize("name", BASELINES)
def test_info(name):
    info = baseline_info(name)
    assert set(info) == {"paper", "library", "adaptation"}
    assert info["library"] in ("timm", "torchvision", "hand-written")
    assert info["paper"] and info["adaptation"]
    year = info["paper"].split(",")[0].split()[-1]  # "LeCun et al. 1998, ..." -> "1998"
    assert year.isdigit() and year in getattr(vision, name).__doc__  # the builder cites the paper


def test_unknown_name():
    for call in (build_baseline, baseline_info):
        with pytest.raises(ValueError) as err:
            call("vgg16")
        assert all(n in str(err.value) for n in BASELINES)


@pytest.mark.parametrize("name, features, hw", [
    ("alexnet", lambda m, x: m.features(x), 3),
    ("resnet18", lambda m, x: m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))))), 4),
    ("mobilevit", lambda m, x: m.forward_features(x), 4),
])
def test_cifar_adaptation_keeps_spatial_map(name, features, hw):
    # The 32x32 adaptations exist so the last feature map is not collapsed to 1x1.
    model = build_baseline(name).eval()
    with torch.no_grad():
        assert features(model, torch.randn(1, 3, 32, 32)).shape[-2:] == (hw, hw)


def test_a_baseline_trains_and_resumes_exactly_through_the_shared_loop(tmp_path):
    """The same loop and recipe as LuminaNet (torch's AdamW here); a stopped run resumes bit-identically."""
    from lumina.config import resolve
    from lumina.loop import train

    cfg = resolve("synthetic", "smoke", arch="lenet5", epochs=1.0, threads=1, eval_every=5)
    quiet = dict(log=lambda *a: None)
    assert train(cfg, ckpt=tmp_path / "c.safetensors", stop_after=7, **quiet) is None
    resumed = train(cfg, ckpt=tmp_path / "c.safetensors", **quiet)
    straight = train(cfg, **quiet)
    untimed = lambda r: [{k: v for k, v in h.items() if k != "train_s"} for h in r.result["history"]]
    assert untimed(resumed) == untimed(straight) and resumed.result["metrics"] == straight.result["metrics"]
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert resumed.events == [] and "event_counts" not in resumed.result
