"""The policy file (``policy.safetensors``): query-scorer weights and what they are for.

A ralis safetensors file (:mod:`ralis.files.safe`) of kind ``policy``. Its record holds the
feature layout (:class:`FeatureSpec`: class count, regions per image, state-set size, poolings,
KL bins, region and image size, region kind and superpixel count), the class names, the dataset
and preset it was trained on, a content hash of the images it played on, and how it was trained.
Loading rebuilds the query network from the feature layout alone; nothing in the file runs.
Policies saved before region kinds existed have neither ``region_kind`` nor ``superpixels``
and load as rectangles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ralis.files.safe import (
    FileFormatError,
    base_record,
    enc_plain,
    load_file,
    save_file,
    weights_for,
)
from ralis.regions.base import REGION_KINDS
from ralis.rl.observe import FeatureSpec
from ralis.rl.qnet import QueryNetwork
from ralis.rl.scorers import EntropyResidual

# Bounds a record must respect before anything is allocated from it.
_LIMITS = {"num_classes": 10_000, "regions_per_image": 1_000_000, "state_images": 100_000,
           "kl_bins": 4_096}


SCORERS = ("qnet", "entropy_residual")
"""Kinds of query scorer a policy file may hold: the paper's query network, or an
entropy-started scorer (:class:`~ralis.rl.scorers.EntropyResidual`)."""


def build_qnet(spec: FeatureSpec) -> QueryNetwork:
    return QueryNetwork(spec.state_dim, spec.state_regions, spec.action_dim, spec.kl_dim)


def scorer_kind(net: torch.nn.Module) -> str:
    return "entropy_residual" if isinstance(net, EntropyResidual) else "qnet"


def build_scorer(kind: str, config: Any, spec: FeatureSpec, path: Path) -> torch.nn.Module:
    """The scorer a record describes (every value checked before anything is allocated)."""
    if kind == "qnet":
        return build_qnet(spec)
    if kind != "entropy_residual":
        raise FileFormatError(f"{path}: unknown scorer {kind!r} in its record; valid: "
                              f"{', '.join(SCORERS)}")
    hidden = config.get("hidden") if isinstance(config, dict) else None
    if not (isinstance(hidden, int) and not isinstance(hidden, bool) and 0 <= hidden <= 4096
            and config.get("num_classes") == spec.num_classes):
        raise FileFormatError(f"{path}: invalid scorer layout in its record ({config!r})")
    return EntropyResidual(spec.num_classes, hidden)


def save_policy(path: Path, qnet: torch.nn.Module, spec: FeatureSpec, meta: dict) -> Path:
    """Write the policy atomically; ``meta`` (plain values) joins the record."""
    record = {**enc_plain(dict(meta)), **base_record(), "features": enc_plain(spec.to_dict()),
              "qnet": qnet.config(), "scorer": scorer_kind(qnet)}
    state = {k: v.detach().cpu() for k, v in qnet.state_dict().items()}
    return save_file(Path(path), {"state_dict": state}, "policy", record)


def _pair(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000
                    for v in value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"bad size {value!r}")


def spec_from_record(features: Any, path: Path) -> FeatureSpec:
    """A :class:`FeatureSpec` from a record's ``features``, every field checked first."""
    try:
        if not isinstance(features, dict):
            raise ValueError("no feature layout")
        known = set(FeatureSpec.__dataclass_fields__)
        if set(features) - known:
            raise ValueError(f"unknown fields {sorted(set(features) - known)}")
        for key, top in _LIMITS.items():
            v = features.get(key, 32 if key == "kl_bins" else None)
            if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= top):
                raise ValueError(f"{key}={v!r}")
        poolings = tuple(features.get("poolings", ("min", "mean", "max")))
        if not poolings or not set(poolings) <= {"min", "mean", "max"}:
            raise ValueError(f"poolings={poolings!r}")
        kl_range = tuple(float(v) for v in features.get("kl_range", (0.0, 10.0)))
        if len(kl_range) != 2:
            raise ValueError(f"kl_range={kl_range!r}")
        if features.get("kl_mode", "adaptive") not in ("adaptive", "fixed"):
            raise ValueError(f"kl_mode={features.get('kl_mode')!r}")
        for key in ("normalize_hist", "use_kl"):
            if not isinstance(features.get(key, False), bool):
                raise ValueError(f"{key}={features.get(key)!r}")
        kind = features.get("region_kind", "rect")  # files from before region kinds: rect
        if kind not in REGION_KINDS:
            raise ValueError(f"region_kind={kind!r}")
        superpixels = features.get("superpixels")
        if kind == "slic":
            if not (isinstance(superpixels, int) and not isinstance(superpixels, bool)
                    and 1 <= superpixels <= 1_000_000):
                raise ValueError(f"superpixels={superpixels!r}")
        elif superpixels is not None:
            raise ValueError(f"superpixels={superpixels!r} for {kind} regions")
        return FeatureSpec(
            num_classes=features["num_classes"],
            regions_per_image=features["regions_per_image"],
            state_images=features["state_images"],
            poolings=poolings,
            normalize_hist=features.get("normalize_hist", False),
            use_kl=features.get("use_kl", True),
            kl_bins=features.get("kl_bins", 32),
            kl_mode=features.get("kl_mode", "adaptive"),
            kl_range=kl_range,  # type: ignore[arg-type]
            region_size=_pair(features.get("region_size")),
            image_size=_pair(features.get("image_size")),
            region_kind=kind,
            superpixels=superpixels,
        )
    except (ValueError, TypeError) as exc:
        raise FileFormatError(f"{path}: invalid feature layout in its record ({exc})") from None


def load_policy(path: Path) -> tuple[torch.nn.Module, FeatureSpec, dict]:
    """Rebuild the scorer of ``path``: ``(scorer in eval mode, spec, record)`` (a
    :class:`QueryNetwork`, or an :class:`EntropyResidual` where the record says so).

    A missing, damaged, crafted, non-finite or foreign file is a one-line error.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"policy file {path} not found; train one with `ralis train-agent`")
    tree, record = load_file(path, "policy")
    spec = spec_from_record(record.get("features"), path)
    kind = record.get("scorer", "qnet")  # files from before entropy-started scorers: qnet
    with torch.device("meta"):
        skeleton = build_scorer(kind, record.get("qnet"), spec, path)
    state = weights_for(tree, skeleton, path, "the query network of its feature layout")
    qnet = build_scorer(kind, record.get("qnet"), spec, path)
    qnet.load_state_dict(state, strict=True)
    qnet.eval()
    return qnet, spec, record
