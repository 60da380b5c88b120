"""Campaign configuration: a TOML file validated into dataclasses before anything runs.

Example (``gallery/campaigns/demo.toml`` is a complete one)::

    name = "landscapes"
    prompts = ["a beautiful landscape", { text = "a calm sea", seeds = 5 }]
    modifiers = ["", "an oil painting of {}", "ArtStation HD"]
    generators = ["dcgan-world", "biggan-world"]
    seeds = 10                      # a count (seeds 0..9) or an explicit list [3, 7, 11]
    algorithms = ["ga"]             # default ["ga"]; also nsga2, cmaes, random
    clip = "clip-world"             # default
    labellers = ["classifier-world", "classifier-world-b", "time-world", "weather-world",
                 "clip:clip-world"]                        # default

    [search]                        # any SearchConfig field except algorithm
    pop_size = 16
    generations = 4

    [baseline]                      # unguided samples from each generator's prior
    samples = 200                   # per generator (0: none)
    chunk = 64                      # samples per job, so a kill loses little

A prompt may be a string or a table ``{ text = "...", seeds = N | [..], controls = [..] }``
overriding the campaign's seeds. **Controls** are prompts run with the *same seeds* as the
prompt they control, so the report can compare the two seed by seed (a paired test):

    [[prompts]]
    text = "a beautiful landscape"
    seeds = 50
    controls = ["a landscape", "a dull landscape"]

**Replicates**: ``replicates = K`` runs every prompt (and its controls) on K disjoint seed
sets: replicate r uses each seed s as ``s + r * (max(seeds) + 1)``; the report shows each
finding per replicate and pooled. **Modifiers**: a modifier containing ``{}`` wraps the prompt ("an oil
painting of {}" -> "an oil painting of a calm sea"); any other modifier is appended after a
comma ("ArtStation HD" -> "a calm sea, ArtStation HD"); "" leaves the prompt as it is.
Every prompt is crossed with every modifier, generator, seed and algorithm.

Every problem found is collected, and one ``ConfigError`` lists them all.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from classifier.labellers import zero_shot_spec
from data.errors import ConfigError
from data.validation import check_limit, check_text

DEFAULT_CLIP = "clip-world"
# Two scene classifiers independent of the search (their agreement says whether labels can carry
# a finding), the time-of-day and weather classifiers (attribute distributions, aesthetic
# values), and CLIP's zero-shot labels (circular when the same CLIP steers the searches).
DEFAULT_LABELLERS = ("classifier-world", "classifier-world-b", "time-world", "weather-world",
                     zero_shot_spec(DEFAULT_CLIP))
DEFAULT_ALGORITHMS = ("ga",)
DEFAULT_BASELINE_CHUNK = 64
MAX_SEEDS = 100_000

MAX_REPLICATES = 100

TOP_LEVEL_KEYS = ("name", "description", "prompts", "modifiers", "generators", "seeds",
                  "replicates", "algorithms", "search", "clip", "labellers", "baseline")
PROMPT_KEYS = ("text", "seeds", "controls", "negatives", "negative_weight")
BASELINE_KEYS = ("samples", "chunk", "seed")


def apply_modifier(prompt: str, modifier: str) -> str:
    """What CLIP sees: the prompt wrapped by (``{}``) or followed by the modifier."""
    if not modifier:
        return prompt
    if "{}" in modifier:
        return modifier.replace("{}", prompt)
    return f"{prompt}, {modifier}"


def campaign_id_for(name: str) -> str:
    """A stable id from the campaign name (lower case, words joined by '-')."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "campaign"


@dataclass(frozen=True)
class PromptSpec:
    text: str
    seeds: tuple[int, ...]
    controls: tuple[str, ...] = ()  # run with the same seeds, compared seed by seed
    negatives: tuple[str, ...] = ()  # steered away from (CLIP score minus weight x best negative)
    negative_weight: float = 0.5

    def replicate_seeds(self, replicate: int) -> tuple[int, ...]:
        """The seeds of replicate ``replicate`` (0 is the seeds as given; the others are disjoint)."""
        span = max(self.seeds) + 1
        return tuple(seed + replicate * span for seed in self.seeds)


@dataclass(frozen=True)
class PlannedSearch:
    """One prompt text at one seed, and the replicate it belongs to."""

    text: str
    seed: int
    replicate: int
    negatives: tuple[str, ...] = ()
    negative_weight: float = 0.5


