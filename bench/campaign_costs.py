"""Per-image costs of a campaign's models, the figures ``artbias campaign check`` estimates from.

    python -m bench.campaign_costs                    # print the table (CPU)
    python -m bench.campaign_costs --write            # also write gallery/costs.json
    python -m bench.campaign_costs --device cuda --out my-gpu-costs.json
    artbias campaign check CONFIG --costs my-gpu-costs.json

Seconds per image for each step a campaign pays: a generator drawing an image, a CLIP scoring
it (preprocessing and image tower; the text features are computed once per prompt), a
classifier labelling it. Published models are built with random weights of their published
shape (the time is the same as with trained ones); starter-zoo models are loaded. Each figure
runs whole batches until ``--seconds`` have passed, after one warm-up batch.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from bench.generators import biggan, stylegan2

COSTS_PATH = Path(__file__).resolve().parents[1] / "gallery" / "costs.json"
# The one measured CPU -> GPU ratio this project has (README, "Benchmarks"): generate-and-score
# images/s of dcgan-world + clip-world at population 64, H100 17,000 against about 960 on 2
# cores, i.e. 480 per core. Small models leave a GPU mostly idle, so published-size models gain
# more: for them the factor over-estimates GPU time.
GPU_FACTOR = {"factor": round(17000 / (960 / 2), 1), "gpu": "NVIDIA H100",
              "source": "README Benchmarks: dcgan-world + clip-world at population 64, 17,000 images/s on one "
                        "H100 against about 960 on 2 CPU cores (480 per core); a tiny model leaves the GPU "
                        "mostly idle, so for published-size models this over-estimates GPU time"}


def per_image(step: Callable[[int], None], batch: int, seconds: float, device: str) -> float:
    """Seconds per image of ``step(batch)``: whole batches until ``seconds`` have passed."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        step(batch)
        sync()
        made, start = 0, time.perf_counter()
        while True:
            step(batch)
            sync()
            made += batch
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return elapsed / made


def generator_step(build, scratch: Path, device: str):
    generator = build(scratch, device)
    latents = generator.latent_space.sample(64, torch.Generator().manual_seed(0))
    return lambda batch: generator.generate(latents[:batch], batch_size=batch)


def zoo_generator(name: str):
    def build(scratch: Path, device: str):
        from generators.registry import load_generator

        return load_generator(name, device=device)

    return build


def clip_step(name: str, device: str, image_size: int):
    from search.clip import _from_open_clip, load_clip
    from search.scorer import ClipScorer

    if name == "clip-vit-b-32-openai":  # the published shape, random weights
        from data.weights.catalog import get_entry

        clip = _from_open_clip(name, "ViT-B-32", None, device, preprocessing=get_entry(name).preprocessing)
    else:
        clip = load_clip(name, device=device)
    scorer = ClipScorer(clip)
    images = torch.rand(64, 3, image_size, image_size, device=device) * 2 - 1
    scorer.similarity(images[:1], "a beautiful landscape")  # the prompt's features, once
    return lambda batch: scorer.similarity(images[:batch], "a beautiful landscape")


def classifier_step(arch_or_name: str, device: str, image_size: int):
    from classifier.architectures import build_network, get_arch_config
    from classifier.model import SceneClassifier, load_classifier
    from data.world import CLASSES

    if arch_or_name.endswith("-world"):
        classifier = load_classifier(arch_or_name, device=device)
    else:
        from data.weights.catalog import get_entry

        arch = get_arch_config(arch_or_name)  # its preprocessing travels with the backbone's weights
        preprocessing = arch.preprocessing or get_entry(f"{arch_or_name}-imagenet1k-v2").preprocessing
        classifier = SceneClassifier(build_network(arch, len(CLASSES)), arch, CLASSES, dict(preprocessing))
        classifier.network.to(device).eval()
    images = torch.rand(64, 3, image_size, image_size) * 2 - 1
    return lambda batch: classifier.predict(images[:batch])


def cases(device: str) -> list[tuple[str, bool, Callable[[Path], Callable[[int], None]]]]:
    """(cost key, published size?, make the step) for every figure."""
    return [
        ("generator:dcgan-world", False, lambda s: generator_step(zoo_generator("dcgan-world"), s, device)),
        ("generator:stylegan2-world", False, lambda s: generator_step(zoo_generator("stylegan2-world"), s, device)),
        ("generator:biggan-world", False, lambda s: generator_step(zoo_generator("biggan-world"), s, device)),
        ("generator:ddpm-world", False, lambda s: generator_step(zoo_generator("ddpm-world"), s, device)),
        ("generator:biggan-deep-256", True, lambda s: generator_step(biggan("biggan-deep-256"), s, device)),
        ("generator:stylegan2-church", True,
         lambda s: generator_step(stylegan2(256, 512, 32768, 512), s, device)),
        ("clip:clip-world", False, lambda s: clip_step("clip-world", device, 64)),
        ("clip:clip-vit-b-32-openai", True, lambda s: clip_step("clip-vit-b-32-openai", device, 256)),
        ("classifier:resnet-small", False, lambda s: classifier_step("classifier-world", device, 64)),
        ("classifier:resnet50", True, lambda s: classifier_step("resnet50", device, 256)),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: what each campaign job runs on, so CPU figures are per core)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch, starter-zoo models")
    parser.add_argument("--big-batch-size", type=int, default=2, help="images per batch, published-size models")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per figure (after one warm-up batch)")
    parser.add_argument("--only", default=None, help="comma-separated cost keys to measure (default: all)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--write", action="store_true",
                        help="also write them to gallery/costs.json (the figures campaign check uses)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    figures: dict[str, float] = {}
    for key, big, make in cases(args.device):
        if args.only and key not in args.only.split(","):
            continue
        batch = args.big_batch_size if big else args.batch_size
        with tempfile.TemporaryDirectory() as scratch:
            step = make(Path(scratch) / "model")
            figures[key] = seconds = per_image(step, batch, args.seconds, args.device)
        print(f"{key:34} batch {batch:3d}  {seconds * 1000:10.2f} ms/image  {1 / seconds:10.1f} images/s")
        step = None
    document = {
        "measured": f"python -m bench.campaign_costs on {date.today().isoformat()}: {platform.node() or '?'}, "
                    f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch "
                    f"{args.batch_size} ({args.big_batch_size} for published sizes)",
        "device": "cuda" if args.device.startswith("cuda") else "cpu",
        "threads": torch.get_num_threads(),
        "seconds_per_image": {key: round(value, 6) for key, value in figures.items()},
    }
    if document["device"] == "cpu":
        document["gpu"] = GPU_FACTOR
    for path in [args.out] if args.out else []:
        Path(path).write_text(json.dumps(document, indent=2) + "\n")
    if args.write:
        COSTS_PATH.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
