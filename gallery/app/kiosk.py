"""The exhibition kiosk's content: slide order, captions and findings, in plain words.

No Streamlit here: ``exhibition_page`` draws these slides, and the tests read the sentences
directly. Visitors never see a seed, a similarity score or a p-value; they read what a
generator painted when asked, compared with what it paints on its own (its unguided baseline
samples), and each generator's finding from the bias report (``gallery.bias``).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from PIL import Image

INTERVAL_S = 8.0  # seconds per slide unless ``--interval`` or ``?interval=`` says otherwise
INTERVAL_RANGE_S = (2.0, 300.0)
ORDER_SEED = 0  # the shuffle is seeded: every kiosk restart shows the same order

# Pictures are enlarged by a whole factor with nearest-neighbour resampling: every generated
# pixel becomes a sharp square block, so nothing is smoothed away or made up.
UPSCALE_FILTER = Image.Resampling.NEAREST
UPSCALE_FILTER_NAME = "nearest-neighbour"
UPSCALE_TARGET_PX = 768

# A ratio is stated only on enough pictures: below these counts the caption says less.
MIN_PROMPT_PICTURES = 5
MIN_BASELINE_PICTURES = 10
# A ratio within this factor of 1 reads "about as often as unprompted".
SAME_WITHIN = 1.3
FINDING_EVERY = 8  # a generator's finding slide after every this many pictures
MAX_PICTURES = 500  # pictures in one round of the show, shared fairly among the groups
MAX_FINDINGS = 3  # prompts stated on one generator's finding slide
SIGNIFICANCE = 0.05  # on the report's adjusted p-values (Holm over the whole report)

_FAMILIES = {
    "dcgan": "DCGAN",
    "stylegan2": "StyleGAN2",
    "biggan": "BigGAN",
    "ddpm": "DDPM",
    "world-render": "the scenery renderer",
}
_SCENES = {
    "buildings": "buildings",
    "forest": "a forest",
    "glacier": "a glacier",
    "mountain": "a mountain",
    "sea": "the sea",
    "street": "a street",
}
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def generator_name(generator: str) -> str:
    """A generator's name for visitors: ``biggan-world`` -> ``BigGAN``; others unchanged."""
    for prefix, name in _FAMILIES.items():
        if generator in (prefix, f"{prefix}-world"):
            return name
        if generator.startswith(prefix + "-"):
            return f"{name} ({generator.removeprefix(prefix + '-')})"
    return generator


def scene(name: str) -> str:
    """A class as a visitor says it: ``sea`` -> ``the sea``."""
    return _SCENES.get(name, name)


def _times(ratio: float) -> str:
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}".removesuffix(".0")


def _percent(share: float) -> str:
    return f"{round(100 * share)}%"


# -- what each generator painted, counted -----------------------------------------------------
Counts = Mapping[tuple[str, str | None], Counter]


def class_counts(labelled: pd.DataFrame) -> dict[tuple[str, str | None], Counter]:
    """(generator, prompt) -> Counter of predicted classes, over the artworks the statistics
    count (``queries.labelled_artworks``: chosen artworks; prompt None for the baseline)."""
    found: dict[tuple[str, str | None], Counter] = {}
    for generator, prompt, predicted in labelled[["generator", "prompt", "predicted"]].itertuples(index=False):
        key = (generator, None if pd.isna(prompt) else prompt)
        found.setdefault(key, Counter())[predicted] += 1
    return found


def report_counts(bias) -> dict[tuple[str, str | None], Counter]:
    """``class_counts`` from the bias report (``gallery.bias.GalleryBias``) instead of a read:
    its reports count the same artworks, by the same labeller."""
    return {(r.generator, r.prompt): Counter({row.name: row.count for row in r.rows if row.count})
            for r in bias.reports}


def comparison(counts: Counts, generator: str, prompt: str, predicted: str) -> str | None:
    """How often ``generator`` paints ``predicted`` when asked for ``prompt``, against how
    often it does unprompted: the share among that prompt's pictures over the share among
    its unguided baseline pictures. None when there are too few pictures to say."""
    asked, unasked = counts.get((generator, prompt), Counter()), counts.get((generator, None), Counter())
    asked_n, unasked_n = sum(asked.values()), sum(unasked.values())
    if asked_n < MIN_PROMPT_PICTURES or unasked_n < MIN_BASELINE_PICTURES or not asked[predicted]:
        return None
    if not unasked[predicted]:
        return f"something it never painted in {unasked_n} pictures made unprompted"
    ratio = (asked[predicted] / asked_n) / (unasked[predicted] / unasked_n)
    if ratio >= SAME_WITHIN:
        return f"it does so {_times(ratio)}× more often than unprompted"
    if ratio <= 1 / SAME_WITHIN:
        return f"it does so {_times(1 / ratio)}× less often than unprompted"
    return "about as often as it does unprompted"


