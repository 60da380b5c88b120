"""Latent spaces: flat search vectors <-> named network inputs, priors and bounds."""

import numpy as np
import pytest
import torch

from data.errors import ConfigError
from generators.latents import LatentBlock, LatentSpace


def space():
    return LatentSpace(
        (
            LatentBlock("z", (4,), prior="normal", scale=1.0, low=-2, high=2),
            LatentBlock("w", (2, 3), prior="normal", loc=0.5, scale=0.1, low=0, high=1),
            LatentBlock("truncation", (1,), prior="uniform", low=0.1, high=1.0),
        )
    )


def test_split_join_roundtrip_and_shapes():
    s = space()
    assert s.n_var == 4 + 6 + 1
    x = s.sample(5, torch.Generator().manual_seed(0))
    parts = s.split(x)
    assert parts["z"].shape == (5, 4)
    assert parts["w"].shape == (5, 2, 3)
    assert parts["truncation"].shape == (5, 1)
    assert torch.equal(s.join(parts), x)


def test_samples_respect_bounds_priors_and_seed():
    s = space()
    x = s.sample(4000, torch.Generator().manual_seed(1))
    low, high = s.bounds()
    assert np.all(x.numpy() >= low - 1e-6) and np.all(x.numpy() <= high + 1e-6)
    w = s.split(x)["w"]
    assert abs(w.mean().item() - 0.5) < 0.01 and abs(w.std().item() - 0.1) < 0.01
    again = s.sample(4000, torch.Generator().manual_seed(1))
    assert torch.equal(x, again)
    assert not torch.equal(x, s.sample(4000, torch.Generator().manual_seed(2)))


def test_spreads_follow_priors():
    spreads = space().spreads()
    assert np.allclose(spreads[:4], 1.0)
    assert np.allclose(spreads[4:10], 0.1)
    assert np.isclose(spreads[10], 0.9 / np.sqrt(12))


def test_split_keeps_gradients():
    s = space()
    x = s.sample(2).requires_grad_(True)
    s.split(x)["z"].sum().backward()
    assert x.grad[:, :4].eq(1).all() and x.grad[:, 4:].eq(0).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prior": "cauchy"},
        {"shape": (0,)},
        {"low": 1.0, "high": 1.0},
        {"scale": 0.0},
    ],
)
def test_bad_blocks_are_refused(kwargs):
    args = {"name": "z", "shape": (3,)} | kwargs
    with pytest.raises(ConfigError):
        LatentBlock(**args)


def test_bad_latent_shape_names_expected_width():
    with pytest.raises(ConfigError, match=r"\[batch, 11\]"):
        space().split(torch.zeros(2, 5))


def test_duplicate_block_names_refused():
    with pytest.raises(ConfigError):
        LatentSpace((LatentBlock("z", (2,)), LatentBlock("z", (3,))))


def test_truncated_normal_prior_is_exact():
    block = LatentBlock("z", (1000,), prior="truncnormal", low=-2.0, high=2.0)
    x = LatentSpace((block,)).sample(20, torch.Generator().manual_seed(0))
    assert x.abs().max() <= 2.0
    assert (x.abs() == 2.0).float().mean() < 1e-3  # truncated, not clipped onto the bounds
    assert abs(x.std().item() - block.spread) < 0.01 and block.spread < 1.0
    rng_draw = LatentSpace((block,)).sample_numpy(20, np.random.default_rng(0))
    assert np.abs(rng_draw).max() <= 2.0 and abs(rng_draw.std() - block.spread) < 0.01


