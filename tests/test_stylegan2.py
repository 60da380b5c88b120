"""StyleGAN2 networks against NVIDIA's reference outputs, the saved format and the adapter."""

from __future__ import annotations

import json

import conftest
import pytest
import torch
from safetensors.torch import load_file, save_file

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from generators.stylegan2 import (
    Discriminator,
    Generator,
    StyleGAN2Generator,
    load,
    load_network_pickle,
    load_stylegan2_dir,
    save_stylegan2,
)

FIXTURES = conftest.FIXTURES / "stylegan2"
FORMATS = ["tiny-network-snapshot.pkl", "tiny-tf-config-f.pkl"]


@pytest.fixture(scope="module")
def cases():
    meta = json.loads((FIXTURES / "tiny_cases.json").read_text())
    return meta, load_file(str(FIXTURES / "tiny_cases.safetensors"))


@pytest.fixture(scope="module", params=FORMATS)
def networks(request):
    return load_network_pickle(FIXTURES / request.param)


@pytest.fixture(scope="module")
def snapshot_networks():
    return load_network_pickle(FIXTURES / FORMATS[0])


def _tiny(c_dim: int = 0, resolution: int = 16, **synthesis) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    synthesis = {"channel_base": 128, "channel_max": 32} | synthesis
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs=synthesis).eval()
    D = Discriminator(c_dim=c_dim, img_resolution=resolution, img_channels=3, channel_base=128,
                      channel_max=32, mapping_kwargs={"num_layers": 2}).eval()
    return {"G_ema": G, "D": D}


# -- reference parity ---------------------------------------------------------------------


@pytest.mark.parametrize("fused", [None, True])
def test_mapping_synthesis_and_d_reproduce_reference(networks, cases, fused):
    meta, ref = cases
    tol = meta["tolerance_abs"]
    G, D = networks["G_ema"], networks["D"]
    with torch.no_grad():
        for case in meta["cases"]:
            ws = G.mapping(ref["z"], None, truncation_psi=case["truncation_psi"])
            torch.testing.assert_close(ws, ref[case["ws"]], atol=tol, rtol=0)
            img = G.synthesis(ws, noise_mode=case["noise_mode"], fused_modconv=fused)
            torch.testing.assert_close(img, ref[case["image"]], atol=tol, rtol=0)
            logits = D(ref[case["image"]], None)
            torch.testing.assert_close(logits, ref[f"D_logits_on_G_ema_psi_{case['truncation_psi']}"], atol=tol, rtol=0)


def test_non_ema_generator_reproduces_reference_and_differs_from_ema(networks, cases):
    meta, ref = cases
    with torch.no_grad():
        img = networks["G"](ref["z"], None, truncation_psi=1.0, noise_mode="const")
        ema = networks["G_ema"](ref["z"], None, truncation_psi=1.0, noise_mode="const")
    torch.testing.assert_close(img, ref["image_G_not_ema_psi_1.0"], atol=meta["tolerance_abs"], rtol=0)
    assert (img - ema).abs().max() > 1e-2


def test_every_reference_tensor_name_and_shape_is_present(networks):
    layout = json.loads((FIXTURES / "tiny_state_layout.json").read_text())
    for key in ("G_ema", "D"):
        ours = {name: list(t.shape) for name, t in networks[key].state_dict().items()}
        assert ours == layout[key]
    assert all(not net.training for net in networks.values())


def test_noise_modes(snapshot_networks, cases):
    _, ref = cases
    G = snapshot_networks["G_ema"]
    ws = G.mapping(ref["z"][:2], None)
    with torch.no_grad():
        const = [G.synthesis(ws, noise_mode="const") for _ in range(2)]
        random = [G.synthesis(ws, noise_mode="random") for _ in range(2)]
        none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const[0], const[1])
    assert not torch.allclose(random[0], random[1])
    assert not torch.allclose(none, const[0])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fresh")


