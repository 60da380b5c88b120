"""Throughput of the scenery world: rendering (images/s at 64 px, one process) and PNG writing.

    python -m bench.world_render [--n 3000] [--size 64]

Prints wall-clock and CPU-time rates (the CPU-time rate is what one process achieves when
other processes share the cores) and the 1-minute load average at the start, so the figures
can be read against how busy the machine was. The target is >= 1000 images/s at 64 px.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from data.world.builder import RENDER_BATCH, write_png
from data.world.params import CLASSES, sample_scenes
from data.world.render import keep_freed_memory, render_scenes


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    print(f"malloc keeps freed memory: {keep_freed_memory()}")
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    scenes = sample_scenes([CLASSES[i % len(CLASSES)] for i in range(args.n)],
                           np.random.default_rng(0))
    render_scenes(scenes.select(slice(0, 12)), args.size)  # warm-up

    def render_all():
        return np.concatenate([render_scenes(scenes.select(slice(s, s + RENDER_BATCH)), args.size)
                               for s in range(0, args.n, RENDER_BATCH)])

    images, wall, cpu = timed(render_all)
    print(f"render {args.size}px, batches of {RENDER_BATCH}: {args.n / wall:8.0f} images/s wall,"
          f" {args.n / cpu:8.0f} images/s per CPU-second")
    for name in CLASSES:
        subset = sample_scenes([name] * RENDER_BATCH, np.random.default_rng(1))
        _, wall, cpu = timed(lambda subset=subset: render_scenes(subset, args.size))
        print(f"  {name:10s} {RENDER_BATCH / wall:8.0f} images/s wall,"
              f" {RENDER_BATCH / cpu:8.0f} per CPU-second")
    with tempfile.TemporaryDirectory() as folder:
        count = min(args.n, 1000)

        def write_all():
            for i in range(count):
                write_png(Path(folder) / f"{i}.png", images[i])

        _, wall, cpu = timed(write_all)
        print(f"PNG write (compress level 6): {count / wall:8.0f} images/s wall,"
              f" {count / cpu:8.0f} per CPU-second")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
