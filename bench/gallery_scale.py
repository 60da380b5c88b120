"""The gallery at 10,000 artworks: every page's render time and the bias queries' times.

    python -m bench.gallery_scale [--artworks 10000] [--dim 512] [--gallery DIR] [--repeats 3]

Builds (or reuses, with ``--gallery`` pointing at one it built) a synthetic gallery shaped like
the demo's (the zoo's four generators; "a beautiful landscape" with its two controls and three
probe prompts on 3 replicates; each search's chosen artwork and two runners-up; unguided
baselines filling the rest; the demo's five labellers; CLIP embeddings of every artwork)
through the store's write API, with small distinct PNGs. Then it measures:

- each registered page of the app through Streamlit's ``AppTest``: *cold* (Streamlit's caches
  cleared, so the page computes its statistics or projection) and *warm* (the median of
  ``--repeats`` reruns, caches filled: what a visitor gets after the first view), against the
  target of 2 s;
- the store queries behind the bias page and ``artbias bias`` (and the other pages' own
  queries), each the median of ``--repeats`` calls, against the target of 200 ms; and, for
  reference, the whole bias report (``gallery_bias``: queries and statistics, what ``artbias
  bias`` computes), the part a page computes first (``gallery_bias(defer=True)``: every test
  and adjusted p-value, no resampled intervals or between-generator tests) and the compare
  page's counts (``gallery_compositions``).

One machine, one run: the figures are this machine's.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

PAGE_TARGET_S = 2.0
QUERY_TARGET_S = 0.2
GENERATORS = ("dcgan-world", "stylegan2-world", "biggan-world", "ddpm-world")
HEADLINE = "a beautiful landscape"
CONTROLS = ("a landscape", "a dull landscape")
PROBES = ("a snowy glacier", "a busy street", "a calm sea")
REPLICATES = 3
SIBLINGS = 2  # runners-up kept per search besides its chosen artwork
CLASSIFIERS = ("classifier-world", "classifier-world-b")
ZERO_SHOT = "clip:clip-world"
CLIP = "bench-synthetic-clip"
IMAGE_SIDE = 32


# -- building the gallery --------------------------------------------------------------------------
def _png(pixels: np.ndarray) -> tuple[bytes, str]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _write_image(root: Path, label_index: int, rng: np.random.Generator) -> tuple[str, str]:
    """A small distinct picture: a class-coloured ground under a sky, with noise."""
    pixels = np.empty((IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.float32)
    pixels[:] = (120, 170, 230)
    ground = np.array([(150, 90, 70), (40, 110, 50), (220, 235, 245), (110, 100, 95), (30, 90, 160),
                       (90, 90, 95)][label_index], dtype=np.float32)
    pixels[IMAGE_SIDE // 2 + int(rng.integers(-6, 6)):] = ground
    pixels += rng.normal(0, 8, pixels.shape)
    data, sha = _png(np.clip(pixels, 0, 255).astype(np.uint8))
    relative = f"images/{sha[:2]}/{sha}.png"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(data)
    return sha, relative


def _shares(rng: np.random.Generator, k: int, focus: int | None) -> np.ndarray:
    weights = rng.dirichlet(np.ones(k))
    if focus is not None:
        weights[focus] += 1.0
    return weights / weights.sum()


def plan_counts(artworks: int) -> tuple[int, int]:
    """(seeds per prompt, baseline samples per generator) that make ``artworks`` in all."""
    prompts = 1 + len(CONTROLS) + len(PROBES)
    per_seed = len(GENERATORS) * prompts * (1 + SIBLINGS)
    seeds = max(REPLICATES, min(60, artworks // (2 * per_seed)) // REPLICATES * REPLICATES)
    baseline = (artworks - seeds * per_seed) // len(GENERATORS)
    if baseline < 1:
        raise SystemExit(f"--artworks {artworks} is too small for this gallery's shape (at least {per_seed * 3 + 4})")
    return seeds, baseline


def build_gallery(root: Path, artworks: int, dim: int, seed: int = 0) -> dict:
    """Write the synthetic gallery into ``root`` (new); returns what was built and how long it took."""
    from classifier.labellers import ATTRIBUTES
    from data.world.params import CLASSES
    from gallery.store import Store
    from gallery.store.records import (
        ArtworkRecord,
        CampaignRecord,
        LabellerRecord,
        LabelRecord,
        RunRecord,
    )
    from gallery.store.writes import insert_rows, record_embeddings

    clock = time.perf_counter()
    store = Store(root)
    store.migrate()
    rng = np.random.default_rng(seed)
    seeds, baseline = plan_counts(artworks)
    start = datetime(2025, 1, 1)
    k = len(CLASSES)
    config = {"name": "bench", "replicates": REPLICATES, "generators": list(GENERATORS),
              "prompts": [{"text": HEADLINE, "seeds": seeds // REPLICATES, "controls": list(CONTROLS)}]
              + [{"text": p, "seeds": seeds // REPLICATES} for p in PROBES]}
    runs, rows, labels, true_classes, owners = [], [], [], [], []
    labeller_classes = {name: list(CLASSES) for name in (*CLASSIFIERS, ZERO_SHOT)}
    labeller_classes |= {f"{name}-world": list(values) for name, values in ATTRIBUTES.items()}
    focus = {HEADLINE: CLASSES.index("mountain"), "a snowy glacier": CLASSES.index("glacier"),
             "a busy street": CLASSES.index("street"), "a calm sea": CLASSES.index("sea")}

    def add(run_id, index, role, rank, generator, shares, similarity, when):
        true = int(rng.choice(k, p=shares))
        sha, path = _write_image(root, true, rng)
        artwork_id = f"{run_id}:{index}"
        rows.append(ArtworkRecord(artwork_id, run_id, role, rank, sha, path, similarity,
                                  float(rng.normal(0.5, 0.5)), rng.normal(0, 1, 8).round(3).tolist(), when))
        true_classes.append(true)
        owners.append(GENERATORS.index(generator))
        for name, classes in labeller_classes.items():
            truth = true if len(classes) == k else int(rng.integers(len(classes)))
            predicted = truth if rng.random() < 0.85 else int(rng.integers(len(classes)))
            logits = rng.normal(0, 1, len(classes))
            logits[predicted] += 3.0
            p = np.exp(logits) / np.exp(logits).sum()
            best = int(np.argmax(p))
            labels.append(LabelRecord(artwork_id, name, classes[best], float(p[best]),
                                      {c: float(v) for c, v in zip(classes, p, strict=True)}))

    minute = 0
    for generator in GENERATORS:
        identity = {"name": generator, "family": "bench"}
        prior = _shares(rng, k, None)
        for chunk in range(0, baseline, 200):
            run_id = f"{generator}-baseline-{chunk // 200}"
            when = start + timedelta(minutes=minute)
            minute += 1
            count = min(200, baseline - chunk)
            runs.append(RunRecord(run_id, "bench", "baseline", generator, None, "", None, chunk // 200, "prior",
                                  {"samples": count}, None, "done", when, when, 1.0,
                                  generator_identity=identity, evaluations=count))
            for i in range(count):
                add(run_id, i, "baseline", i, generator, prior, None, when)
        for prompt in (HEADLINE, *CONTROLS, *PROBES):
            shares = _shares(rng, k, focus.get(prompt))
            for s in range(seeds):
                run_id = f"{generator}-{prompt.replace(' ', '-')}-{s}"
                when = start + timedelta(minutes=minute)
                minute += 1
                history = np.maximum.accumulate(0.2 + 0.02 * np.cumsum(rng.random(4))).round(4).tolist()
                runs.append(RunRecord(run_id, "bench", "search", generator, prompt, "", prompt, s, "ga",
                                      {"algorithm": "ga", "pop_size": 16, "generations": 4}, "clip-world", "done",
                                      when, when, 2.0, generator_identity=identity, evaluations=64,
                                      history=history, replicate=s % REPLICATES))
                for rank in range(1 + SIBLINGS):
                    role = "chosen" if rank == 0 else ("pareto" if rank == 1 else "top")
                    add(run_id, rank, role, rank, generator, shares, history[-1] - 0.01 * rank, when)
    images_s = time.perf_counter() - clock

    confusion = (np.eye(k) * 85 + rng.integers(0, 4, (k, k))).tolist()
    labellers = [LabellerRecord(name, classes, confusion if name in CLASSIFIERS else None, {"bench": True})
                 for name, classes in labeller_classes.items()]
    clock = time.perf_counter()
    insert_rows(store, campaigns=[CampaignRecord("bench", "bench", config, start)], runs=runs, artworks=rows,
                labels=labels, labellers=labellers)
    rows_s = time.perf_counter() - clock

    clock = time.perf_counter()
    centres = rng.normal(0, 1, (k, dim))
    makers = rng.normal(0, 1, (len(GENERATORS), dim))
    vectors = centres[true_classes] + 0.6 * makers[owners] + rng.normal(0, 0.8, (len(rows), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for first in range(0, len(rows), 2000):
        batch = rows[first:first + 2000]
        record_embeddings(store, CLIP, {"name": CLIP, "synthetic": True}, [a.artwork_id for a in batch],
                          [a.image_sha256 for a in batch], vectors[first:first + 2000])
    embeddings_s = time.perf_counter() - clock
    built = {"artworks": len(rows), "runs": len(runs), "labels": len(labels), "seeds_per_prompt": seeds,
             "baseline_per_generator": baseline, "embedding_dim": dim,
             "seconds": {"images": images_s, "rows": rows_s, "embeddings": embeddings_s}}
    (root / "bench.json").write_text(json.dumps(built, indent=2))
    return built


# -- measuring -------------------------------------------------------------------------------------
def _timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, every thread) of one call: on a shared
    machine the wall time includes waiting for a core, the CPU time does not."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _median_time(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    found = [_timed(call) for _ in range(repeats)]
    return statistics.median(w for w, _ in found), statistics.median(c for _, c in found)


def page_views(gallery: Path) -> dict[str, dict[str, str]]:
    """Each registered page's URL parameters (the artwork page on a chosen artwork; the map
    also with a box around part of it, so its selection panel is drawn)."""
    from gallery.app import common
    from gallery.store import queries

    chosen = queries.find_artworks(gallery, queries.ArtworkFilter(), sort="generator, prompt, seed", limit=1)
    views = {}
    for page in common.PAGES:
        views[page] = {"page": page}
        if page == "artwork":
            views[page]["id"] = str(chosen["artwork_id"].iloc[0])
    if "map" in views:
        views["map (with a selection)"] = {"page": "map", "box": "-1,0,-1,0"}
    return views


def measure_pages(gallery: Path, repeats: int) -> list[dict]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from gallery.report_commands import APP_PATH

    os.environ["ARTBIAS_GALLERY"] = str(gallery)

    def run(params: dict[str, str]) -> tuple[float, float, list[str]]:
        app = AppTest.from_file(str(APP_PATH), default_timeout=600)
        for name, value in params.items():
            app.query_params[name] = value
        wall, cpu = _timed(app.run)
        problems = [str(e.value)[:200] for e in app.exception] + [str(e.value)[:200] for e in app.error]
        return wall, cpu, problems

    run({"page": "gallery"})  # imports (streamlit, altair, the statistics stack) are not a page's cost
    results = []
    for name, params in page_views(gallery).items():
        st.cache_data.clear()
        cold, cold_cpu, problems = run(params)
        warm = [run(params) for _ in range(repeats)]
        results.append({"page": name, "cold_s": cold, "cold_cpu_s": cold_cpu,
                        "warm_s": statistics.median(w for w, _, _ in warm),
                        "warm_cpu_s": statistics.median(c for _, c, _ in warm), "problems": problems})
    return results


def measure_queries(gallery: Path, repeats: int) -> list[dict]:
    from gallery.bias import gallery_bias, gallery_compositions
    from gallery.store import Store, queries

    labellers = queries.labellers(gallery)["labeller"].tolist()
    artwork_id = str(queries.find_artworks(gallery, queries.ArtworkFilter(), sort="generator, prompt, seed",
                                           limit=1)["artwork_id"].iloc[0])
    everything = queries.ArtworkFilter(labeller=CLASSIFIERS[0])
    calls: dict[str, Callable[[], object]] = {
        "fingerprint (every page)": lambda: queries.fingerprint(gallery),
        "options (every page)": lambda: queries.options(gallery),
        "labellers (bias: its labeller choice)": lambda: queries.labellers(gallery),
        "report_reads (bias, exhibition: one transaction)": lambda: queries.report_reads(gallery),
        "prompt_controls (artbias bias)": lambda: queries.prompt_controls(gallery),
        "search_clips (compare)": lambda: queries.search_clips(gallery),
        **{f"labelled_artworks {name} (compare)": (lambda n=name: queries.labelled_artworks(gallery, n))
           for name in labellers},
        "label_counts chosen (class counts of artbias demo)": lambda: Store(gallery).label_counts(CLASSIFIERS[0]),
        "count_artworks (gallery)": lambda: queries.count_artworks(gallery, everything),
        "find_artworks page 1 (gallery)": lambda: queries.find_artworks(gallery, everything,
                                                                        sort="best CLIP similarity first", limit=24),
        "embedding_models (map)": lambda: queries.embedding_models(gallery),
        "embedding_points (map)": lambda: queries.embedding_points(gallery, CLIP, CLASSIFIERS[0]),
        "similar_artworks k=6 (artwork)": lambda: queries.similar_artworks(gallery, artwork_id, CLIP, 6),
    }
    for call in calls.values():  # one read each first: connections, file cache
        call()
    results = []
    for name, call in calls.items():
        wall, cpu = _median_time(call, repeats)
        results.append({"query": name, "s": wall, "cpu_s": cpu})
    for name, call in {
        "gallery_bias: the whole report (artbias bias)": lambda: gallery_bias(gallery),
        "gallery_bias(defer=True) (bias, exhibition: cold)": lambda: gallery_bias(gallery, defer=True),
        "gallery_compositions (compare: cold)": lambda: gallery_compositions(gallery),
    }.items():
        wall, cpu = _median_time(call, 1)
        results.append({"query": name, "s": wall, "cpu_s": cpu, "reference": True})
    return results


def report(built: dict, pages: list[dict], queries_found: list[dict], load_before: tuple | None = None) -> str:
    lines = [f"gallery: {built['artworks']:,} artworks, {built['runs']:,} runs, {built['labels']:,} labels, "
             f"{built['embedding_dim']}-dim embeddings"]
    if "seconds" in built:
        s = built["seconds"]
        lines.append(f"built in {sum(s.values()):.1f} s (images {s['images']:.1f} s, rows {s['rows']:.1f} s, "
                     f"embeddings {s['embeddings']:.1f} s)")
    lines += ["", "wall: seconds on the clock; cpu: this process's CPU seconds (no waiting for a busy core)",
              *([f"load average at the start: {', '.join(f'{v:.1f}' for v in load_before)}"] if load_before else []),
              f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores",
              "", f"{'page':<26}{'cold wall':>10}{'cold cpu':>9}{'warm wall':>10}{'warm cpu':>9}{'warm/2 s':>9}  verdict"]
    for page in pages:
        verdict = "ok" if page["warm_s"] <= PAGE_TARGET_S else "SLOW"
        if page["cold_s"] > PAGE_TARGET_S:
            verdict += f" (cold {page['cold_s'] / PAGE_TARGET_S:.1f}x the target)"
        if page["problems"]:
            verdict += f"; errors: {page['problems']}"
        lines.append(f"{page['page']:<26}{page['cold_s']:>10.2f}{page['cold_cpu_s']:>9.2f}{page['warm_s']:>10.2f}"
                     f"{page['warm_cpu_s']:>9.2f}{page['warm_s'] / PAGE_TARGET_S:>9.2f}  {verdict}")
    lines += ["", f"{'query':<58}{'wall ms':>8}{'cpu ms':>8}{'/200 ms':>9}  verdict"]
    for found in queries_found:
        verdict = "reference" if found.get("reference") else ("ok" if found["s"] <= QUERY_TARGET_S else "SLOW")
        lines.append(f"{found['query']:<58}{1000 * found['s']:>8.1f}{1000 * found['cpu_s']:>8.1f}"
                     f"{found['s'] / QUERY_TARGET_S:>9.2f}  {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artworks", type=int, default=10_000, help="artworks in the gallery")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (ViT-B/32's is 512)")
    parser.add_argument("--gallery", default=None,
                        help="gallery folder: reused when it holds a bench gallery, else built there "
                             "(default: a temporary folder, removed afterwards)")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per page and calls per query")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="artbias-bench-") as scratch:
        root = Path(args.gallery or Path(scratch) / "gallery")
        if (root / "bench.json").is_file():
            built = json.loads((root / "bench.json").read_text())
            built.pop("seconds", None)
            print(f"reusing the bench gallery at {root}", file=sys.stderr)
        else:
            print(f"building {args.artworks:,} artworks into {root} ...", file=sys.stderr)
            built = build_gallery(root, args.artworks, args.dim)
        print("measuring the pages ...", file=sys.stderr)
        load_before = os.getloadavg()
        pages = measure_pages(root, args.repeats)
        print("measuring the queries ...", file=sys.stderr)
        found = measure_queries(root, args.repeats)
    print(report(built, pages, found, load_before))
    if args.json:
        Path(args.json).write_text(json.dumps({"gallery": built, "pages": pages, "queries": found}, indent=2))
    slow = [p for p in pages if p["warm_s"] > PAGE_TARGET_S or p["problems"]]
    slow += [q for q in found if not q.get("reference") and q["s"] > QUERY_TARGET_S]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
