"""The policy file: query-network weights plus everything needed to use them safely."""

from __future__ import annotations

from pathlib import Path

import torch

from ralis.errors import RalisError
from ralis.rl.observe import FeatureSpec
from ralis.rl.qnet import QueryNetwork


def build_qnet(spec: FeatureSpec) -> QueryNetwork:
    return QueryNetwork(spec.state_dim, spec.state_regions, spec.action_dim, spec.kl_dim)


def save_policy(path: Path, qnet: QueryNetwork, spec: FeatureSpec, meta: dict) -> None:
    from ralis.loop.store import atomic_save  # local: loop is the outer layer

    atomic_save(
        {
            "format": "ralis-policy-1",
            "qnet": qnet.config(),
            "spec": spec.to_dict(),
            "state_dict": qnet.state_dict(),
            "meta": meta,
        },
        Path(path),
    )


def load_policy(path: Path) -> tuple[QueryNetwork, FeatureSpec, dict]:
    """Rebuild the query network of ``path``; a missing or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise RalisError(f"policy file {path} not found; train one with `ralis train-agent`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or blob.get("format") != "ralis-policy-1":
            raise ValueError("not a ralis policy file")
        spec_d = dict(blob["spec"])
        spec_d["poolings"] = tuple(spec_d["poolings"])
        spec_d["kl_range"] = tuple(spec_d["kl_range"])
        for key in ("region_size", "image_size"):
            if spec_d.get(key) is not None:
                spec_d[key] = tuple(spec_d[key])
        spec = FeatureSpec(**spec_d)
        qnet = QueryNetwork.from_config(blob["qnet"])
        qnet.load_state_dict(blob["state_dict"])
    except Exception as exc:  # noqa: BLE001 - any failure here means an unusable file
        raise RalisError(
            f"cannot read policy {path} ({exc}); pass a policy.pt from `ralis train-agent`"
        ) from None
    qnet.eval()
    return qnet, spec, blob.get("meta", {})
