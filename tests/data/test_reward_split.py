"""The carved reward split (CamVid ``dr``) and the selection split keep their roles apart."""

import pytest

from ralis.config import apply_overrides, get_preset
from ralis.data.camvid import CamVid, default_root
from ralis.data.protocol import load_protocol
from ralis.errors import DataError

camvid = pytest.mark.skipif(not (default_root() / "train.txt").exists(),
                            reason="CamVid not available")


@camvid
@pytest.mark.camvid
def test_camvid_dr_is_carved_from_every_train_sequence_and_left_out_of_train_dr():
    train = set(CamVid("train").names)
    dr, rest = set(CamVid("dr").names), set(CamVid("train-dr").names)
    assert len(dr) == 52 and not (dr & rest) and dr | rest == train
    assert {n[:6] for n in dr} == {n[:6] for n in train} == {"0001TP", "0006R0", "0016E5"}
    test, val = set(CamVid("test").names), set(CamVid("val").names)
    assert not (dr & test) and not (dr & val)


@camvid
@pytest.mark.camvid
def test_camvid_cpu_v6_roles_never_share_an_image():
    proto = load_protocol(get_preset("camvid-cpu-v6").data, progress=False)
    roles = {"D_S": proto.state, "D_T": proto.dqn_train, "D_V": proto.pool,
             "D_R": proto.reward, "selection": proto.selection, "test": proto.test}
    names = {k: set(v.names) for k, v in roles.items()}
    for a in names:
        for b in names:
            assert a == b or not (names[a] & names[b]), (a, b)
    assert (len(proto.reward), len(proto.selection), len(proto.pool)) == (52, 101, 205)


def test_a_selection_split_that_is_also_d_r_is_refused():
    cfg = apply_overrides(get_preset("synthetic-tiny"), ["data.selection_split=val"])
    with pytest.raises(DataError, match="selection split .* and the reward split"):
        load_protocol(cfg.data, progress=False)
