"""benchmarks/region_purity.py: known answers for the purity statistics, and a synthetic run."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "region_purity.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("region_purity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_purity_known_answer(script):
    # 3 classes + void; region 0: 8 of class 0, 2 of class 1 (purity 0.8, 2 classes)
    # region 1: 10 of class 2 and 5 void (purity 1.0); region 2: padding (not valid)
    # region 3: only void (valid, but no labelled pixel: left out of the purities)
    counts = torch.tensor([[8, 2, 0, 0], [0, 0, 10, 5], [0, 0, 0, 0], [0, 0, 0, 4]])
    valid = torch.tensor([True, True, False, True])
    st = script.purity_stats(counts, valid, pure=0.9)
    assert st["regions"] == 2
    assert st["pixel_purity"] == pytest.approx(18 / 20)
    assert st["region_purity"] == pytest.approx((0.8 + 1.0) / 2)
    assert st["pure_share"] == pytest.approx(0.5)
    assert st["classes_per_region"] == pytest.approx(1.5)
    assert st["void_share"] == pytest.approx(9 / 29)
    assert st["size_mean"] == pytest.approx(29 / 3)


def test_region_purity_on_synthetic(script, tmp_path):
    out = tmp_path / "purity.json"
    script.main(["--preset", "synthetic-tiny", "--kinds", "rect", "--out", str(out)])
    res = json.loads(out.read_text())
    rect = res["kinds"]["rect"]
    assert res["preset"] == "synthetic-tiny" and "git_revision" in res
    assert 0 < rect["pixel_purity"] <= 1 and rect["size_std"] == 0.0
    assert rect["size_mean"] == 16 * 16  # synthetic-tiny's 16x16 rectangles