def test_truncation_psi_and_cutoff(snapshot_networks, cases):
    _, ref = cases
    mapping = snapshot_networks["G_ema"].mapping
    with torch.no_grad():
        full = mapping(ref["z"], None)
        zero = mapping(ref["z"], None, truncation_psi=0.0)
        cut = mapping(ref["z"], None, truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(zero, mapping.w_avg.expand_as(zero))
    torch.testing.assert_close(cut[:, :3], mapping.w_avg.lerp(full[:, :3], 0.5))
    torch.testing.assert_close(cut[:, 3:], full[:, 3:])


# -- other shapes --------------------------------------------------------------------------


def test_conditional_network_builds_runs_and_uses_the_class():
    nets = _tiny(c_dim=3)
    G, D = nets["G_ema"], nets["D"]
    names = set(G.state_dict()) | {f"D.{n}" for n in D.state_dict()}
    assert {"mapping.embed.weight", "mapping.fc1.weight", "mapping.w_avg", "synthesis.b16.torgb.weight",
            "D.mapping.embed.weight", "D.b4.out.weight", "D.b16.fromrgb.weight"} <= names
    assert G.num_ws == 6 and D.b4.out.weight.shape[0] == D.b4.cmap_dim == 32
    z = torch.randn(4, 8)
    c0, c1 = torch.eye(3)[[0] * 4], torch.eye(3)[[1] * 4]
    with torch.no_grad():
        img0, img1 = G(z, c0), G(z, c1)
        logits = D(img0, c0)
    assert img0.shape == (4, 3, 16, 16) and not torch.allclose(img0, img1)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()


@pytest.mark.parametrize("resolution,architecture", [(64, "skip"), (16, "resnet"), (8, "orig")])
def test_other_resolutions_and_architectures_run(resolution, architecture):
    nets = _tiny(resolution=resolution, architecture=architecture)
    G, D = nets["G_ema"], nets["D"]
    expected_ws = 2 * (resolution.bit_length() - 1) - 2
    assert G.num_ws == expected_ws
    with torch.no_grad():
        img = G(torch.randn(2, 8))
        logits = D(img)
    assert img.shape == (2, 3, resolution, resolution) and torch.isfinite(img).all()
    assert logits.shape == (2, 1)


def test_stylegan3_style_flat_synthesis_kwargs_build_the_same_network():
    from generators.stylegan2.checkpoint import build_network

    flat = build_network("Generator", {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16,
                                       "img_channels": 3, "mapping_kwargs": {"num_layers": 2},
                                       "channel_base": 128, "channel_max": 32,
                                       "fused_modconv_default": "inference_only"})
    nested = _tiny()["G_ema"]
    assert flat.init_kwargs == nested.init_kwargs
    assert {k: v.shape for k, v in flat.state_dict().items()} == {k: v.shape for k, v in nested.state_dict().items()}


def test_discriminator_accepts_batches_not_divisible_by_group_size():
    D = _tiny()["D"]
    with torch.no_grad():
        assert D(torch.randn(5, 3, 16, 16)).shape == (5, 1)


# -- saved directory format -----------------------------------------------------------------


def test_save_and_load_directory_round_trip(tmp_path):
    nets = _tiny(c_dim=3)
    save_stylegan2(nets, tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} == {"config.json", "model.safetensors"}
    loaded = load_stylegan2_dir(tmp_path / "model")
    z, c = torch.randn(2, 8), torch.eye(3)[[2, 2]]
    with torch.no_grad():
        torch.testing.assert_close(loaded["G_ema"](z, c), nets["G_ema"](z, c), atol=0, rtol=0)
        img = nets["G_ema"](z, c)
        torch.testing.assert_close(loaded["D"](img, c), nets["D"](img, c), atol=0, rtol=0)


def test_fixture_networks_round_trip_through_directory(snapshot_networks, cases, tmp_path):
    meta, ref = cases
    save_stylegan2(snapshot_networks, tmp_path)
    G = load_stylegan2_dir(tmp_path)["G_ema"]
    with torch.no_grad():
        img = G(ref["z"], None, truncation_psi=0.7)
    torch.testing.assert_close(img, ref["image_psi_0.7_noise_const"], atol=meta["tolerance_abs"], rtol=0)


def test_wrong_shape_or_empty_weights_raise_checkpoint_error(tmp_path):
    save_stylegan2(_tiny(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["networks"]["G_ema"]["init_kwargs"]["synthesis_kwargs"]["channel_max"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_stylegan2_dir(tmp_path)

    save_stylegan2(_tiny(), tmp_path)
    tensors = {k: v for k, v in load_file(str(tmp_path / "model.safetensors")).items() if not k.startswith("D.")}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="D"):
        load_stylegan2_dir(tmp_path)


def test_unknown_constructor_argument_raises_checkpoint_error(tmp_path):
    save_stylegan2(_tiny(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["networks"]["G_ema"]["init_kwargs"]["mapping_kwargs"]["warp_factor"] = 9
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="warp_factor"):
        load_stylegan2_dir(tmp_path)


# -- protocol adapter -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter():
    return load(FIXTURES / FORMATS[0])


def test_same_latent_same_image_and_different_latents_differ(adapter):
    latents = adapter.latent_space.sample(8, torch.Generator().manual_seed(3))
    first, second = adapter.generate(latents), adapter.generate(latents.clone())
    assert torch.equal(first, second)
    assert first.shape == (8, 3, 32, 32) and first.min() >= -1 and first.max() <= 1
    assert (first[0] - first[1]).abs().mean() > 1e-3


def test_batch_of_one_equals_its_row_in_a_batch(adapter):
    latents = adapter.latent_space.sample(8, torch.Generator().manual_seed(4))
    batch = adapter.generate(latents, batch_size=8)
    single = adapter.generate(latents[5:6])
    torch.testing.assert_close(single[0], batch[5], atol=1e-5, rtol=0)
    torch.testing.assert_close(adapter.generate(latents, batch_size=3), batch, atol=1e-5, rtol=0)


def test_adapter_uses_g_ema_with_truncation(adapter, cases):
    meta, ref = cases
    images = adapter.generate(ref["z"])
    torch.testing.assert_close(images, ref["image_psi_0.7_noise_const"].clamp(-1, 1), atol=meta["tolerance_abs"], rtol=0)


def test_gradients_flow_to_latents(adapter):
    latents = adapter.latent_space.sample(2, torch.Generator().manual_seed(5)).requires_grad_(True)
    adapter.generate(latents, grad=True).square().mean().backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
    assert all(not p.requires_grad for m in adapter.modules().values() for p in m.parameters())
    with torch.no_grad():
        assert not adapter.generate(latents.detach()).requires_grad


@pytest.mark.parametrize("space,shape", [("w", (32,)), ("w+", (8, 32))])
def test_w_spaces(space, shape):
    gen = load(FIXTURES / FORMATS[1], space=space)
    block = gen.latent_space.blocks[0]
    assert block.shape == shape and gen.latent_space.n_var == torch.Size(shape).numel()
    assert (gen.w_std > 0).all() and gen.w_std.shape == (32,)
    torch.testing.assert_close(gen.w_centre, gen.G.mapping.w_avg)
    latents = gen.latent_space.sample(3, torch.Generator().manual_seed(6))
    images = gen.generate(latents)
    assert images.shape == (3, 3, 32, 32) and torch.equal(images, gen.generate(latents))
    assert not torch.allclose(images[0], images[1])
    zero = gen.generate(torch.zeros(1, gen.latent_space.n_var))  # u = 0 is w_avg
    with torch.no_grad():
        centre = gen.G.synthesis(gen.G.mapping.w_avg.expand(1, 8, 32)).clamp(-1, 1)
    torch.testing.assert_close(zero, centre, atol=1e-5, rtol=0)
    u = torch.randn(4, 32)
    torch.testing.assert_close(gen.from_w(gen.to_w(u)), u, atol=1e-5, rtol=1e-5)


def test_realism_uses_the_discriminator(adapter, cases):
    meta, ref = cases
    scores = adapter.realism(ref["image_psi_1.0_noise_const"])
    torch.testing.assert_close(scores, ref["D_logits_on_G_ema_psi_1.0"].reshape(-1), atol=meta["tolerance_abs"], rtol=0)
    no_d = StyleGAN2Generator({"G_ema": adapter.G}, name="no-d")
    assert adapter.has_realism and not no_d.has_realism


def test_conditional_adapter_fixes_the_class(tmp_path):
    save_stylegan2(_tiny(c_dim=3, resolution=16), tmp_path)
    gens = [load(tmp_path, class_index=i, space="z") for i in (0, 1)]
    latents = gens[0].latent_space.sample(2, torch.Generator().manual_seed(7))
    images = [g.generate(latents) for g in gens]
    assert images[0].shape == (2, 3, 16, 16) and not torch.allclose(images[0], images[1])
    assert gens[0].realism(images[0]).shape == (2,)
    assert gens[1].identity()["class_index"] == 1 and len(gens[1].identity()["weights"]["sha256"]) == 64
    with pytest.raises(ConfigError, match="class_index"):
        load(tmp_path, class_index=3)


def test_loader_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError):
        load(tmp_path / "missing.pkl")
    save_stylegan2(_tiny(), tmp_path)
    with pytest.raises(ConfigError, match="space"):
        load(tmp_path, space="y")
    with pytest.raises(ConfigError, match="class_index"):
        load(tmp_path, class_index=0)
    with pytest.raises(ConfigError):
        load(tmp_path, no_such_option=1)
