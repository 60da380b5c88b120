"""StyleGAN2 family: NVIDIA's generator and discriminator in plain PyTorch.

Published network pickles (both NVIDIA formats) load through an allow-list unpickler that
never runs code from the file; the project's own models save as config.json + safetensors.
``load(path, **options)`` is the family loader the model registry calls.
"""

from generators.stylegan2.adapter import StyleGAN2Generator, load
from generators.stylegan2.checkpoint import load_network_pickle, load_stylegan2_dir, save_stylegan2
from generators.stylegan2.networks import Discriminator, Generator

__all__ = [
    "Discriminator",
    "Generator",
    "StyleGAN2Generator",
    "load",
    "load_network_pickle",
    "load_stylegan2_dir",
    "save_stylegan2",
]
