import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

import ralis.game.head as head_module
from ralis.game.head_fit import fit_head, head_logits, head_loss, zero_head
from ralis.game.influence import (
    class_bias,
    conjugate_gradient,
    hessian_vector_product,
    influence_direction,
    loss_gradient,
    pixel_influence,
    unlabelled_influence,
)
from ralis.game.policies import FIXED_POLICIES


def _blobs(n=300, f=4, c=3, seed=0, spread=1.5):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(c, (n,), generator=g)
    centres = torch.randn(c, f, generator=g) * 1.5
    return centres[y] + spread * torch.randn(n, f, generator=g), y


def _weighted_ce(x, y, w, weight):
    return F.cross_entropy(head_logits(x, w), y, weight=weight)


def test_loss_gradient_matches_autograd_with_and_without_class_weights():
    x, y = _blobs()
    w = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    for weight in (None, torch.tensor([0.2, 1.0, 3.0])):
        ww = w.clone().requires_grad_(True)
        _weighted_ce(x, y, ww, weight).backward()
        assert torch.allclose(loss_gradient(x, y, w, weight), ww.grad, atol=1e-6)


def test_hessian_vector_product_matches_the_autograd_hessian_of_the_head_loss():
    x, y = _blobs(n=80)
    w = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    v = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    _, hv = torch.autograd.functional.hvp(lambda ww: head_loss(ww, x, y, 0.3), w, v)
    assert torch.allclose(hessian_vector_product(x, w, v, 0.3), hv, atol=1e-5)


def test_conjugate_gradient_solves_a_known_system():
    a = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    x_true = torch.tensor([1.0, -2.0, 0.5])
    sol = conjugate_gradient(lambda v: a @ v, a @ x_true, iterations=10)
    assert torch.allclose(sol, x_true, atol=1e-5)


def test_influence_predicts_the_exact_refit_change_of_the_reward_loss():
    """Known answer: adding a few pixels and refitting to convergence changes the reward
    split's loss by about -(1/P) x their summed influence (first order in 1/P)."""
    xa, ya = _blobs(n=760, seed=4)  # one distribution: fit set, reward split, candidates
    x, y, xr, yr = xa[:400], ya[:400], xa[400:700], ya[400:700]
    cand, ycand = xa[700:], ya[700:]
    l2, iters = 0.05, 300
    w = fit_head(x, y, zero_head(4, 3), l2, iters)
    base = float(_weighted_ce(xr, yr, w, None))
    v = influence_direction(x, w, l2, xr, yr, None, iterations=100, damping=0.0)
    predicted, exact = [], []
    for k in range(20):  # groups of 3 candidate pixels
        idx = torch.arange(3 * k, 3 * k + 3)
        predicted.append(float(pixel_influence(cand[idx], ycand[idx], w, v).sum()) / 400)
        w2 = fit_head(torch.cat([x, cand[idx]]), torch.cat([y, ycand[idx]]), w, l2, iters)
        exact.append(base - float(_weighted_ce(xr, yr, w2, None)))
    assert spearmanr(predicted, exact).statistic > 0.9
    pt, et = torch.tensor(predicted), torch.tensor(exact)
    assert float((pt * et).sum() / (pt * pt).sum()) == pytest.approx(1.0, abs=0.25)


def test_the_head_games_lookahead_ranks_candidates_as_exact_refits_do(make_game):
    game = make_game()
    game.reset(1)
    obs = game.observe()
    scores = obs.lookahead
    assert scores.shape == obs.pools.shape and torch.equal(scores, game.lookahead(
        obs.pools, game.head))  # deterministic
    base_ce = game.scores("reward")[1]
    exact = torch.zeros_like(scores)
    for k in range(obs.pools.shape[0]):
        for n, r in enumerate(obs.pools[k]):
            exact[k, n] = base_ce - game.scores("reward", game.fit(r.view(1)))[1]
    assert torch.equal(FIXED_POLICIES.get("lookahead")(obs, None), scores.argmax(1))
    agree = (scores.argmax(1) == exact.argmax(1)).float().mean()
    rho = spearmanr(scores.reshape(-1), exact.reshape(-1)).statistic
    assert rho > 0.6 and agree >= 0.5


def test_the_net_game_offers_no_lookahead(make_game):
    obs = make_game("net").observe()
    with pytest.raises(ValueError, match="agent.game=head"):
        FIXED_POLICIES.get("lookahead")(obs, None)