def artwork_caption(counts: Counts, generator: str, prompt: str | None, predicted: str | None) -> str:
    """One sentence a visitor understands, e.g. "Asked for “a calm sea”, BigGAN painted the
    sea — it does so 3× more often than unprompted."."""
    name = generator_name(generator)
    if prompt is None:
        start = f"Painting on its own, {name}"
    else:
        start = f"Asked for “{prompt}”, {name}"
    if not isinstance(predicted, str):
        return f"{start} painted this."
    sentence = f"{start} painted {scene(predicted)}"
    compared = None if prompt is None else comparison(counts, generator, prompt, predicted)
    return f"{sentence} — {compared}." if compared else f"{sentence}."


# -- findings from the bias report ------------------------------------------------------------
def _strength(report) -> tuple[float, int]:
    test = report.vs_baseline
    p = test.p_adjusted if test is not None and test.p_adjusted is not None else math.inf
    return (p if math.isfinite(p) else math.inf, -report.n)


def finding_lines(bias, generator: str) -> list[str]:
    """What the bias report (``gallery.bias.GalleryBias``) found for ``generator``, in plain
    sentences, strongest prompt first; [] when it has no report for a prompt."""
    reports = sorted(
        (r for r in bias.reports if r.generator == generator and r.prompt is not None), key=_strength
    )
    if not reports:
        return []
    if any(r.generator == generator and r.reliable is False for r in bias.reliability):
        return [
            f"Two independent judges disagree too often about what {generator_name(generator)}'s "
            "pictures show, so we state no finding about it."
        ]
    lines = []
    for report in reports[:MAX_FINDINGS]:
        top = report.top
        line = (
            f"Asked for “{report.prompt}”, it painted {scene(top.name)} most often: {top.count} of "
            f"{report.n} pictures ({_percent(top.proportion)}; the true share is likely between "
            f"{_percent(top.wilson_low)} and {_percent(top.wilson_high)})."
        )
        if report.baseline_n and top.baseline_proportion is not None:
            line += f" On its own, {_percent(top.baseline_proportion)} of its pictures show {scene(top.name)}."
            test = report.vs_baseline
            p = None if test is None else test.p_adjusted
            if p is not None and math.isfinite(p):
                line += (
                    " Asking clearly changes what it paints."
                    if p < SIGNIFICANCE
                    else f" With {report.n} pictures, we cannot tell whether asking changes what it paints."
                )
        lines.append(line)
    if bias.labeller in bias.circular:
        lines.append("The judge of what the pictures show is the program that chose them, so this is weak evidence.")
    return lines


# -- the slides -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slide:
    """One slide: the introduction, an artwork, or a generator's finding. Text is plain
    (stored prompts and names inside it are escaped when drawn)."""

    kind: str  # "intro" | "artwork" | "finding"
    title: str
    lines: tuple[str, ...] = ()
    generator: str | None = None
    prompt: str | None = None
    artwork_id: str | None = None
    image_path: str | None = None
    group: tuple = field(default=(), compare=False)


def spread_order(groups: Sequence[Hashable], seed: int = ORDER_SEED) -> list[int]:
    """Indices of ``groups`` (one group key per item, e.g. (generator, prompt)) in an order
    that never puts two items of one group side by side unless no order can avoid it.

    Members are shuffled inside their group (seeded); then each step takes the group with the
    most items left other than the previous one (the greedy choice that always succeeds when
    any order does), preferring a group that differs from the previous one in more of its
    key's parts (generator *and* prompt), ties broken by a seeded order of the groups.
    """
    rng = random.Random(seed)
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    for items in members.values():
        rng.shuffle(items)
    keys = sorted(members, key=repr)
    rank = {group: position for position, group in enumerate(rng.sample(keys, len(keys)))}

    def differs(group, previous) -> int:
        if previous is None:
            return 0
        if isinstance(group, tuple) and isinstance(previous, tuple):
            return sum(a != b for a, b in zip(group, previous, strict=False))
        return int(group != previous)

    order: list[int] = []
    previous = None
    while len(order) < len(groups):
        best = max(
            (g for g in keys if members[g]),
            key=lambda g: (g != previous, len(members[g]), differs(g, previous), -rank[g]),
        )
        order.append(members[best].pop())
        previous = best
    return order


