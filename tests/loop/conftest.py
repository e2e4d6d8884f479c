import pytest

from ralis.config import get_preset
from ralis.data.protocol import load_protocol
from ralis.loop.pretrain import pretrain


@pytest.fixture(scope="session")
def tiny_cfg():
    return get_preset("synthetic-tiny")


@pytest.fixture(scope="session")
def tiny_proto(tiny_cfg):
    return load_protocol(tiny_cfg.data, progress=False)


@pytest.fixture(scope="session")
def tiny_theta0(tiny_cfg, tiny_proto, tmp_path_factory):
    out = tmp_path_factory.mktemp("theta0")
    return pretrain(tiny_cfg, out / "pretrain", progress=False, proto=tiny_proto)
