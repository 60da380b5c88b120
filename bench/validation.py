"""The full validation: each starter CLIP on each generator, timed, with what it recovers.

Run by hand (never in CI; a few minutes per CLIP and generator on 2 cores):
    python -m bench.validation                                   # the three starter CLIPs
    python -m bench.validation --clips clip-world --generators world-render --objectives contrast,raw
    python -m bench.validation --out bench-validation --workers 2

For every (CLIP, objective) it runs ``artbias validate`` into OUT/<clip>-<objective> (resumable)
and prints, per generator, the injected top class, the measured one, the class Spearman and the
wall-clock time of the whole run, measured here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gallery.validation import ValidationSettings, run_validation

CLIPS = ("clip-world", "clip-world-night-sea", "clip-world-city")
GENERATORS = ("world-render", "dcgan-world", "biggan-world", "stylegan2-world")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--objectives", default="contrast")
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--anchor-radius", type=float, default=None, help="anchored searches (default: none)")
    parser.add_argument("--out", default="bench-validation")
    args = parser.parse_args()

    rows = []
    for clip in args.clips.split(","):
        for objective in args.objectives.split(","):
            settings = ValidationSettings(clip=clip, generators=tuple(args.generators.split(",")),
                                          seeds=args.seeds, replicates=args.replicates, objective=objective,
                                          anchor_radius=args.anchor_radius)
            started = time.perf_counter()
            document = run_validation(settings, Path(args.out) / f"{clip}-{objective}", workers=args.workers,
                                      progress=False)
            seconds = time.perf_counter() - started
            injected = document["injected_class_beauty"]
            for name, result in document["generators"].items():
                classes = result["classes"] or {}
                rows.append((clip, objective, name, max(injected, key=injected.get), classes.get("top_injected"),
                             classes.get("top_measured"), result["class_spearman"],
                             result["class_spearman_vs_neutral"], (classes.get("test") or {}).get("p_adjusted"),
                             seconds))
    print(f"{'clip':22} {'objective':9} {'generator':16} {'top injected (all)':18} {'top injected (reach)':20} "
          f"{'top measured':12} {'Spearman':>8} {'(neutral)':>9} {'adj. p':>8} {'run s':>7}")
    for clip, objective, name, top_all, top_reach, top_measured, rho, rho_neutral, p, seconds in rows:
        print(f"{clip:22} {objective:9} {name:16} {top_all:18} {str(top_reach):20} {str(top_measured):12} "
              f"{'-' if rho is None else f'{rho:.2f}':>8} {'-' if rho_neutral is None else f'{rho_neutral:.2f}':>9} "
              f"{'-' if p is None else f'{p:.2g}':>8} {seconds:7.0f}")


if __name__ == "__main__":
    main()
