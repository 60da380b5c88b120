"""Generator throughput: images per second for each family, tiny and published-size configs.

    python -m bench.generators [--device cuda] [--batch-size 8] [--seconds 3]

Random weights cost the same time as trained ones, so every model here is built with random
weights of the stated shape, saved to a temporary folder and loaded through the family's own
loader (the path real models take). Each measurement runs whole batches until ``--seconds``
have passed (at least one batch); big configs use ``--big-batch-size`` images. Families
whose package is unavailable print a row saying why.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from generators.protocol import Generator
from generators.registry import family_loader

Builder = Callable[[Path, str], Generator]  # (scratch folder, device) -> generator


# -- builders: random weights of a given shape, saved, then loaded by the family -------------
def dcgan(image_size: int, nz: int, width: int) -> Builder:
    def build(folder: Path, device: str) -> Generator:
        from generators.dcgan import DCGANConfig, build_dcgan, save_dcgan

        config = DCGANConfig(image_size=image_size, nz=nz, ngf=width, ndf=width)
        save_dcgan(*build_dcgan(config), config, folder)
        return family_loader("dcgan")(folder, device=device)

    return build


def stylegan2(resolution: int, z_dim: int, channel_base: int, channel_max: int) -> Builder:
    def build(folder: Path, device: str) -> Generator:
        from generators.stylegan2 import Discriminator, Generator, save_stylegan2

        synthesis = {"channel_base": channel_base, "channel_max": channel_max}
        g = Generator(z_dim, 0, z_dim, resolution, 3, synthesis_kwargs=synthesis)
        d = Discriminator(0, resolution, 3, channel_base=channel_base, channel_max=channel_max)
        save_stylegan2({"G_ema": g, "D": d}, folder)
        return family_loader("stylegan2")(folder, device=device)

    return build


def biggan(config: dict | str) -> Builder:
    def build(folder: Path, device: str) -> Generator:
        from generators.biggan import BigGANConfig, BigGANDeep, published_config, save_biggan

        architecture = published_config(config) if isinstance(config, str) else BigGANConfig.from_dict(config)
        save_biggan(BigGANDeep(architecture), folder)
        return family_loader("biggan")(folder, device=device)

    return build


def diffusion(unet_config: dict, steps: int) -> Builder:
    def build(folder: Path, device: str) -> Generator:
        from diffusers import DDPMScheduler, UNet2DModel

        UNet2DModel(**unet_config).save_pretrained(folder / "unet")
        DDPMScheduler().save_pretrained(folder / "scheduler")
        return family_loader("diffusion")(folder, device=device, num_inference_steps=steps)

    return build


TINY_BIGGAN = {  # the starter-zoo scale: 64x64, six scene classes
    "output_dim": 64, "z_dim": 32, "class_embed_dim": 32, "channel_width": 16, "num_classes": 6,
    "layers": [[False, 8, 8], [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1],
               [False, 1, 1], [True, 1, 1]],
    "attention_layer_position": 6, "eps": 1e-4, "n_stats": 51,
}
TINY_UNET = {
    "sample_size": 32, "block_out_channels": (32, 64), "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "DownBlock2D"), "up_block_types": ("UpBlock2D", "UpBlock2D"),
    "norm_num_groups": 8,
}
CHURCH_UNET = {  # the shape of google/ddpm-ema-church-256's UNet2DModel
    "sample_size": 256, "block_out_channels": (128, 128, 256, 256, 512, 512), "layers_per_block": 2,
    "down_block_types": ("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    "norm_eps": 1e-6, "freq_shift": 1, "flip_sin_to_cos": False, "downsample_padding": 0,
}


def cases(steps: int) -> list[tuple[str, str, bool, Builder]]:
    """(family, config label, big?, builder) for every row of the table."""
    return [
        ("dcgan", "64px nz64 w32 (zoo)", False, dcgan(64, 64, 32)),
        ("dcgan", "64px nz100 w64 (paper)", False, dcgan(64, 100, 64)),
        ("stylegan2", "64px z128 ch256 (zoo)", False, stylegan2(64, 128, 8192, 256)),
        ("stylegan2", "256px config-f (church)", True, stylegan2(256, 512, 32768, 512)),
        ("biggan", "64px 6 classes (zoo)", False, biggan(TINY_BIGGAN)),
        ("biggan", "biggan-deep-256", True, biggan("biggan-deep-256")),
        ("diffusion", f"32px tiny UNet, {steps} DDIM steps", False, diffusion(TINY_UNET, steps)),
        ("diffusion", f"256px church UNet, {steps} DDIM steps", True, diffusion(CHURCH_UNET, steps)),
    ]


def images_per_second(gen: Generator, batch: int, seconds: float, device: str) -> tuple[float, int]:
    """Whole batches until ``seconds`` have passed; returns (images/s, images made)."""
    latents = gen.latent_space.sample(batch, torch.Generator().manual_seed(0))
    gen.generate(latents, batch_size=batch)  # the first call of a shape pays for kernel selection
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    made, start = 0, time.perf_counter()
    while True:
        gen.generate(latents, batch_size=batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        made += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return made / elapsed, made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch for small configs")
    parser.add_argument("--big-batch-size", type=int, default=2, help="images per batch for published-size configs")
    parser.add_argument("--seconds", type=float, default=3.0, help="time cap per measurement (at least one batch)")
    parser.add_argument("--diffusion-steps", type=int, default=20)
    parser.add_argument("--families", default="dcgan,stylegan2,biggan,diffusion")
    parser.add_argument("--only-small", action="store_true", help="skip the published-size configs")
    parser.add_argument("--verbose", "-v", action="store_true", help="print tracebacks of unavailable rows")
    args = parser.parse_args(argv)
    wanted = set(args.families.split(","))
    torch.manual_seed(0)

    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, cap {args.seconds}s")
    print(f"{'family':10} {'config':36} {'batch':>5} {'images':>6} {'images/s':>10}")
    for family, label, big, build in cases(args.diffusion_steps):
        if family not in wanted or (big and args.only_small):
            continue
        batch = args.big_batch_size if big else args.batch_size
        try:
            with tempfile.TemporaryDirectory() as scratch:
                gen = build(Path(scratch) / "model", args.device)
                rate, made = images_per_second(gen, batch, args.seconds, args.device)
            print(f"{family:10} {label:36} {batch:5d} {made:6d} {rate:10.3g}")
        except Exception as error:  # a family still being written must not stop the table
            reason = f"{type(error).__name__}: {str(error).strip()}".splitlines()[0][:120]
            print(f"{family:10} {label:36} unavailable: {reason}")
            if args.verbose:
                traceback.print_exc()
        finally:
            gen = None
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
