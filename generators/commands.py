"""``artbias generate``: unguided samples from any generator, as PNGs, a grid and a manifest.
``artbias train gan``: train one of the project's GANs (``generators.training``), resumably.
``artbias train ddpm``: train the project's small DDPM (``generators.training.ddpm``), resumably.
``artbias train snapshot``: a run's generator at its last checkpoint, to measure it part-way.
"""

from __future__ import annotations

import argparse


def register(commands) -> None:
    parser = commands.add("generate", _generate, "sample N images from a generator's latent prior")
    parser.add_argument("--generator", required=True, help="catalogue name (artbias models list) or FAMILY:PATH")
    parser.add_argument("--n", type=int, default=16, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent draw")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=16, help="images generated at once")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="loader option, e.g. space=basis or num_inference_steps=10 (JSON values; repeatable)",
    )


    train = commands.add(
        "train gan", _train_gan,
        "train a DCGAN, StyleGAN2 or BigGAN-deep on an image folder (rerun to resume or extend)",
    )
    train.add_argument("--arch", required=True, help="dcgan, stylegan2 or biggan")
    train.add_argument("--data", required=True, help="dataset root (a built world, Intel or ImageFolder)")
    train.add_argument("--out", required=True, help="the generator folder to make (trains in OUT.partial)")
    train.add_argument("--config", default=None, help="training config JSON (default: configs/ARCH-world.json)")
    train.add_argument("--size", type=int, default=None, help="image size, a power of two >= 32 (default 64)")
    _add_run_options(train)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (batches and latents are drawn on the CPU)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    ddpm = commands.add(
        "train ddpm", _train_ddpm,
        "train a small diffusers UNet2DModel (DDPM) on an image folder (rerun to resume or extend)",
    )
    ddpm.add_argument("--data", required=True, help="dataset root (a built world, Intel or ImageFolder)")
    ddpm.add_argument("--out", required=True, help="the model folder to make, diffusers layout (trains in OUT.partial)")
    ddpm.add_argument("--config", default=None, help="training config JSON (default: configs/ddpm-world.json)")
    ddpm.add_argument("--size", type=int, default=None, help="image size, a power of two (default 32)")
    ddpm.add_argument("--init-from", default=None, metavar="DIR",
                      help="start from this diffusers model's UNet weights (e.g. fine-tune a class-conditional "
                           "model from an unconditional one; default: the config's init_from)")
    _add_run_options(ddpm)
    ddpm.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    ddpm.add_argument("--quiet", action="store_true", help="no progress bar")


    snapshot = commands.add(
        "train snapshot", _train_snapshot,
        "save a training run's generator as it stands at its last checkpoint (to measure it part-way)",
    )
    snapshot.add_argument("--run", required=True, help="the training's --out (it trains in RUN.partial)")
    snapshot.add_argument("--out", required=True, help="the new generator folder, in the finished run's format")