@dataclass(frozen=True)
class BaselineSpec:
    """``samples`` unguided images per generator, drawn in jobs of ``chunk`` samples."""

    samples: int = 0
    chunk: int = DEFAULT_BASELINE_CHUNK
    seed: int = 0

    def chunks(self) -> list[tuple[int, int]]:
        """(chunk index, sample count) for each baseline job of one generator."""
        sizes = []
        left = self.samples
        while left > 0:
            sizes.append(min(self.chunk, left))
            left -= self.chunk
        return list(enumerate(sizes))


@dataclass(frozen=True)
class CampaignConfig:
    name: str
    prompts: tuple[PromptSpec, ...]
    generators: tuple[str, ...]
    modifiers: tuple[str, ...] = ("",)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    search: dict = field(default_factory=dict)  # SearchConfig fields other than algorithm
    clip: str = DEFAULT_CLIP
    labellers: tuple[str, ...] = DEFAULT_LABELLERS
    baseline: BaselineSpec = BaselineSpec()
    description: str = ""
    replicates: int = 1

    def searches(self) -> list[PlannedSearch]:
        """Every (prompt text, seed) to search, controls included, each once, in config order."""
        planned: dict[tuple[str, int], PlannedSearch] = {}
        for replicate in range(self.replicates):
            for prompt in self.prompts:
                for text in (prompt.text, *prompt.controls):
                    # controls are searched plainly: only the prompt itself steers away from its negatives
                    negatives = prompt.negatives if text == prompt.text else ()
                    for seed in prompt.replicate_seeds(replicate):
                        planned.setdefault((text, seed), PlannedSearch(
                            text, seed, replicate, negatives, prompt.negative_weight))
        return list(planned.values())

    def controls(self) -> dict[str, tuple[str, ...]]:
        """Prompt -> its control prompts (only prompts that have controls)."""
        return {p.text: p.controls for p in self.prompts if p.controls}

    @property
    def campaign_id(self) -> str:
        return campaign_id_for(self.name)

    def search_config(self, algorithm: str):
        from search.config import SearchConfig

        return SearchConfig(algorithm=algorithm, **self.search)

    def to_dict(self) -> dict:
        return asdict(self)

    def result_settings(self) -> dict:
        """The settings that change what a finished job holds: a rerun must keep them."""
        return {"search": dict(sorted(self.search.items())), "clip": self.clip,
                "labellers": sorted(self.labellers), "baseline_chunk": self.baseline.chunk,
                "baseline_seed": self.baseline.seed}