def test_typical_set_puts_each_gaussian_block_on_its_radius_and_keeps_direction():
    s = space()
    x = s.sample_numpy(200, np.random.default_rng(0))
    x[:, :4] *= 1.7  # a search that drifted outward in z
    typical = s.to_typical_set(x)
    z, w, truncation = typical[:, :4], typical[:, 4:10], typical[:, 10]
    # z: on the radius sqrt(4) wherever the bounds [-2, 2] allow it, pointing the same way
    inside = np.all(np.abs(z) < 2, axis=1)
    assert inside.mean() > 0.5
    assert np.allclose(np.linalg.norm(z[inside], axis=1), 2.0)
    cosine = np.sum(z * x[:, :4], axis=1) / np.linalg.norm(z, axis=1) / np.linalg.norm(x[:, :4], axis=1)
    assert np.all(cosine[inside] > 1 - 1e-9)
    # w: radius about loc 0.5 in units of its scale 0.1, and bounds [0, 1] hold everywhere
    assert np.allclose(np.linalg.norm(w - 0.5, axis=1)[np.all((w > 0) & (w < 1), axis=1)], 0.1 * np.sqrt(6))
    low, high = s.bounds()
    assert np.all(typical >= low) and np.all(typical <= high)
    assert np.array_equal(truncation, x[:, 10])  # a uniform block has no typical set
    assert not np.shares_memory(typical, x)


def test_within_pulls_far_vectors_straight_to_the_radius_and_keeps_near_ones():
    s = space()
    rng = np.random.default_rng(0)
    anchor = s.sample_numpy(1, rng)[0]
    draws = s.sample_numpy(300, rng)
    squared = [s.distance(draws[i : i + 1], draws[i + 1])[0] ** 2 for i in range(0, 300, 2)]
    assert np.sqrt(np.mean(squared)) == pytest.approx(np.sqrt(2), rel=0.1)  # two prior draws
    kept = s.within(draws, anchor, 0.5)
    distance = s.distance(kept, anchor)
    assert np.all(distance <= 0.5 + 1e-9)
    moved = s.distance(draws, anchor) > 0.5
    assert moved.mean() > 0.9
    low, high = s.bounds()
    assert np.all(kept >= low) and np.all(kept <= high)
    # straight toward the anchor: the offset keeps its direction wherever no bound clipped it
    offset, original = (kept - anchor) / s.spreads(), (draws - anchor) / s.spreads()
    unclipped = moved & np.all((kept > low) & (kept < high), axis=1)
    assert unclipped.sum() > 10
    assert np.allclose(distance[unclipped], 0.5)
    cosine = np.sum(offset * original, axis=1) / np.linalg.norm(offset, axis=1) / np.linalg.norm(original, axis=1)
    assert np.all(cosine[unclipped] > 1 - 1e-9)
    near = anchor + 0.01 * s.spreads()
    assert np.array_equal(s.within(near[None], anchor, 0.5)[0], near)
    assert np.array_equal(s.within(anchor[None], anchor, 0.5)[0], anchor)  # the anchor itself has no direction


def test_within_leaves_conditioning_blocks_free():
    """A class input is the prompt's to choose: only the other blocks are held near the anchor."""
    s = LatentSpace((LatentBlock("z", (8,), low=-4, high=4),
                     LatentBlock("class_logits", (3,), low=-2, high=2, conditioning=True)))
    assert s.anchored().tolist() == [True] * 8 + [False] * 3
    rng = np.random.default_rng(1)
    anchor, draws = s.sample_numpy(1, rng)[0], s.sample_numpy(50, rng)
    kept = s.within(draws, anchor, 0.2)
    assert np.all(s.distance(kept, anchor) <= 0.2 + 1e-9)
    assert np.array_equal(kept[:, 8:], draws[:, 8:])
    moved_class = draws.copy()
    moved_class[:, 8:] = anchor[8:] + 1.5  # however far the class moves, z's distance is all that counts
    assert np.allclose(s.distance(moved_class, anchor), s.distance(draws, anchor))
    only_classes = LatentSpace((LatentBlock("c", (3,), conditioning=True),))
    assert np.array_equal(only_classes.distance(draws[:, 8:], anchor[8:]), np.zeros(50))


def test_typical_radius_is_where_prior_draws_lie():
    block = LatentBlock("z", (512,), prior="truncnormal", scale=1.0, low=-1.5, high=1.5)
    draws = LatentSpace((block,)).sample(2000, torch.Generator().manual_seed(0)).numpy()
    norms = np.linalg.norm(draws, axis=1)
    assert norms.mean() == pytest.approx(block.typical_radius, rel=0.01)
    assert block.typical_radius < np.sqrt(512)  # truncation pulls it in
    assert LatentBlock("t", (1,), prior="uniform", low=0, high=1).typical_radius is None
