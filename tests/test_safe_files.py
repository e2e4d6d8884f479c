"""Files from others are data, never code: every loader refuses pickles and crafted files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from ralis.errors import RalisError
from ralis.files.safe import FileFormatError, load_file, read_header, save_file, tensors_digest
from ralis.models import create_model, load_model, save_model


# --- the format ------------------------------------------------------------------------------
def test_tree_round_trip_keeps_types_and_sharing(tmp_path):
    shared = torch.arange(6.0).reshape(2, 3)
    tree = {"a": shared, "b": [shared, (1, 2.5, None, "x")], "opt": {0: {"m": torch.ones(2)},
                                                                    1: {"m": torch.zeros(1)}},
            "gen": torch.Generator().manual_seed(3).get_state(), "inf": float("-inf"),
            "__odd": True, "view": shared[1], "flat": shared.view(-1)}
    save_file(tmp_path / "f.safetensors", tree, "checkpoint", {"run_id": "r", "step": 1})
    out, record = load_file(tmp_path / "f.safetensors", "checkpoint")
    assert record == {"run_id": "r", "step": 1, "sha256": record["sha256"]}
    assert len(record["sha256"]) == 64
    assert torch.equal(out["a"], shared) and out["a"] is out["b"][0]  # stored once
    assert out["b"][1] == (1, 2.5, None, "x") and isinstance(out["b"][1], tuple)
    assert set(out["opt"]) == {0, 1} and torch.equal(out["opt"][0]["m"], torch.ones(2))
    assert out["inf"] == float("-inf") and out["__odd"] is True
    assert torch.equal(out["view"], shared[1])
    assert torch.equal(out["flat"], shared.view(-1))  # another view of the whole storage
    assert torch.equal(out["gen"], tree["gen"])


def test_kind_is_checked(tmp_path):
    save_file(tmp_path / "p.safetensors", {"x": torch.ones(1)}, "policy", {})
    with pytest.raises(FileFormatError, match="is a ralis policy file, not a model"):
        load_file(tmp_path / "p.safetensors", "model")


def _rewrite(path: Path, change, resign: bool = True) -> None:
    """Rewrite a file's header JSON with ``change(header)`` (tensor bytes kept); ``resign``
    recomputes the whole-file checksum, as a crafted file would."""
    from ralis.files.safe import _whole_digest

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    change(header)
    if resign:
        header["__metadata__"]["sha256"] = _whole_digest(header["__metadata__"])
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])


def test_crafted_files_are_refused(tmp_path):
    good = tmp_path / "good.safetensors"
    save_file(good, {"w": torch.arange(4.0)}, "model", {})
    # changed tensor bytes (what `dd` of random bytes into a file does): checksum
    bad = tmp_path / "bytes.safetensors"
    data = bytearray(good.read_bytes())
    data[-3] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="does not match the checksum"):
        load_file(bad, "model")
    # a changed header (the tree or record, not the tensors) is caught by the whole-file sum
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(good.read_bytes())
    _rewrite(edited, lambda h: h["__metadata__"].update(record='{"epochs": 99}'), resign=False)
    with pytest.raises(FileFormatError, match="does not match the checksum"):
        load_file(edited, "model")
    # truncated
    bad.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(FileFormatError, match="truncated: its header announces"):
        load_file(bad, "model")
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(FileFormatError, match="truncated"):
        load_file(bad, "model")
    # a header that claims to be huge
    bad.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(FileFormatError, match="header of .* larger"):
        load_file(bad, "model")
    # non-finite values with a valid checksum
    nan = tmp_path / "nan.safetensors"
    save_file(nan, {"w": torch.tensor([1.0, float("nan")])}, "model", {})
    with pytest.raises(FileFormatError, match="NaN or infinite"):
        load_file(nan, "model")
    # a tree that names a tensor the file does not hold
    ghost = tmp_path / "ghost.safetensors"
    save_file(ghost, {"w": torch.ones(1)}, "model", {})
    _rewrite(ghost, lambda h: h["__metadata__"].update(tree='{"w": {"__tensor__": "zz"}}'))
    with pytest.raises(FileFormatError, match="does not hold"):
        load_file(ghost, "model")
    # absurd nesting and malformed maps: one line, not a RecursionError or TypeError
    deep = tmp_path / "deep.safetensors"
    save_file(deep, {"w": torch.ones(1)}, "model", {})
    _rewrite(deep, lambda h: h["__metadata__"].update(tree="[" * 100000 + "]" * 100000))
    with pytest.raises(FileFormatError):
        load_file(deep, "model")
    # empty, foreign
    bad.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty or truncated"):
        load_file(bad, "model")


def test_tensors_digest_known_answer():
    a = tensors_digest({"x": torch.tensor([1, 2], dtype=torch.uint8)})
    b = tensors_digest({"x": torch.tensor([1, 3], dtype=torch.uint8)})
    c = tensors_digest({"y": torch.tensor([1, 2], dtype=torch.uint8)})
    assert len({a, b, c}) == 3 and a == tensors_digest({"x": torch.tensor([1, 2]).byte()})


# --- every loader refuses a pickle payload and never runs it ---------------------------------
def test_model_loader_refuses_payload(tmp_path, pickle_payload):
    marker = tmp_path / "marker"
    model = create_model("fpn_small", 3, fpn_dim=8, head_dim=4)
    evil = pickle_payload(tmp_path / "model.safetensors", marker,
                               {"name": "fpn_small", "num_classes": 3, "kwargs": {},
                                "state_dict": model.state_dict()})
    with pytest.raises(RalisError, match="pickled torch file"):
        load_model(evil)
    assert not marker.exists()


def test_policy_loader_refuses_payload(tmp_path, pickle_payload):
    from ralis.rl.policy import load_policy

    marker = tmp_path / "marker"
    evil = pickle_payload(tmp_path / "policy.safetensors", marker,
                               {"format": "ralis-policy-1"})
    with pytest.raises(RalisError, match="pickled torch file"):
        load_policy(evil)
    assert not marker.exists()


def test_convert_refuses_payload(tmp_path, pickle_payload):
    from ralis.cli.convert import convert_file

    marker = tmp_path / "marker"
    evil = pickle_payload(tmp_path / "policy.pt", marker, {"format": "ralis-policy-1"})
    with pytest.raises(RalisError, match="cannot convert"):
        convert_file(evil)
    assert not marker.exists() and not (tmp_path / "policy.safetensors").exists()


def test_convert_never_suggests_the_unsafe_loader(tmp_path, pickle_payload, monkeypatch,
                                                  capsys):
    from tests.cli_helpers import run_cli

    marker = tmp_path / "marker"
    evil = pickle_payload(tmp_path / "model.pt", marker)
    code, _, err = run_cli(monkeypatch, capsys, "convert", str(evil))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot convert" in err and "refers to" in err
    assert "weights_only" not in err.replace("weights_only=True", "") and "trust" not in err
    assert not marker.exists()


def test_convert_turns_a_legacy_model_into_a_safe_one(tmp_path):
    from ralis.cli.convert import convert_file

    model = create_model("fpn_small", 3, fpn_dim=8, head_dim=4)
    torch.save({"name": "fpn_small", "num_classes": 3, "kwargs": {"fpn_dim": 8, "head_dim": 4},
                "state_dict": model.state_dict(), "extra": {"classes": ["a", "b", "c"]}},
               tmp_path / "model.pt")
    new, kind = convert_file(tmp_path / "model.pt")
    assert kind == "model" and new == tmp_path / "model.safetensors"
    loaded, meta = load_model(new)
    assert meta["extra"]["classes"] == ["a", "b", "c"]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_inspect_reads_the_header_only(tmp_path):
    from ralis.files.inspect import format_inspection, inspect_file

    model = create_model("fpn_small", 2, fpn_dim=8, head_dim=4)
    path = save_model(tmp_path / "m.safetensors", model, "fpn_small", 2,
                      {"fpn_dim": 8, "head_dim": 4}, extra={"classes": ["road", "sky"]})
    info = inspect_file(path)
    assert info["kind"] == "model" and info["record"]["classes"] == ["road", "sky"]
    assert info["tensors"]["values"] == sum(t.numel() for t in model.state_dict().values())
    assert "classes: road, sky" in format_inspection(info)
    kind, record, shapes = read_header(path)
    assert kind == "model" and len(shapes) == len(model.state_dict())