def _add_run_options(parser) -> None:
    """The options both trainers share: the run's length, seed, batches and data source."""
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the config's)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the config's)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step (default: the config's)")
    parser.add_argument("--sample-every", type=int, default=None, help="steps between sample grids")
    parser.add_argument("--classes", default=None, help="train on these classes only, e.g. buildings,street")
    parser.add_argument(
        "--fresh-renders", action=argparse.BooleanOptionalAction, default=None,
        help="draw new renders of the data folder's world every batch (--no-fresh-renders: train on "
             "the folder's own images; default: the config's)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all available cores)")


def _train_gan(args: argparse.Namespace) -> int:
    from generators.training import load_train_config, train_gan

    threads = _threads(args)
    _check_training_args(args)
    config = load_train_config(
        args.arch, args.config, image_size=args.size, steps=args.steps, seed=args.seed,
        batch_size=args.batch_size, sample_every=args.sample_every, fresh_renders=args.fresh_renders,
    )
    out = train_gan(config, args.data, args.out, classes=args.classes, progress=not args.quiet,
                    threads=threads, config_path=args.config, device=args.device)
    print(out)
    return 0


def _train_ddpm(args: argparse.Namespace) -> int:
    from generators.training.ddpm import load_ddpm_config, train_ddpm

    threads = _threads(args)
    _check_training_args(args)
    config = load_ddpm_config(args.config, image_size=args.size, steps=args.steps, seed=args.seed,
                              batch_size=args.batch_size, sample_every=args.sample_every,
                              fresh_renders=args.fresh_renders, init_from=args.init_from)
    out = train_ddpm(config, args.data, args.out, classes=args.classes, progress=not args.quiet,
                     threads=threads, device=args.device, config_path=args.config)
    print(out)
    return 0


def _train_snapshot(args: argparse.Namespace) -> int:
    from data.files import check_can_create
    from generators.training.snapshot import snapshot_run

    check_can_create(args.out, "snapshot folder")
    print(snapshot_run(args.run, args.out))
    return 0


def _threads(args: argparse.Namespace) -> int:
    import os

    from data.errors import ConfigError

    threads = args.threads if args.threads is not None else len(os.sched_getaffinity(0))
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    return threads


def _check_training_args(args: argparse.Namespace) -> None:
    """What a training command can refuse before reading any data: seed, sizes, device, --out."""
    from data.files import check_can_create
    from data.validation import check_device, check_limit, check_seed

    if args.seed is not None:
        check_seed(args.seed)
    if args.size is not None:
        check_limit("image_side", args.size, "--size")
    if args.batch_size is not None:
        check_limit("batch_size", args.batch_size, "--batch-size")
    check_device(args.device)
    check_can_create(args.out, "output folder")


def _generate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from torchvision.utils import make_grid

    from data.errors import ConfigError
    from data.files import check_can_create, write_atomically
    from data.provenance import versions
    from data.validation import (
        check_count,
        check_device,
        check_finite_values,
        check_seed,
        finite_json,
    )
    from generators.registry import load_generator, parse_loader_options

    # Everything cheap first: a bad option is said before a model loads or a file is written.
    check_count(args.n, "--n", "images")
    check_count(args.batch_size, "--batch-size", "batch_size")
    check_seed(args.seed)
    check_device(args.device)
    options = check_finite_values(parse_loader_options(args.option), "--option")
    out = check_can_create(Path(args.out), "output folder")
    generator = load_generator(args.generator, device=args.device, **options)
    latents = generator.latent_space.seeded(args.n, args.seed)
    images = generator.generate(latents, batch_size=args.batch_size).float().cpu()
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output folder {out}: {error.strerror or error}") from None

    def write(name: str, save) -> None:
        try:
            write_atomically(out / name, save)
        except OSError as error:  # a full disk: what is written so far is whole, the rest is missing
            raise ConfigError(f"cannot write {out / name}: {error.strerror or error}") from None

    for index, image in enumerate(pixels):
        write(f"{index:05d}.png", lambda p, im=image: Image.fromarray(im.permute(1, 2, 0).numpy()).save(p, format="PNG"))
    grid = make_grid(pixels, nrow=max(1, int(args.n**0.5)), padding=2)
    write("grid.png", lambda p: Image.fromarray(grid.permute(1, 2, 0).numpy()).save(p, format="PNG"))
    write("latents.safetensors", lambda p: save_file({"latents": latents.contiguous()}, str(p)))
    manifest = {
        "generator": generator.identity(),
        "spec": args.generator,
        "latent_space": generator.latent_space.describe(),
        "n": args.n,
        "seed": args.seed,
        "versions": versions(),
    }
    write("manifest.json", lambda p: p.write_text(json.dumps(finite_json(manifest), indent=2, default=str, allow_nan=False) + "\n"))
    print(f"{args.n} images from {generator.name} -> {out} (grid.png, manifest.json)")
    return 0
