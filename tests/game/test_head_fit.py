import torch

from ralis.game.head_fit import Standardizer, fit_head, head_logits, head_loss, zero_head


def _blobs(n=300, f=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(c, (n,), generator=g)
    centres = torch.randn(c, f, generator=g) * 3
    return centres[y] + torch.randn(n, f, generator=g), y


def test_fit_separates_well_separated_classes():
    x, y = _blobs()
    w = fit_head(x, y, zero_head(5, 3), l2=1e-3, iterations=100)
    acc = (head_logits(x, w).argmax(1) == y).float().mean()
    assert acc > 0.97


def test_fit_is_deterministic_and_reaches_the_same_optimum_from_any_start():
    x, y = _blobs(seed=1)
    a = fit_head(x, y, zero_head(5, 3), l2=1e-2, iterations=200)
    b = fit_head(x, y, zero_head(5, 3), l2=1e-2, iterations=200)
    assert torch.equal(a, b)  # bit for bit
    other = torch.randn(6, 3, generator=torch.Generator().manual_seed(5))
    c = fit_head(x, y, other, l2=1e-2, iterations=200)
    assert torch.allclose(head_loss(a, x, y, 1e-2), head_loss(c, x, y, 1e-2), atol=1e-5)
    assert torch.allclose(a[:-1], c[:-1], atol=1e-2)  # strongly convex: one optimum


def test_l2_penalises_weights_but_not_the_bias():
    w = torch.zeros(3, 2)
    w[-1] = torch.tensor([5.0, -5.0])
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    plain = torch.nn.functional.cross_entropy(head_logits(x, w), y)
    assert torch.allclose(head_loss(w, x, y, 10.0), plain)
    w[0, 0] = 2.0
    assert torch.allclose(head_loss(w, x, y, 10.0), plain + 0.5 * 10.0 * 4.0)


def test_standardizer_known_answer():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    s = Standardizer.fit(x)
    assert torch.allclose(s(x), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))  # constant column -> 0
