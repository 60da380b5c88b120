"""The shared Generator behaviour: batching, validation, gradients on request, realism."""

import pytest
import torch

from data.errors import ConfigError
from generators.latents import LatentBlock, LatentSpace
from generators.protocol import Generator, RealismUnavailable


class LinearFamily(Generator):
    """A toy family: a linear map from z to a 3x4x4 image, squashed into [-1, 1]."""

    name = "toy"
    family = "toy"
    image_size = 4
    latent_space = LatentSpace((LatentBlock("z", (5,)),))

    def __init__(self, with_discriminator=False):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(5, 3 * 4 * 4)
        self.disc = torch.nn.Linear(3 * 4 * 4, 1) if with_discriminator else None
        self.calls = 0
        self.to("cpu")

    def synthesize(self, parts):
        self.calls += 1
        return torch.tanh(self.net(parts["z"])).view(-1, 3, 4, 4)

    def modules(self):
        return {"net": self.net} | ({"discriminator": self.disc} if self.disc else {})


class WithDiscriminator(LinearFamily):
    def discriminate(self, images):
        return self.disc(images.flatten(1))


def test_generate_batches_and_matches_unbatched():
    gen = LinearFamily()
    z = gen.latent_space.sample(10, torch.Generator().manual_seed(3))
    whole = gen.generate(z, batch_size=64)
    gen.calls = 0
    chunked = gen.generate(z, batch_size=3)
    assert gen.calls == 4
    assert torch.allclose(whole, chunked, atol=1e-6)
    assert whole.min() >= -1 and whole.max() <= 1


def test_gradients_only_on_request():
    gen = LinearFamily()
    z = gen.latent_space.sample(2).requires_grad_(True)
    assert not gen.generate(z).requires_grad
    gen.generate(z, grad=True).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in gen.net.parameters())


def test_bad_inputs_are_refused():
    gen = LinearFamily()
    with pytest.raises(ConfigError):
        gen.generate(torch.zeros(2, 7))
    with pytest.raises(ConfigError):
        gen.generate(torch.zeros(2, 5), batch_size=0)


def test_realism_needs_a_discriminator():
    plain = LinearFamily()
    assert not plain.has_realism
    with pytest.raises(RealismUnavailable):
        plain.realism(torch.zeros(1, 3, 4, 4))
    judged = WithDiscriminator(with_discriminator=True)
    assert judged.has_realism
    scores = judged.realism(torch.zeros(5, 3, 4, 4), batch_size=2)
    assert scores.shape == (5,)


def test_identity_has_the_common_keys_then_the_family_settings():
    class Configured(LinearFamily):
        def settings(self):
            return {"depth": 2, "family": "not-toy"}  # a setting can never restate a common key

    gen = Configured()
    assert gen.identity() == {
        "name": "toy", "family": "toy", "image_size": 4, "weights": {"path": None, "sha256": None}, "depth": 2,
    }
    gen.weights = {"path": "toy.safetensors", "sha256": "0" * 64}
    assert gen.identity()["weights"] == {"path": "toy.safetensors", "sha256": "0" * 64}
