import pytest
import torch

from ralis.rl.qnet import QueryNetwork

DS, RS, DA = 24, 12, 40  # small: state dim, state regions, action dim (incl. 16 KL features)


def _inputs(B=3, N=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(B, N, DA, generator=gen), torch.rand(RS, DS, generator=gen)


def test_output_shape_and_shared_state_broadcast():
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    pool, state = _inputs()
    q = net(pool, state)
    assert q.shape == (3, 5)
    net.eval()
    q_shared = net(pool, state)
    q_batched = net(pool, state.unsqueeze(0).expand(3, RS, DS))
    assert torch.allclose(q_shared, q_batched, atol=1e-6)


def test_paper_size_parameter_count():
    net = QueryNetwork(212, 1280, 276)  # Cityscapes: about 0.53 M parameters
    n = sum(p.numel() for p in net.parameters())
    assert 520_000 < n < 540_000


def test_gate_closed_gives_zero_q():
    net = QueryNetwork(DS, RS, DA, kl_dim=16).eval()
    with torch.no_grad():
        net.gate[-1].bias.fill_(-100.0)
    pool, state = _inputs()
    assert torch.allclose(net(pool, state), torch.zeros(3, 5), atol=1e-20)


def test_kl_dim_zero_has_no_gate_and_uses_all_features():
    net = QueryNetwork(DS, RS, DA, kl_dim=0).eval()
    assert net.gate is None
    assert net.action_path[0][0].num_features == DA
    pool, state = _inputs()
    q = net(pool, state)
    assert q.shape == (3, 5)
    fused = torch.cat(
        [
            net.embed_state(state[None]).expand(3, -1)[..., None].expand(-1, -1, 5),
            net.action_path(pool.transpose(1, 2)),
        ],
        dim=1,
    )
    assert torch.allclose(q, net.fusion(fused).squeeze(1))


def test_deterministic_with_seed_and_config_round_trip():
    torch.manual_seed(7)
    a = QueryNetwork(DS, RS, DA, kl_dim=16)
    torch.manual_seed(7)
    b = QueryNetwork.from_config(a.config())
    assert a.config() == {"state_dim": DS, "num_state_regions": RS, "action_dim": DA, "kl_dim": 16}
    pool, state = _inputs()
    assert torch.equal(a.eval()(pool, state), b.eval()(pool, state))


def test_shape_errors():
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    pool, state = _inputs()
    with pytest.raises(ValueError):
        net(pool[..., :-1], state)
    with pytest.raises(ValueError):
        net(pool, state[:-1])
    with pytest.raises(ValueError):
        QueryNetwork(DS, RS, 16, kl_dim=16)