def fair_selection(groups: Sequence[Hashable], limit: int) -> list[int]:
    """Indices of at most ``limit`` items, shared among the groups as evenly as their sizes
    allow (a group smaller than its share gives the rest to the others); within a group the
    first items in the given order are kept. All of them when they fit."""
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    if len(groups) <= limit:
        return list(range(len(groups)))
    kept: list[int] = []
    depth = 0
    while len(kept) < limit:
        for items in members.values():
            if depth < len(items) and len(kept) < limit:
                kept.append(items[depth])
        depth += 1
    return sorted(kept)


def _count(n: int, noun: str) -> str:
    word = _NUMBERS[n] if n < len(_NUMBERS) else str(n)
    return f"{word} {noun}{'' if n == 1 else 's'}"


def intro_slide(artworks: pd.DataFrame) -> Slide:
    generators = sorted(artworks["generator"].unique())
    prompts = sorted(artworks["prompt"].dropna().unique())
    asked = "“a beautiful landscape”" if "a beautiful landscape" in prompts else (
        f"“{prompts[0]}”" if prompts else "a landscape")
    others = len(prompts) - (1 if prompts else 0)
    lines = (
        f"We asked {_count(len(generators), 'computer program')} that make pictures to paint {asked}"
        + (f" and {_count(others, 'other request')}." if others else "."),
        "Another program looked at many tries and kept the one that best fits the words. "
        "A third one says what each picture shows: buildings, a forest, a glacier, a mountain, "
        "the sea or a street.",
        "Does a program have favourite scenes? The captions compare what it paints when asked "
        "with what it paints on its own, unprompted.",
        f"The pictures are small. Each is enlarged by turning every pixel into a square block "
        f"({UPSCALE_FILTER_NAME}), so nothing is smoothed away or made up.",
    )
    return Slide("intro", "What does a machine find beautiful?", lines)


def build_slides(
    artworks: pd.DataFrame, counts: Counts, findings: Mapping[str, Sequence[str]], seed: int = ORDER_SEED,
    limit: int = MAX_PICTURES,
) -> list[Slide]:
    """The introduction, then at most ``limit`` artworks (``fair_selection``) in
    ``spread_order`` over (generator, prompt), with a generator's finding slide after every
    ``FINDING_EVERY`` pictures (the rest at the end).

    ``artworks``: ``queries.exhibition_artworks`` rows (generator, prompt, kind, predicted,
    artwork_id, image_path), best first within a group; ``findings``: generator ->
    ``finding_lines``."""

    def prompt_of(row) -> str | None:
        return None if row.kind == "baseline" or not isinstance(row.prompt, str) else row.prompt

    everything = list(artworks.itertuples(index=False))
    rows = [everything[i] for i in fair_selection([(r.generator, prompt_of(r)) for r in everything], limit)]
    slides = [intro_slide(artworks)]
    groups = [(row.generator, prompt_of(row)) for row in rows]
    pending = [
        Slide("finding", f"What we found: {generator_name(g)}", tuple(lines), generator=g)
        for g, lines in sorted(findings.items()) if lines
    ]
    for shown, index in enumerate(spread_order(groups, seed), start=1):
        row = rows[index]
        predicted = row.predicted if isinstance(row.predicted, str) else None
        slides.append(Slide(
            "artwork",
            artwork_caption(counts, row.generator, prompt_of(row), predicted),
            generator=row.generator,
            prompt=prompt_of(row),
            artwork_id=row.artwork_id,
            image_path=row.image_path,
            group=groups[index],
        ))
        if shown % FINDING_EVERY == 0 and pending:
            slides.append(pending.pop(0))
    return slides + pending


def upscale(image: Image.Image, target: int = UPSCALE_TARGET_PX) -> tuple[Image.Image, int]:
    """``image`` enlarged by the whole factor that brings its longer side to at least
    ``target`` pixels (1 when it is already that big), with ``UPSCALE_FILTER``; and the factor."""
    factor = max(1, math.ceil(target / max(image.size)))
    if factor == 1:
        return image, 1
    return image.resize((image.width * factor, image.height * factor), UPSCALE_FILTER), factor
