"""Tests for ralis.models: every registered network, checkpoints, the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ralis.errors import ConfigError, RalisError
from ralis.models import (
    MODELS,
    SegmentationNet,
    check_num_classes,
    create_model,
    load_model,
    save_model,
    supports_shared_features,
)
from ralis.models.resnet import resnet18, resnet50

NUM_CLASSES = 5
N, H, W = 2, 72, 100  # not multiples of 32

_CACHE: dict[str, nn.Module] = {}


def _model(name: str) -> nn.Module:
    """One eval-mode instance per registered name, built once (ResNet-50 is slow to init)."""
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = create_model(name, NUM_CLASSES).eval()
    return _CACHE[name]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: tiny convs gain nothing from two, and on a shared 2-core machine
    two spinning threads per process make these tests many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(N, 3, H, W, generator=torch.Generator().manual_seed(1))


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_names() -> None:
    assert MODELS.names() == ["fpn_effl0", "fpn_resnet18", "fpn_resnet34", "fpn_resnet50",
                             "fpn_small"]


@pytest.mark.parametrize("name", MODELS.names())
def test_shapes_and_head_split(name: str, images: torch.Tensor) -> None:
    model = _model(name)
    assert isinstance(model, SegmentationNet)
    assert supports_shared_features(model)
    with torch.no_grad():
        logits = model(images)
        feats = model.forward_features(images)
        again = model.forward_head(feats, (H, W))
    assert logits.shape == (N, NUM_CLASSES, H, W)
    # features at c2's size (ceil(H/4), ceil(W/4)), 4 * head_dim channels
    assert feats.shape == (N, 4 * model.head_dim, 18, 25)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, again, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS.names())
def test_mc_dropout(name: str, images: torch.Tensor) -> None:
    model = _model(name)
    assert model.dropout_p == 0.5
    with torch.no_grad():
        feats = model.forward_features(images)
        det1 = model.forward_head(feats, (H, W))
        det2 = model.forward_head(feats, (H, W))
        mc1 = model.forward_head(feats, (H, W), mc_dropout=True)
        mc2 = model.forward_head(feats, (H, W), mc_dropout=True)
    assert torch.equal(det1, det2)
    assert mc1.shape == det1.shape
    assert not torch.equal(mc1, mc2)
    assert not torch.equal(mc1, det1)
    assert not model.training  # MC dropout does not switch the module to train mode


@pytest.mark.parametrize("name", MODELS.names())
def test_save_load_round_trip(name: str, images: torch.Tensor, tmp_path: Path) -> None:
    model = _model(name)
    path = tmp_path / "ckpt" / "model.safetensors"
    written = save_model(path, model, name, NUM_CLASSES, {}, extra={"step": 3, "miou": 0.25})
    assert written == path and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp file left
    loaded, meta = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert meta["name"] == name and meta["num_classes"] == NUM_CLASSES
    assert meta["extra"]["step"] == 3 and meta["extra"]["miou"] == 0.25
    assert meta["extra"]["ralis_version"]  # every file says which ralis wrote it
    with torch.no_grad():
        assert torch.equal(model(images), loaded(images))


@pytest.mark.parametrize("size", [(64, 96), (37, 53), (33, 33)])
def test_small_odd_sizes(size: tuple[int, int]) -> None:
    model = _model("fpn_small")
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert model(x).shape == (1, NUM_CLASSES, *size)


def test_kwargs_pass_through_and_checkpoint(tmp_path: Path) -> None:
    kwargs = {"fpn_dim": 16, "head_dim": 8, "dropout_p": 0.2, "widths": [8, 16, 24, 32]}
    model = create_model("fpn_small", 3, **kwargs)
    assert model.dropout_p == 0.2 and model.fpn_dim == 16 and model.head_dim == 8
    assert model.backbone.out_channels == (8, 16, 24, 32)
    assert model.classifier.in_channels == 32 and model.classifier.out_channels == 3
    save_model(tmp_path / "m.pt", model, "fpn_small", 3, kwargs)
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta["kwargs"] == kwargs
    assert loaded.fpn_dim == 16 and loaded.dropout_p == 0.2


def test_training_lowers_loss() -> None:
    torch.manual_seed(0)
    model = create_model("fpn_small", NUM_CLASSES).train()
    x = torch.randn(2, 3, 48, 64)
    # a learnable target: class = quantised mean colour of the pixel
    y = (x.mean(1) * 2 + 2).round().clamp(0, NUM_CLASSES - 1).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", ["fpn_small", "fpn_resnet18"])
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES).train()
    x = torch.randn(2, 3, 64, 96)
    y = torch.randint(0, NUM_CLASSES, (2, 64, 96))
    nn.functional.cross_entropy(model(x), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_parameter_counts() -> None:
    counts = {name: _n_params(_model(name)) for name in MODELS.names()}
    assert 25e6 <= counts["fpn_resnet50"] <= 30e6
    assert 10e6 <= counts["fpn_resnet18"] < counts["fpn_resnet34"] < counts["fpn_resnet50"]
    assert 0.3e6 <= counts["fpn_small"] <= 1e6
    # EfficientNet-Lite0 without its classifier head (1280-d conv, fc): 2.96 M
    assert _n_params(_model("fpn_effl0").backbone) == 2_958_848


def test_resnet_layout() -> None:
    r50 = resnet50()
    assert r50.out_channels == (256, 512, 1024, 2048)
    keys = set(r50.state_dict())
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.downsample.0.weight",
        "layer4.2.conv3.weight",
        "layer3.5.bn2.weight",
    ):
        assert key in keys
    r18 = resnet18()
    assert r18.out_channels == (64, 128, 256, 512)
    # torchvision ResNet-18 has 11,689,512 parameters, 513,000 of them in fc.
    assert _n_params(r18) == 11_689_512 - 513_000
    with torch.no_grad():
        c2, c3, c4, c5 = r18.eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(c.shape[-2:]) for c in (c2, c3, c4, c5)] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_unknown_name_and_option() -> None:
    with pytest.raises(ConfigError) as err:
        create_model("fpn_resnet101", 3)
    for name in MODELS.names():
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="fpn_dimm"):
        create_model("fpn_small", 3, fpn_dimm=32)
    with pytest.raises(ConfigError, match="dropout_p"):
        create_model("fpn_small", 3, dropout_p=1.5)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("fpn_small", 0)


def test_supports_shared_features_false_for_plain_module() -> None:
    assert not supports_shared_features(nn.Conv2d(3, 2, 1))


def test_bad_model_files(tmp_path: Path) -> None:
    from ralis.files.safe import load_file, save_file

    with pytest.raises(RalisError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(RalisError, match="damaged or crafted|truncated|not a ralis (safetensors )?file"):
        load_model(garbage)
    good = tmp_path / "good.safetensors"
    save_model(good, create_model("fpn_small", 3, fpn_dim=8, head_dim=4), "fpn_small", 3,
               {"fpn_dim": 8, "head_dim": 4})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RalisError, match="damaged|truncated"):
        load_model(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(RalisError, match="pickled torch file"):
        load_model(other)
    # weights that do not fit the network its record describes
    tree, record = load_file(good, "model")
    record["model"]["kwargs"] = {"fpn_dim": 16, "head_dim": 4}
    mismatched = tmp_path / "mismatched.safetensors"
    save_file(mismatched, tree, "model", record)
    with pytest.raises(RalisError, match="does not match"):
        load_model(mismatched)
    record["model"]["name"] = "nope"
    save_file(mismatched, tree, "model", record)
    with pytest.raises(ConfigError, match="fpn_small"):
        load_model(mismatched)


def test_check_num_classes(tmp_path: Path) -> None:
    save_model(
        tmp_path / "m.pt",
        create_model("fpn_small", 3, fpn_dim=8, head_dim=4),
        "fpn_small",
        3,
        {"fpn_dim": 8, "head_dim": 4},
    )
    _, meta = load_model(tmp_path / "m.pt")
    check_num_classes(meta, 3)
    with pytest.raises(ConfigError, match="predicts 3 classes but 11 are expected"):
        check_num_classes(meta, 11)


def test_extra_must_be_plain(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    model = create_model("fpn_small", 2, fpn_dim=8, head_dim=4)
    extra = {"miou": np.float64(0.5), "ious": np.array([0.1, 0.2]), "dir": tmp_path}
    save_model(tmp_path / "m.pt", model, "fpn_small", 2, {"fpn_dim": 8, "head_dim": 4}, extra)
    _, meta = load_model(tmp_path / "m.pt")
    assert {k: meta["extra"][k] for k in extra} == {"miou": 0.5, "ious": [0.1, 0.2],
                                                    "dir": str(tmp_path)}
    with pytest.raises(TypeError, match="extra"):
        save_model(tmp_path / "x.pt", model, "fpn_small", 2, {}, {"bad": object()})
    assert not (tmp_path / "x.pt").exists()
