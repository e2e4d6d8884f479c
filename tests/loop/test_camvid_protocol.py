import pytest

from ralis.config import get_preset
from ralis.data.camvid import default_root

pytestmark = pytest.mark.camvid


@pytest.mark.skipif(not (default_root() / "train.txt").exists(), reason="CamVid not available")
def test_camvid_cpu_protocol_matches_the_paper_split():
    from ralis.data.protocol import load_protocol

    proto = load_protocol(get_preset("camvid-cpu").data, progress=False)
    assert (len(proto.state), len(proto.dqn_train), len(proto.pool)) == (10, 100, 257)
    assert (len(proto.reward), len(proto.test)) == (101, 233)
    assert proto.grid.per_image == 24 and proto.grid.image_size == (180, 240)
    names = set(proto.state.names) | set(proto.dqn_train.names) | set(proto.pool.names)
    assert len(names) == 367  # disjoint and covering the whole train split
    assert proto.num_classes == 11 and proto.ignore_index == 11
    assert int(proto.pool.masks.max()) <= 11
