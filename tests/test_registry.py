"""load_generator: catalogue names and FAMILY:PATH specs, with clear errors for the rest."""

import pytest
import torch
from conftest import FIXTURES

from data.errors import ConfigError, WeightsNotFoundError
from data.weights import resolve
from generators.dcgan import DCGANConfig, DCGANGenerator, build_dcgan, save_dcgan
from generators.registry import FAMILY_MODULES, list_generators, load_generator


@pytest.fixture(autouse=True)
def isolated(isolated_weights):
    """Every test here sees an empty cache and zoo and no network (tests/conftest.py)."""


def _save_tiny_dcgan(folder):
    config = DCGANConfig(image_size=32, nz=8, ngf=4, ndf=4)
    torch.manual_seed(0)
    save_dcgan(*build_dcgan(config), config, folder)
    return folder


def test_dcgan_path_spec_loads_the_saved_model(tmp_path):
    folder = _save_tiny_dcgan(tmp_path / "my-dcgan")
    gen = load_generator(f"dcgan:{folder}")
    assert isinstance(gen, DCGANGenerator) and gen.name == "my-dcgan"
    z = gen.latent_space.sample(2, torch.Generator().manual_seed(0))
    assert gen.generate(z).shape == (2, 3, 32, 32)
    assert gen.has_realism


def test_a_catalogue_name_resolves_through_the_zoo(tmp_path):
    _save_tiny_dcgan(resolve.ZOO_DIR / "dcgan-world")
    gen = load_generator("dcgan-world")
    assert gen.name == "dcgan-world" and gen.family == "dcgan"


def test_unknown_names_and_families_suggest_the_right_ones(tmp_path):
    with pytest.raises(ConfigError, match="dcgan-world"):
        load_generator("dcgan-wrold")
    with pytest.raises(ConfigError, match="did you mean dcgan"):
        load_generator(f"dcgna:{tmp_path}")
    with pytest.raises(ConfigError, match="no path"):
        load_generator("dcgan:")
    with pytest.raises(ConfigError, match="not a generator"):
        load_generator("clip-vit-b-32-openai")


@pytest.mark.parametrize("name", ["stylegan2-church", "biggan-deep-256", "ddpm-ema-church-256", "stylegan2-world"])
def test_absent_models_offline_say_what_is_missing(name):
    with pytest.raises(WeightsNotFoundError, match=name):
        load_generator(name)


def test_every_catalogue_generator_has_a_family_loader():
    names = list_generators()
    assert {"biggan-deep-256", "stylegan2-church", "ddpm-ema-church-256", "dcgan-world"} <= set(names)
    from data.weights.catalog import get_entry

    assert all(get_entry(n).family in FAMILY_MODULES for n in names)


def test_generate_command_writes_images_grid_and_manifest(tmp_path):
    import json

    from PIL import Image

    from gallery.cli import main

    folder = _save_tiny_dcgan(tmp_path / "my-dcgan")
    for run in ("a", "b"):
        assert main(["generate", "--generator", f"dcgan:{folder}", "--n", "3", "--seed", "7", "--out", str(tmp_path / run)]) == 0
    out = tmp_path / "a"
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00002.png", "grid.png", "latents.safetensors", "manifest.json"]
    assert Image.open(out / "00001.png").size == (32, 32)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["generator"]["family"] == "dcgan"
    assert (out / "00002.png").read_bytes() == (tmp_path / "b" / "00002.png").read_bytes()
    assert main(["generate", "--generator", "dcgan-wrold", "--out", str(tmp_path / "c")]) == 2


def test_published_names_load_from_the_cache_through_their_family(tmp_path):
    """The real-use path offline: files placed in the cache under the catalogue's names."""
    import shutil

    from safetensors.torch import load_file

    from data.weights.catalog import get_entry

    church = get_entry("stylegan2-church")
    target = resolve.model_cache_dir(church) / church.files[0].name
    target.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "stylegan2" / "tiny-tf-config-f.pkl", target)  # NVIDIA's TF-era format
    gen = load_generator("stylegan2-church")
    assert gen.name == "stylegan2-church" and gen.image_size == 32

    folder = resolve.model_cache_dir(get_entry("biggan-deep-128"))
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "biggan" / "tiny_config.json", folder / "config.json")
    torch.save(load_file(FIXTURES / "biggan" / "tiny_weights.safetensors"), folder / "pytorch_model.bin")
    gen = load_generator("biggan-deep-128")
    assert gen.name == "biggan-deep-128"
    images = gen.generate(gen.latent_space.sample(2, torch.Generator().manual_seed(0)))
    assert images.shape == (2, 3, 32, 32)


def test_every_family_records_its_identity_the_same_way(tmp_path):
    """name, family (the registry's key), image_size and the weights file with its sha256."""
    import shutil

    from diffusers import UNet2DModel
    from safetensors.torch import load_file, save_file

    from data.saved_model import sha256_file

    biggan = tmp_path / "biggan"
    biggan.mkdir()
    shutil.copy(FIXTURES / "biggan" / "tiny_config.json", biggan / "config.json")
    save_file(load_file(FIXTURES / "biggan" / "tiny_weights.safetensors"), biggan / "model.safetensors")
    torch.manual_seed(0)
    UNet2DModel(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                ).save_pretrained(tmp_path / "ddpm" / "unet")
    pickle = FIXTURES / "stylegan2" / "tiny-tf-config-f.pkl"
    weights = {
        f"dcgan:{_save_tiny_dcgan(tmp_path / 'dcgan')}": tmp_path / "dcgan" / "model.safetensors",
        f"stylegan2:{pickle}": pickle,
        f"biggan:{biggan}": biggan / "model.safetensors",
        f"diffusion:{tmp_path / 'ddpm'}": tmp_path / "ddpm" / "unet" / "diffusion_pytorch_model.safetensors",
    }
    # Every family with weights; world-render has none and records None for both.
    assert {spec.partition(":")[0] for spec in weights} == set(FAMILY_MODULES) - {"world-render"}
    for spec, file in weights.items():
        generator = load_generator(spec, num_inference_steps=1) if spec.startswith("diffusion") else load_generator(spec)
        identity = generator.identity()
        assert list(identity)[:4] == ["name", "family", "image_size", "weights"], spec
        assert identity["family"] == spec.partition(":")[0] == generator.family
        assert identity["image_size"] == generator.image_size
        assert identity["weights"] == {"path": str(file), "sha256": sha256_file(file)}, spec
    renderer = load_generator("world-render").identity()
    assert list(renderer)[:4] == ["name", "family", "image_size", "weights"]
    assert renderer["family"] == "world-render" and renderer["weights"] == {"path": None, "sha256": None}