# -- validation --------------------------------------------------------------------------------
def load_config(path: str | Path, *, check_models: bool = True) -> CampaignConfig:
    """Read and validate a campaign TOML file (every problem reported at once)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"campaign config {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"campaign config {path} is not valid TOML: {error}") from None
    return parse_config(raw, source=str(path), check_models=check_models)


def parse_config(raw: dict, *, source: str = "campaign config", check_models: bool = True) -> CampaignConfig:
    """Validate a parsed TOML table into a ``CampaignConfig``; ``check_models`` also checks
    that generator, CLIP and labeller names are known (catalogue names or existing paths)."""
    problems: list[str] = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            problems.append(f"unknown key {key!r} (known: {', '.join(TOP_LEVEL_KEYS)})")

    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("'name' must be a non-empty string")
        name = "?"
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append("'description' must be a string")

    default_seeds = _seeds(raw.get("seeds", 1), "'seeds'", problems)
    prompts = _prompts(raw.get("prompts"), default_seeds, problems)
    replicates = raw.get("replicates", 1)
    if not _is_int(replicates) or not 1 <= replicates <= MAX_REPLICATES:
        problems.append(f"'replicates' must be a whole number from 1 to {MAX_REPLICATES}, got {replicates!r}")
        replicates = 1
    elif any(max(p.seeds) + 1 > (2**31 - 1) // replicates for p in prompts if p.seeds):
        problems.append(f"'replicates' = {replicates} would take seeds past 2**31")
    modifiers = _strings(raw.get("modifiers", [""]), "'modifiers'", problems, allow_empty_item=True)
    for modifier in modifiers:
        if modifier and (problem := _text_problem(modifier, "modifier")):
            problems.append(problem)
        if modifier.count("{}") > 1:
            problems.append(f"modifier {modifier!r} has more than one '{{}}' placeholder")
    generators = _strings(raw.get("generators"), "'generators'", problems)
    algorithms = _strings(raw.get("algorithms", list(DEFAULT_ALGORITHMS)), "'algorithms'", problems)
    labellers = _strings(raw.get("labellers", list(DEFAULT_LABELLERS)), "'labellers'", problems)
    clip = raw.get("clip", DEFAULT_CLIP)
    if not isinstance(clip, str) or not clip.strip():
        problems.append("'clip' must be a non-empty string")
        clip = DEFAULT_CLIP

    search = _search(raw.get("search", {}), algorithms, problems)
    baseline = _baseline(raw.get("baseline", {}), problems)

    if check_models:  # each package knows its own names
        from classifier.labellers import labeller_problem
        from generators.registry import generator_problem
        from search.clip import clip_problem

        for spec in generators:
            if problem := generator_problem(spec):
                problems.append(problem)
        if problem := clip_problem(clip):
            problems.append(problem)
        for spec in labellers:
            if problem := labeller_problem(spec):
                problems.append(problem)

    if not problems:  # the jobs it plans, counted before any is made (a typo must not plan a million)
        planned = len(generators) * len(baseline.chunks()) + sum(
            (1 + len(p.controls)) * len(p.seeds) for p in prompts) * replicates * len(modifiers) * len(
            generators) * len(algorithms)
        if problem := _limit_problem("jobs", planned, "the campaign's planned jobs"):
            problems.append(problem)
    if len(problems) == 1:
        raise ConfigError(f"{source}: {problems[0]}")
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source} has {len(problems)} problems:\n{listed}")
    return CampaignConfig(
        name=name.strip(), prompts=prompts, generators=tuple(generators), modifiers=tuple(modifiers),
        algorithms=tuple(algorithms), search=search, clip=clip, labellers=tuple(labellers),
        baseline=baseline, description=description if isinstance(description, str) else "",
        replicates=replicates,
    )


def _text_problem(text: str, what: str) -> str | None:
    """Why ``text`` is no acceptable prompt text (``data.validation.check_text``), or None."""
    try:
        check_text(text, what)
    except ConfigError as error:
        return str(error)
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seeds(value, where: str, problems: list[str]) -> tuple[int, ...]:
    if _is_int(value):
        if not 1 <= value <= MAX_SEEDS:
            problems.append(f"{where} count must be between 1 and {MAX_SEEDS}, got {value}")
            return ()
        return tuple(range(value))
    if isinstance(value, list) and value and all(_is_int(s) and 0 <= s < 2**31 for s in value):
        if len(set(value)) != len(value):
            problems.append(f"{where} lists a seed twice: {value}")
        return tuple(dict.fromkeys(value))
    problems.append(f"{where} must be a positive count or a non-empty list of non-negative integers, got {value!r}")
    return ()


def _strings(value, where: str, problems: list[str], *, allow_empty_item: bool = False) -> list[str]:
    if value is None:
        problems.append(f"{where} is missing")
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"{where} must be a non-empty list of strings, got {value!r}")
        return []
    if not allow_empty_item and any(not v.strip() for v in value):
        problems.append(f"{where} has an empty entry")
    if len(set(value)) != len(value):
        problems.append(f"{where} lists an entry twice: {value}")
    return [v for v in dict.fromkeys(value) if allow_empty_item or v.strip()]


def _prompts(value, default_seeds: tuple[int, ...], problems: list[str]) -> tuple[PromptSpec, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"'prompts' must be a non-empty list, got {value!r}")
        return ()
    found: list[PromptSpec] = []
    for index, item in enumerate(value):
        where = f"prompts[{index}]"
        seeds, controls, negatives, negative_weight = default_seeds, (), (), 0.5
        if isinstance(item, dict):
            for key in item:
                if key not in PROMPT_KEYS:
                    problems.append(f"{where}: unknown key {key!r} (known: {', '.join(PROMPT_KEYS)})")
            if "seeds" in item:
                seeds = _seeds(item["seeds"], f"{where}.seeds", problems)
            controls = _controls(item.get("controls", []), item.get("text"), f"{where}.controls", problems)
            negatives = _controls(item.get("negatives", []), item.get("text"), f"{where}.negatives", problems)
            negative_weight = item.get("negative_weight", 0.5)
            if not isinstance(negative_weight, int | float) or isinstance(negative_weight, bool) \
                    or not 0 < negative_weight <= 10 or negative_weight != negative_weight:
                problems.append(f"{where}.negative_weight must be a number in (0, 10], got {negative_weight!r}")
                negative_weight = 0.5
            item = item.get("text")
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{where} is empty (a prompt must be non-empty text)")
            continue
        try:  # printable one-line text within the length limit (data.validation)
            item = check_text(item, where)
        except ConfigError as error:
            problems.append(str(error))
            continue
        found.append(PromptSpec(item.strip(), seeds, controls, negatives, float(negative_weight)))
    texts = [p.text for p in found]
    if len(set(texts)) != len(texts):
        problems.append(f"'prompts' lists a prompt twice: {texts}")
    return tuple(found)


def _controls(value, prompt, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        problems.append(f"{where} must be a list of prompt texts, got {value!r}")
        return ()
    controls = tuple(c.strip() for c in value)
    for control in controls:
        if not control:
            problems.append(f"{where}: a control prompt is empty")
        elif problem := _text_problem(control, f"{where}: a control"):
            problems.append(problem)
        elif isinstance(prompt, str) and control == prompt.strip():
            problems.append(f"{where}: control {control!r} is the prompt itself; a control must differ")
    if len(set(controls)) != len(controls):
        problems.append(f"{where} lists a control twice: {list(controls)}")
    return tuple(c for c in controls if c)


def _search(value, algorithms: list[str], problems: list[str]) -> dict:
    from search.config import ALGORITHMS, SearchConfig

    for algorithm in algorithms:
        if algorithm not in ALGORITHMS:
            problems.append(f"unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    if not isinstance(value, dict):
        problems.append(f"'search' must be a table, got {value!r}")
        return {}
    types = {f.name: str(f.type) for f in fields(SearchConfig) if f.name != "algorithm"}
    settings: dict = {}
    for key, item in value.items():
        if key == "algorithm":
            problems.append("search.algorithm: give algorithms as the top-level 'algorithms' list")
        elif key not in types:
            problems.append(f"search: unknown setting {key!r} (known: {', '.join(types)})")
        elif not _fits_type(item, types[key]):
            problems.append(f"search.{key} must be of type {types[key]}, got {item!r}")
        else:
            settings[key] = item
    if len(settings) == len(value):
        seen: set[str] = set()
        for algorithm in (a for a in algorithms if a in ALGORITHMS):
            try:
                SearchConfig(algorithm=algorithm, **settings)
            except ConfigError as error:
                if str(error) not in seen:
                    seen.add(str(error))
                    problems.append(f"search ({algorithm}): {error}")
    return settings


def _limit_problem(limit: str, value: int, what: str) -> str | None:
    """Why ``value`` is over a size limit (``data.validation.Limits``), or None."""
    try:
        check_limit(limit, value, what)
    except ConfigError as error:
        return str(error)
    return None


def _fits_type(value, annotation: str) -> bool:
    if value is None:
        return False  # TOML has no null; a missing key means the default
    if "int" in annotation and _is_int(value):
        return True
    if "float" in annotation and isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return "str" in annotation and isinstance(value, str)


def _baseline(value, problems: list[str]) -> BaselineSpec:
    if not isinstance(value, dict):
        problems.append(f"'baseline' must be a table, got {value!r}")
        return BaselineSpec()
    for key in value:
        if key not in BASELINE_KEYS:
            problems.append(f"baseline: unknown key {key!r} (known: {', '.join(BASELINE_KEYS)})")
    samples = value.get("samples", 0)
    chunk = value.get("chunk", DEFAULT_BASELINE_CHUNK)
    seed = value.get("seed", 0)
    ok = True
    if not _is_int(samples) or not 0 <= samples:
        problems.append(f"baseline.samples must be an integer >= 0, got {samples!r}")
        ok = False
    elif problem := _limit_problem("images", samples, "baseline.samples"):
        problems.append(problem)
        ok = False
    if not _is_int(chunk) or chunk < 1:
        problems.append(f"baseline.chunk must be an integer >= 1, got {chunk!r}")
        ok = False
    elif problem := _limit_problem("baseline_chunk", chunk, "baseline.chunk"):
        problems.append(problem)
        ok = False
    if not _is_int(seed) or not 0 <= seed < 2**31:
        problems.append(f"baseline.seed must be a non-negative integer, got {seed!r}")
        ok = False
    return BaselineSpec(samples, chunk, seed) if ok else BaselineSpec()
