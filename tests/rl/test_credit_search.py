import pytest
import torch

from ralis.rl.credit import RunningScale, vdn_loss, vdn_target
from ralis.rl.search import cem_population, cem_update


def test_vdn_target_known_answer():
    r = torch.tensor([1.0, -2.0, 30.0])
    nxt = torch.tensor([10.0, 0.0, 10.0])
    assert torch.equal(vdn_target(r, None, 0.9), r)
    assert torch.equal(vdn_target(r, nxt, 0.0), r)
    assert torch.allclose(vdn_target(r, nxt, 0.5), torch.tensor([6.0, -2.0, 35.0]))
    assert torch.allclose(vdn_target(r, nxt, 0.5, clip=5.0), torch.tensor([5.0, -2.0, 5.0]))


def test_vdn_loss_regresses_the_sum_of_the_picks():
    q = torch.tensor([[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]])
    y = torch.tensor([0.6, 2.0])  # first: exact; second: off by 1 -> Huber 0.5
    assert torch.allclose(vdn_loss(q, y), torch.tensor(0.25))
    mask = torch.tensor([[True, True, True], [True, True, False]])  # a short last step
    assert torch.allclose(vdn_loss(q, y, mask), torch.tensor(0.0))


def test_vdn_gradient_shares_the_error_equally_among_the_picks():
    q = torch.zeros(1, 4, requires_grad=True)
    vdn_loss(q, torch.tensor([0.4])).backward()
    assert torch.allclose(q.grad, torch.full((1, 4), -0.4))


def test_running_scale_is_the_sample_sd():
    s = RunningScale()
    assert s.scale(3.0) == 3.0  # nothing seen yet
    for v in (1.0, 2.0, 3.0, 4.0):
        s.update(v)
    assert s.sd == pytest.approx(torch.tensor([1.0, 2, 3, 4]).std().item())
    t = RunningScale()
    t.load_state_dict(s.state_dict())
    assert t.scale(2.0) == s.scale(2.0)


def test_cem_population_keeps_the_mean_first_and_is_seeded():
    mean, std = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5])
    a = cem_population(mean, std, 5, torch.Generator().manual_seed(3))
    b = cem_population(mean, std, 5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(a[0], mean) and a.shape == (5, 2)


def test_cem_update_moves_toward_the_elite():
    pop = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fit = torch.tensor([0.0, 1.0, 5.0, 4.0])
    mean, std = cem_update(pop, fit, torch.tensor([0.0]), torch.tensor([1.0]), elite=0.5,
                           smoothing=1.0)
    assert torch.allclose(mean, torch.tensor([2.5])) and torch.allclose(std, torch.tensor([0.5]))
    mean, std = cem_update(pop, fit, torch.tensor([0.0]), torch.tensor([1.0]), elite=0.25,
                           smoothing=0.5, min_std=0.1)
    assert torch.allclose(mean, torch.tensor([1.0])) and torch.allclose(std, torch.tensor(0.5).sqrt())
