"""BigGAN-deep: published layout, reference outputs, checkpoints, statistics and the adapter."""

import json
from pathlib import Path

import conftest
import pytest
import torch
from safetensors.torch import load_file, save_file

from data.errors import CheckpointError, ConfigError
from generators.biggan import (
    BigGANDeep,
    BigGANGenerator,
    compute_truncation_statistics,
    load,
    load_biggan,
    published_config,
    published_configs,
    save_biggan,
    truncated_normal,
)
from generators.biggan.layers import ConditionalBatchNorm
from generators.protocol import RealismUnavailable

FIXTURES = conftest.FIXTURES / "biggan"
TRUNCATIONS = json.loads((FIXTURES / "tiny_cases.json").read_text())["truncations"]


# A small architecture unlike the published ones: 16x16, class_embed_dim != z_dim, 3 classes.
SMALL_CONFIG = {
    "output_dim": 16,
    "z_dim": 8,
    "class_embed_dim": 5,
    "channel_width": 4,
    "num_classes": 3,
    "layers": [[True, 4, 2], [False, 2, 2], [True, 2, 1]],
    "attention_layer_position": 1,
    "eps": 1e-4,
    "n_stats": 11,
}


def small_model(seed: int = 0) -> BigGANDeep:
    torch.manual_seed(seed)
    model = BigGANDeep(SMALL_CONFIG)
    with torch.no_grad():  # make attention and the stored statistics matter
        for module in model.modules():
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.5)
            if hasattr(module, "running_means"):
                module.running_means.normal_(0, 0.3)
                module.running_vars.uniform_(0.5, 2.0)
    return model.eval()


