import math

import pytest
import torch

from ralis.rl.imitation import dagger_beta, imitation_loss, mix_picks
from ralis.rl.scorers import EntropyResidual


def test_dagger_beta_known_answer():
    assert [dagger_beta(i, 0.5) for i in (1, 2, 3, 4)] == [1.0, 0.5, 0.25, 0.125]
    assert [dagger_beta(i, 0.0) for i in (1, 2)] == [1.0, 0.0]
    with pytest.raises(ValueError):
        dagger_beta(0, 0.5)


def test_mix_picks_takes_the_expert_with_probability_beta():
    learner, expert = torch.zeros(10_000, dtype=torch.long), torch.ones(10_000, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mix_picks(learner, expert, 1.0, g), expert)
    assert torch.equal(mix_picks(learner, expert, 0.0, g), learner)
    share = mix_picks(learner, expert, 0.3, g).float().mean().item()
    assert share == pytest.approx(0.3, abs=0.02)
    a = mix_picks(learner, expert, 0.5, torch.Generator().manual_seed(7))
    b = mix_picks(learner, expert, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_imitation_loss_known_answer_and_gradient():
    # one step, two pools of three: uniform scores -> log 3; a pool sure of the expert -> ~0
    scores = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 50.0]]], requires_grad=True)
    expert = torch.tensor([[1, 2]])
    loss = imitation_loss(scores, expert)
    assert loss.item() == pytest.approx(math.log(3) / 2, abs=1e-6)
    loss.backward()
    # d/ds of the mean CE: (softmax - onehot) / pools; the expert's score is pushed up
    assert torch.allclose(scores.grad[0, 0], torch.tensor([1 / 3, -2 / 3, 1 / 3]) / 2)
    assert torch.allclose(scores.grad[0, 1], torch.zeros(3), atol=1e-6)


def test_imitation_loss_teaches_an_entropy_started_scorer_the_experts_rule():
    """An expert that picks the candidate with the largest first descriptor entry (not the
    most uncertain one): the scorer starts at entropy's agreement (chance) and learns it."""
    g = torch.Generator().manual_seed(0)
    B, K, N, C = 32, 4, 6, 3
    entropy = torch.rand(B, K, N, generator=g)
    desc = torch.rand(B, K, N, C + 4, generator=g)
    expert = desc[..., 0].argmax(-1)
    scorer = EntropyResidual(C, hidden=8)

    def agreement():
        with torch.no_grad():
            picks = torch.stack([scorer(entropy[b], desc[b]) for b in range(B)]).argmax(-1)
        return (picks == expert).float().mean().item()

    before = agreement()
    opt = torch.optim.Adam(scorer.parameters(), lr=0.03)
    for _ in range(150):
        loss = imitation_loss(torch.stack([scorer(entropy[b], desc[b]) for b in range(B)]),
                              expert)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before < 0.4 and agreement() > 0.9, (before, agreement())
