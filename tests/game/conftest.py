import pytest

from ralis.agents.start import game_split
from ralis.config import apply_overrides, get_preset
from ralis.data.protocol import load_protocol
from ralis.game import GAMES
from ralis.rl.observe import FeatureSpec
from ralis.training.supervised import build_model


@pytest.fixture(scope="session")
def head_cfg():
    return apply_overrides(get_preset("synthetic-tiny"),
                           ["agent.game=head", "agent.episode_budget=12"])


@pytest.fixture(scope="session")
def head_proto(head_cfg):
    return load_protocol(head_cfg.data, progress=False)


@pytest.fixture
def make_game(head_cfg, head_proto):
    """A fresh game over a fixed random-weight start model (the same weights every call)."""
    def make(name="head", cfg=None):
        import torch

        cfg = cfg or head_cfg
        torch.manual_seed(0)
        model = build_model(cfg, head_proto.num_classes)
        start, pool = game_split(cfg, head_proto)
        spec = FeatureSpec.from_config(cfg.agent, head_proto.num_classes,
                                       head_proto.regions_of(head_proto.state),
                                       len(head_proto.state))
        return GAMES.get(name)(cfg, head_proto, model, start, pool, spec, cfg.seed)
    return make