def small_inputs(batch: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    z = truncated_normal((batch, SMALL_CONFIG["z_dim"]), generator=generator)
    class_vector = torch.softmax(
        torch.randn(batch, SMALL_CONFIG["num_classes"], generator=generator), dim=1
    )
    return z, class_vector


# -- reference outputs and published layouts ----------------------------------------------


@pytest.mark.parametrize("truncation", TRUNCATIONS)
def test_tiny_fixture_reproduces_reference_images(truncation):
    """The reference implementation's images of the tiny model (see tests/fixtures/biggan/README.md)."""
    config = json.loads((FIXTURES / "tiny_config.json").read_text())
    tolerance = json.loads((FIXTURES / "tiny_cases.json").read_text())["tolerance_abs"]
    model = BigGANDeep(config).eval()
    model.load_state_dict(load_file(FIXTURES / "tiny_weights.safetensors"), strict=True)
    cases = load_file(FIXTURES / "tiny_cases.safetensors")
    reference = cases[f"image_truncation_{truncation}"]
    assert torch.isfinite(reference).all() and reference.abs().max() > 0.01  # a reference with teeth
    with torch.no_grad():
        image = model(cases["z"], cases["class_vector"], truncation)
    torch.testing.assert_close(image, reference, atol=tolerance, rtol=0)


def test_statistics_blend_follows_the_reference_order():
    """Between grid points the reference weighs row i by f and row i+1 by (1 - f)."""
    config = json.loads((FIXTURES / "tiny_config.json").read_text())
    model = BigGANDeep(config).eval()
    model.load_state_dict(load_file(FIXTURES / "tiny_weights.safetensors"))
    table = json.loads((FIXTURES / "tiny_cases.json").read_text())["modf_of_truncation_over_step"]
    norm = model.generator.layers[0].bn_0
    x = torch.zeros(2, norm.num_features, 4, 4)
    for truncation, (fraction, index) in table.items():
        index = int(index)
        expected = norm.running_means[index]
        if fraction:
            expected = norm.running_means[index] * fraction + norm.running_means[index + 1] * (
                1 - fraction
            )
        mean, _ = norm.statistics(x, float(truncation))
        torch.testing.assert_close(mean.flatten(), expected)
        per_sample, _ = norm.statistics(x, torch.full((2,), float(truncation), dtype=torch.float64))
        torch.testing.assert_close(per_sample[1].flatten(), expected)


@pytest.mark.parametrize("name", ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"])
def test_published_configs_give_the_published_state_dict_layout(name):
    published = json.loads((FIXTURES / "published_checkpoints.json").read_text())[name]
    assert published_config(name).to_dict() == published["config"]
    with torch.device("meta"):
        model = BigGANDeep(published["config"])
    layout = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert set(layout) == set(published["state_dict"])
    assert layout == published["state_dict"]


def test_shipped_configs_are_the_three_published_ones():
    assert published_configs() == ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"]
    with pytest.raises(ConfigError, match="unknown BigGAN architecture"):
        published_config("biggan-deep-64")


# -- other shapes, training ---------------------------------------------------------------


def test_other_architecture_runs_and_is_conditioned():
    model = small_model()
    z, class_vector = small_inputs(4)
    with torch.no_grad():
        images = model(z, class_vector, 0.5)
        other_class = model(z, torch.roll(class_vector, 1, dims=1), 0.5)
        per_sample = model(z, class_vector, torch.full((4,), 0.5))
    assert images.shape == (4, 3, 16, 16)
    assert torch.isfinite(images).all() and images.abs().max() <= 1
    assert not torch.allclose(images, other_class)
    torch.testing.assert_close(per_sample, images)


def test_bad_configs_and_inputs_are_rejected():
    with pytest.raises(ConfigError, match="output_dim"):
        BigGANDeep(SMALL_CONFIG | {"output_dim": 32})
    with pytest.raises(ConfigError, match="unknown keys"):
        BigGANDeep(SMALL_CONFIG | {"depth": 3})
    model = small_model()
    z, class_vector = small_inputs(2)
    with pytest.raises(ConfigError, match="truncation"):
        model(z, class_vector, 0.0)
    with pytest.raises(ConfigError, match="z must have shape"):
        model(z[:, :3], class_vector, 0.5)


def test_train_mode_uses_batch_statistics_and_learns():
    model = small_model().train()
    z, class_vector = small_inputs(8)
    u_before = model.generator.gen_z.weight_u.clone()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model(z, class_vector, 1.0)
    # Batch statistics: the stored per-truncation statistics play no part in training.
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "running_means"):
                module.running_means.add_(5.0)
    torch.testing.assert_close(model(z, class_vector, 1.0), first, atol=1e-5, rtol=0)
    loss = torch.relu(1.0 - first).mean()  # a hinge-style generator step
    loss.backward()
    assert model.generator.gen_z.weight_orig.grad is not None
    optimiser.step()
    assert not torch.equal(model.generator.gen_z.weight_u, u_before)  # power iteration ran
    with torch.no_grad():
        assert not torch.allclose(model(z, class_vector, 1.0), first)


def test_truncation_statistics_are_those_of_batches_drawn_at_each_truncation():
    model = small_model()
    base_z, class_vector = small_inputs(16, seed=3)

    def sampler(truncation, batch_size):  # one fixed batch per truncation
        return base_z[:batch_size] * truncation, class_vector[:batch_size]

    compute_truncation_statistics(model, batch_size=16, batches=1, sampler=sampler)
    norms = [m for m in model.modules() if isinstance(m, ConditionalBatchNorm)]
    assert all(n.running_means.shape == (11, n.num_features) for n in norms)
    assert all(torch.isfinite(n.running_vars).all() and (n.running_vars >= 0).all() for n in norms)
    deep = norms[-1]
    assert not torch.allclose(deep.running_means[2], deep.running_means[10])
    assert not torch.allclose(deep.running_vars[2], deep.running_vars[10])

    # In eval mode at a grid truncation, each layer's input now has exactly those statistics.
    seen = {}

    def remember_input(module, args, output):  # returns None: the output stays as it is
        seen[module] = args[0]

    hooks = [n.register_forward_hook(remember_input) for n in norms]
    truncation, row = 0.5, 5  # 0.5 / 0.1 is exactly 5 (0.6 / 0.1 is not 6 in floating point)
    with torch.no_grad():
        model(*sampler(truncation, 16), truncation)
    for hook in hooks:
        hook.remove()
    for norm in norms:
        x = seen[norm].double()
        torch.testing.assert_close(
            x.mean(dim=(0, 2, 3)), norm.running_means[row].double(), atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            x.var(dim=(0, 2, 3), unbiased=False),
            norm.running_vars[row].double(),
            atol=1e-4,
            rtol=1e-3,
        )


def test_default_statistics_sampler_runs_with_a_seed():
    model, again = small_model(), small_model()
    compute_truncation_statistics(
        model, batch_size=4, batches=1, generator=torch.Generator().manual_seed(0)
    )
    compute_truncation_statistics(
        again, batch_size=4, batches=1, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(model.generator.bn.running_vars, again.generator.bn.running_vars)
    assert not model.training


def test_truncated_normal_stays_in_bounds_and_is_seeded():
    x = truncated_normal((20000,), generator=torch.Generator().manual_seed(0))
    assert x.abs().max() <= 2.0
    assert 0.85 < x.std() < 0.9  # the std of a standard normal truncated at +-2 is 0.88
    assert torch.equal(x, truncated_normal((20000,), generator=torch.Generator().manual_seed(0)))


# -- checkpoints --------------------------------------------------------------------------


def test_save_and_load_roundtrip(tmp_path):
    model = small_model()
    save_biggan(model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = load_biggan(tmp_path / "ckpt")
    assert not loaded.training
    z, class_vector = small_inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(z, class_vector, 0.4), model(z, class_vector, 0.4), atol=1e-6, rtol=0
        )


def test_loads_published_style_pickle_and_bare_weights_with_config(tmp_path):
    model = small_model()
    (tmp_path / "pub").mkdir()
    torch.save(model.state_dict(), tmp_path / "pub" / "pytorch_model.bin")
    (tmp_path / "pub" / "config.json").write_text(json.dumps(SMALL_CONFIG))
    from_pickle = load_biggan(tmp_path / "pub")
    save_file(model.state_dict(), tmp_path / "bare.safetensors")
    from_bare = load_biggan(tmp_path / "bare.safetensors", config=SMALL_CONFIG)
    for loaded in (from_pickle, from_bare):
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def _write_state(tmp_path, state) -> Path:
    directory = tmp_path / "bad"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(SMALL_CONFIG))
    save_file(state, directory / "model.safetensors")
    return directory


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt", "corrupt or truncated"),
        ("truncated", "corrupt or truncated"),
        ("corrupt_pickle", "corrupt or truncated"),
        ("wrong_shape", r"wrong shape \[generator\.gen_z\.bias"),
        ("missing", r"missing keys \[generator\.bn\.bias"),
        ("extra", r"unexpected keys \[generator\.extra"),
        ("empty", "empty state dict"),
        ("nan", r"NaN/inf values in \[embeddings\.weight"),
    ],
)
def test_bad_checkpoints_raise_checkpoint_error(tmp_path, damage, message):
    state = {k: v.clone() for k, v in small_model().state_dict().items()}
    directory = _write_state(tmp_path, state)
    weights = directory / "model.safetensors"
    if damage == "corrupt":
        weights.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "corrupt_pickle":
        weights.unlink()
        (directory / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not a real zip" * 10)
    elif damage == "wrong_shape":
        state["generator.gen_z.bias"] = torch.zeros(7)
    elif damage == "missing":
        del state["generator.bn.bias"]
    elif damage == "extra":
        state["generator.extra"] = torch.zeros(1)
    elif damage == "empty":
        state = {}
    elif damage == "nan":
        state["embeddings.weight"][0, 0] = float("nan")
    if damage in ("wrong_shape", "missing", "extra", "empty", "nan"):
        _write_state(tmp_path, state)
    with pytest.raises(CheckpointError, match=message):
        load_biggan(directory)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_biggan(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no BigGAN weights"):
        load_biggan(tmp_path / "empty")
    save_file({"x": torch.zeros(1)}, tmp_path / "lonely.safetensors")
    with pytest.raises(CheckpointError, match="pass config="):
        load_biggan(tmp_path / "lonely.safetensors")


# -- the protocol adapter -----------------------------------------------------------------


@pytest.fixture
def adapter(tmp_path):
    save_biggan(small_model(), tmp_path / "small")
    return load(tmp_path / "small", truncation=0.5)


def test_adapter_is_deterministic_and_batch_independent(adapter):
    assert adapter.name == "small" and adapter.image_size == 16
    assert adapter.latent_space.n_var == 8 + 3
    latents = adapter.latent_space.sample(8, torch.Generator().manual_seed(0))
    images = adapter.generate(latents)
    assert images.shape == (8, 3, 16, 16)
    assert torch.equal(adapter.generate(latents), images)
    assert (images[0] - images[1]).abs().max() > 1e-3
    torch.testing.assert_close(adapter.generate(latents[3:4]), images[3:4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        adapter.generate(latents, batch_size=3), images, atol=1e-5, rtol=1e-5
    )
    assert adapter.family == "biggan" and len(adapter.identity()["weights"]["sha256"]) == 64


def test_adapter_gradients_reach_the_latents(adapter):
    latents = adapter.latent_space.sample(2, torch.Generator().manual_seed(1)).requires_grad_(True)
    adapter.generate(latents, grad=True).square().mean().backward()
    z_grad, logit_grad = latents.grad[:, :8], latents.grad[:, 8:]
    assert z_grad.abs().sum() > 0 and logit_grad.abs().sum() > 0
    assert not any(p.requires_grad for p in adapter.model.parameters())


def test_class_vectors_are_distributions_and_sharpen(adapter):
    logits = torch.tensor([[0.3, 0.1, -0.2], [1.0, 1.2, 0.9]])
    for mode, options in (
        ("softmax", {"temperature": 1.0}),
        ("topk", {"top_k": 2, "temperature": 1.0}),
    ):
        generator = BigGANGenerator(adapter.model, class_mode=mode, **options)
        vector = generator.class_vector(logits)
        torch.testing.assert_close(vector.sum(dim=1), torch.ones(2))
        assert (vector >= 0).all()
        assert (vector.max(dim=1).values < 0.9).all()  # soft at temperature 1
    sharp = BigGANGenerator(adapter.model, temperature=0.01).class_vector(logits)
    top1 = BigGANGenerator(adapter.model, class_mode="topk", top_k=1).class_vector(logits)
    for vector in (sharp, top1):
        assert (vector.max(dim=1).values > 0.99).all()
        assert torch.equal(vector.argmax(dim=1), logits.argmax(dim=1))
    two = BigGANGenerator(adapter.model, class_mode="topk", top_k=2).class_vector(logits)
    assert ((two > 0).sum(dim=1) == 2).all()


def test_searched_truncation_changes_the_image(adapter):
    generator = BigGANGenerator(adapter.model, search_truncation=True)
    assert generator.latent_space.block("truncation").prior == "uniform"
    latents = generator.latent_space.sample(2, torch.Generator().manual_seed(2))
    latents[:, -1] = torch.tensor([0.3, 0.9])
    pair = latents[:1].repeat(2, 1)
    pair[:, -1] = torch.tensor([0.3, 0.9])
    images = generator.generate(pair)
    assert (images[0] - images[1]).abs().max() > 1e-3
    torch.testing.assert_close(generator.generate(pair[1:]), images[1:], atol=1e-5, rtol=1e-5)


def test_adapter_options_and_optional_discriminator(adapter, tmp_path):
    assert not adapter.has_realism
    with pytest.raises(RealismUnavailable):
        adapter.realism(torch.zeros(1, 3, 16, 16))
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1))
    judged = BigGANGenerator(adapter.model, discriminator=critic)
    assert judged.has_realism and judged.realism(torch.zeros(5, 3, 16, 16)).shape == (5,)
    with pytest.raises(ConfigError, match="class_mode"):
        BigGANGenerator(adapter.model, class_mode="bits")
    with pytest.raises(ConfigError, match="unknown BigGAN options"):
        load(tmp_path / "small", trunc=0.3)
