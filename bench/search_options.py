"""The command-line options that the search benchmarks (``bench.search``, ``bench.manifold``) share."""

from __future__ import annotations

import argparse


class SearchBenchParser(argparse.ArgumentParser):
    """--generator, --clip, --seeds, --budget, --pop, --refine-steps and --quick (``quick``:
    the (seeds, budget) it sets); a benchmark adds its own options to it."""

    def __init__(self, description: str, *, seeds: int, budget: int, quick: tuple[int, int]):
        super().__init__(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        self._quick = quick
        self.add_argument("--generator", default="dcgan-world")
        self.add_argument("--clip", default="clip-world")
        self.add_argument("--seeds", type=int, default=seeds)
        self.add_argument("--budget", type=int, default=budget)
        self.add_argument("--pop", type=int, default=32)
        self.add_argument("--refine-steps", type=int, default=20)
        self.add_argument("--quick", action="store_true", help=f"{quick[0]} seeds, budget {quick[1]}")

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        if parsed.quick:
            parsed.seeds, parsed.budget = self._quick
        return parsed
