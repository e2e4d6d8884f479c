import torch

from ralis.rl.observe import FeatureSpec
from ralis.rl.scorers import EntropyResidual, descriptor, standardize


def _spec(c=3):
    return FeatureSpec(num_classes=c, regions_per_image=4, state_images=1, poolings=("mean",))


def test_descriptor_known_answer():
    spec = _spec()
    # one candidate: class counts 3,1,0 (+ void bin 0), 64 mean-pooled cells of 0.5
    actions = torch.cat([torch.tensor([3.0, 1.0, 0.0, 0.0]), torch.full((64,), 0.5)])
    labelled = torch.tensor([0.99, 0.01, 0.0])
    d = descriptor(actions.view(1, 1, -1), labelled, spec)[0, 0]
    rarity = 0.75 * -torch.log(torch.tensor(1.0)) + 0.25 * -torch.log(torch.tensor(0.02))
    assert torch.allclose(d, torch.tensor([0.75, 0.25, 0.0, 0.5, 0.5, 0.5, float(rarity)]),
                          atol=1e-6)


def test_a_new_entropy_residual_ranks_exactly_like_entropy():
    g = torch.Generator().manual_seed(0)
    entropy = torch.rand(6, 5, generator=g)
    desc = torch.randn(6, 5, 7, generator=g)
    for hidden in (0, 16):
        net = EntropyResidual(3, hidden)
        assert torch.equal(net(entropy, desc).argmax(1), entropy.argmax(1))
    w = torch.zeros(7)
    w[0] = 10.0  # a strong preference for class 0 changes the picks
    net = EntropyResidual(3, 0).set_weights(w)
    assert torch.equal(net(entropy, desc).argmax(1), (standardize(entropy) + 10 *
                                                      standardize(desc)[..., 0]).argmax(1))
