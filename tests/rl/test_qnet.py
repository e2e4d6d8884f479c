import copy
import math

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


# --- pools of different sizes: zero-padded batches with a candidate mask -----------------------

SIZES = (5, 2, 4)


def _padded(sizes=SIZES, seed=1, fill=0.0):
    """Pools of ``sizes`` candidates padded to the largest with ``fill``; per-pool states."""
    gen = torch.Generator().manual_seed(seed)
    n = max(sizes)
    mask = torch.arange(n) < torch.tensor(sizes).unsqueeze(1)
    pool = torch.rand(len(sizes), n, DA, generator=gen)
    pool[~mask] = fill
    states = torch.rand(len(sizes), RS, DS, generator=gen)
    return pool, states, mask


def _packed_by_hand(net, pool, states, mask):
    """The reference: the valid candidates of all pools as one unpadded sequence ``[1, *, C]``,
    each with its own pool's state embedding, through the network's layers."""
    emb = net.embed_state(states)  # [B, 128]
    owner = torch.cat([torch.full((int(n),), i) for i, n in enumerate(mask.sum(1))])
    cand = torch.cat([pool[i, : int(n)] for i, n in enumerate(mask.sum(1))])  # [C, Da]
    x = cand.t().unsqueeze(0)
    n_act = DA - net.kl_dim
    act = net.action_path(x[:, :n_act])
    score = net.fusion(torch.cat([emb[owner].t().unsqueeze(0), act], dim=1)).squeeze(1)
    return (torch.sigmoid(net.gate(x[:, n_act:])).squeeze(1) * score).squeeze(0)  # [C]


def _bn_buffers(net):
    return [b for name, b in net.named_buffers() if "running" in name]


def test_padded_batch_in_train_mode_equals_the_packed_valid_candidates():
    """BatchNorm (train mode) normalises over exactly the valid candidates: the padded batch's
    Q-values, and the running statistics it leaves, are those of the hand-packed sequence. NaN
    padding proves the padded features are never read."""
    torch.manual_seed(0)
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    ref = copy.deepcopy(net)
    pool, states, mask = _padded(fill=float("nan"))
    q = net(pool, states, mask)
    assert q.shape == mask.shape
    assert torch.all(q[~mask] == -math.inf)
    assert torch.equal(q[mask], _packed_by_hand(ref, pool, states, mask))
    for a, b in zip(_bn_buffers(net), _bn_buffers(ref), strict=True):
        assert torch.equal(a, b)


def test_padding_is_exact_where_naive_zero_padding_is_not():
    """Independent check, without rebuilding the network by hand: with a shared state, the same
    6 candidates split 3 + 3 (no padding) or 4 + 2 (padded to 4) get the same Q-values in train
    mode, since BatchNorm sees the same candidates and state embeddings; scoring the zero
    padding as candidates would change them."""
    torch.manual_seed(0)
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    gen = torch.Generator().manual_seed(3)
    cand, state = torch.rand(6, DA, generator=gen), torch.rand(RS, DS, generator=gen)
    q_plain = net(cand.view(2, 3, DA), state).flatten()
    pool = torch.zeros(2, 4, DA)
    pool[0], pool[1, :2] = cand[:4], cand[4:]
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    q_padded = net(pool, state, mask)
    assert torch.allclose(q_padded[mask], q_plain, rtol=0, atol=1e-5)
    q_naive = net(pool, state)[mask]  # zeros counted as candidates by BatchNorm
    assert not torch.allclose(q_naive, q_plain, rtol=0, atol=1e-3)


def _old_forward(net, pool, state):
    """The network's computation before masks existed (shared or per-pool state)."""
    B = pool.shape[0]
    if state.dim() == 2:
        if net.training:
            emb = net.embed_state(state.unsqueeze(0).expand(B, *state.shape))
        else:
            emb = net.embed_state(state.unsqueeze(0)).expand(B, -1)
    else:
        emb = net.embed_state(state)
    x = pool.transpose(1, 2)
    n_act = net.action_dim - net.kl_dim
    act = net.action_path(x[:, :n_act])
    fused = torch.cat([emb.unsqueeze(2).expand(-1, -1, act.shape[2]), act], dim=1)
    score = net.fusion(fused).squeeze(1)
    return torch.sigmoid(net.gate(x[:, n_act:])).squeeze(1) * score


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shared_state", [True, False])
def test_no_padding_is_bit_identical_to_the_unmasked_computation(training, shared_state):
    torch.manual_seed(0)
    net = QueryNetwork(DS, RS, DA, kl_dim=16).train(training)
    pool, states, _ = _padded(sizes=(4, 4, 4))
    state = states[0] if shared_state else states
    full = torch.ones(3, 4, dtype=torch.bool)
    old = _old_forward(net, pool, state)
    assert torch.equal(net(pool, state), old)
    assert torch.equal(net(pool, state, full), old)
    assert torch.equal(net(pool, state, None), old)


@pytest.mark.parametrize("shared_state", [True, False])
def test_padded_batch_in_eval_mode_equals_each_pool_alone(shared_state):
    torch.manual_seed(0)
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    net(*_inputs(B=4, N=6))  # move the running statistics away from their init
    net.eval()
    pool, states, mask = _padded(fill=1e6)
    q = net(pool, states[0] if shared_state else states, mask)
    for i, n in enumerate(SIZES):
        alone = net(pool[i : i + 1, :n], states[:1] if shared_state else states[i : i + 1])
        assert torch.allclose(q[i, :n], alone[0], rtol=0, atol=1e-6)
        assert torch.all(q[i, n:] == -math.inf)
    assert torch.equal(q.argmax(1), torch.stack([q[i, :n].argmax() for i, n in enumerate(SIZES)]))


def test_padded_batch_gradients_reach_only_valid_candidates():
    torch.manual_seed(0)
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    pool, states, mask = _padded()
    pool.requires_grad_(True)
    q = net(pool, states, mask)
    q[mask].sum().backward()
    assert torch.all(pool.grad[~mask] == 0) and pool.grad[mask].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_mask_validation_and_empty_mask():
    net = QueryNetwork(DS, RS, DA, kl_dim=16)
    pool, states, mask = _padded()
    with pytest.raises(ValueError, match="mask"):
        net(pool, states, mask.long())
    with pytest.raises(ValueError, match="mask"):
        net(pool, states, mask[:, :-1])
    q = net(pool, states, torch.zeros_like(mask))
    assert q.shape == mask.shape and torch.all(q == -math.inf)
