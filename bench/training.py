"""Training speed of the zoo recipes per numeric precision, memory layout and batch source.

    python -m bench.training [--steps 20] [--threads 1] [--arch dcgan ...] [--device cpu]

Each zoo config (``generators/training/configs``) trains through the real trainer on a small
freshly rendered world, once per variant: float32 and bfloat16, each NCHW and channels-last.
A run does ``--steps`` steps (warm-up: oneDNN kernel selection, first allocations), then is
resumed to 2x and to 4x that; every session ends with a sample grid and a checkpoint, so the
difference of the last two sessions' times is the cost of ``--steps`` plain training steps.
Printed as ms/step and as the speed-up over float32 of the same architecture, all measured
in one run. The last variant draws fresh world renders every batch (``"fresh_renders"``)
instead of indexing the decoded images, in float32 channels-last: what rendering costs.
One thread per run by default, like the retraining lanes of ``data/zoo/retrain.sh``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

# (precision, channels-last, fresh renders)
VARIANTS = (("float32", False, False), ("float32", True, False), ("bfloat16", False, False),
            ("bfloat16", True, False), ("float32", True, True))
ARCHS = ("dcgan", "stylegan2", "biggan", "ddpm")


def load_config(arch: str, steps: int):
    if arch == "ddpm":
        from generators.training.ddpm import load_ddpm_config

        config = load_ddpm_config()
    else:
        from generators.training.config import load_train_config

        config = load_train_config(arch)
    # Grids and checkpoints only at the end of each session (the loops always add one there).
    return replace(config, steps=steps, sample_every=10**9, checkpoint_every=10**9)


def train(arch: str, config, data: Path, out: Path, threads: int, device: str) -> dict:
    if arch == "ddpm":
        from generators.training.ddpm import train_ddpm as trainer
    else:
        from generators.training.loop import train_gan as trainer
    trainer(config, data, out, progress=False, threads=threads, device=device)
    return json.loads((out / "training.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps before, and again after, the resume")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from data.world.builder import WorldConfig, build_world

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        world = build_world(scratch / "world", WorldConfig(n=256, size=64, seed=7, test_fraction=0), progress=False)
        print(f"{'arch':<10} {'variant':<36} {'ms/step':>9} {'speed-up':>9}")
        for arch in args.arch:
            baseline = None
            for precision, channels_last, fresh in VARIANTS:
                config = replace(load_config(arch, args.steps), precision=precision, channels_last=channels_last,
                                 fresh_renders=fresh)
                out = scratch / f"{arch}-{precision}-{channels_last}-{fresh}"
                train(arch, config, world, out, args.threads, args.device)
                seconds = []
                for factor in (2, 4):
                    record = train(arch, replace(config, steps=factor * args.steps), world, out, args.threads,
                                   args.device)
                    seconds.append(factor // 2 * args.steps / record["steps_per_s"])
                ms = 1000 * (seconds[1] - seconds[0]) / args.steps
                baseline = baseline or ms
                variant = precision + (", channels-last" if channels_last else "") + (", fresh renders" if fresh else "")
                print(f"{arch:<10} {variant:<36} {ms:>9.0f} {baseline / ms:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
