"""What a generator of a given resolution can score at best: world renders drawn at that size.

Run by hand (never in CI):
    python -m bench.resolution_bound                 # 32 px (ddpm-world's), n = 1,000
    python -m bench.resolution_bound --sizes 16,32,64 --n 500

Fresh world renders (uniform classes) are drawn at 64 px and resized down to each size with
antialiasing, then measured exactly as `artbias eval generator` measures a generator's samples
(the classifiers resize their input back to 64 px): the class mix `classifier-world` reads
(TV to uniform), its agreement with `classifier-world-b` (Cohen's kappa) and the world
Fréchet distance (docs/fidelity.md). A model drawing at that size cannot be expected to do
better than the world itself drawn at that size.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from classifier.fidelity import world_frechet_distance, world_renders
from classifier.generator_eval import labeller_agreement
from classifier.labellers import load_labeller
from gallery.statistics import total_variation


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64", help="comma-separated image sizes (default: 32,64)")
    parser.add_argument("--n", type=int, default=1000, help="renders per size (default: 1000)")
    parser.add_argument("--seed", type=int, default=123, help="seed of the renders (default: 123)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    renders = world_renders(args.n, None, args.seed)
    labeller = load_labeller("classifier-world")
    print(f"world renders (uniform classes, n = {args.n}, seed {args.seed}) drawn at each size:")
    print(f"{'size':>5} {'TV':>6} {'kappa':>6} {'FD':>7} {'floor':>6}")
    for size in sizes:
        images = renders if size == renders.shape[-1] else F.interpolate(
            renders, size=size, mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            predicted = labeller.predict(images).argmax(1).numpy()
        shares = np.bincount(predicted, minlength=len(labeller.classes)) / len(predicted)
        tv = float(total_variation(shares, np.full(len(shares), 1 / len(shares))))
        kappa = labeller_agreement(predicted, list(labeller.classes), "classifier-world-b", images)["kappa"]
        fd = world_frechet_distance(images, None)
        print(f"{size:>5} {tv:6.3f} {kappa:6.3f} {fd.value:7.2f} {fd.floor:6.2f}")


if __name__ == "__main__":
    main()