def test_unlabelled_influence_known_answers():
    x, y = _blobs(n=50, seed=6)
    w = torch.randn(5, 3, generator=torch.Generator().manual_seed(7))
    v = torch.randn(5, 3, generator=torch.Generator().manual_seed(8))
    p = torch.softmax(head_logits(x, w), dim=1)
    per_label = torch.stack([pixel_influence(x, torch.full_like(y, c), w, v) for c in range(3)],
                            dim=1)  # [P, C]: the drop if every pixel were class c
    assert torch.allclose((p * per_label).sum(1), torch.zeros(50), atol=1e-5)  # E_p = 0
    assert torch.allclose(unlabelled_influence(x, w, v, "pseudo"),
                          pixel_influence(x, p.argmax(1), w, v), atol=1e-6)
    assert torch.allclose(unlabelled_influence(x, w, v, "expected"),
                          (p * per_label.abs()).sum(1), atol=1e-6)
    shift = torch.tensor([0.5, -1.0, 0.3])  # calibrated: the expectation under q = p * e^shift
    q = torch.softmax(head_logits(x, w) + shift, dim=1)
    assert torch.allclose(unlabelled_influence(x, w, v, "calibrated", shift),
                          (q * per_label).sum(1), atol=1e-6)
    assert torch.allclose(unlabelled_influence(x, w, v, "calibrated", torch.zeros(3)),
                          torch.zeros(50), atol=1e-5)  # a calibrated head: q = p, nothing moves
    with pytest.raises(ValueError, match="needs the class bias"):
        unlabelled_influence(x, w, v, "calibrated")
    with pytest.raises(ValueError, match="valid: pseudo, expected, calibrated"):
        unlabelled_influence(x, w, v, "truth")


def test_class_bias_recovers_a_known_prior_shift():
    g = torch.Generator().manual_seed(11)
    logits = 2.0 * torch.randn(20000, 4, generator=g)
    true = torch.tensor([0.8, -0.4, 0.0, -1.2])
    y = torch.multinomial(torch.softmax(logits + true, dim=1), 1, generator=g).squeeze(1)
    b = class_bias(logits, y, ridge=1e-6)
    assert torch.allclose(b - b.mean(), true - true.mean(), atol=0.06)
    assert torch.allclose(class_bias(logits, torch.multinomial(torch.softmax(logits, 1), 1,
                                                               generator=g).squeeze(1)),
                          torch.zeros(4), atol=0.06)  # already calibrated: no shift


def test_label_free_lookaheads_never_read_the_candidates_labels(make_game):
    game = make_game()
    game.reset(1)
    obs = game.observe()
    before = {k: obs.lookahead_of(k) for k in ("pseudo", "expected", "calibrated", "truth")}
    g = torch.Generator().manual_seed(3)
    labels = game.pool_table.labels
    game.pool_table.labels = torch.randint(0, game.C, labels.shape, generator=g)
    after = {k: game.lookahead(obs.pools, game.head, k) for k in before}
    game.pool_table.labels = labels
    assert torch.equal(before["pseudo"], after["pseudo"])
    assert torch.equal(before["expected"], after["expected"])
    assert torch.equal(before["calibrated"], after["calibrated"])
    assert not torch.equal(before["truth"], after["truth"])
    for kind in ("pseudo", "expected", "calibrated"):
        name = f"lookahead-{kind}"
        assert torch.equal(FIXED_POLICIES.get(name)(obs, None), before[kind].argmax(1))


def test_the_calibrated_lookahead_reads_the_heads_standardised_reward_split(make_game,
                                                                           monkeypatch):
    game = make_game()
    game.reset(1)
    obs = game.observe()
    seen = {}

    def recording(logits, y):
        seen["logits"], seen["y"] = logits, y
        seen["bias"] = class_bias(logits, y)
        return seen["bias"]

    monkeypatch.setattr(head_module, "class_bias", recording)
    calibrated = obs.lookahead_of("calibrated")
    x_r, y_r = game._split("reward")
    assert torch.equal(seen["y"], y_r)
    assert torch.allclose(seen["logits"], head_logits(game.std(x_r), game.head))
    assert seen["bias"].abs().max() > 1e-3  # the start head is not calibrated on D_R
    assert calibrated.abs().max() > 1e-6
    monkeypatch.setattr(head_module, "class_bias", lambda logits, y: torch.zeros(game.C))
    assert torch.allclose(game.lookahead(obs.pools, game.head, "calibrated"),
                          torch.zeros_like(calibrated), atol=1e-5)  # q = p: nothing moves
