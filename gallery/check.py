"""``artbias campaign check CONFIG``: can this campaign run here, and what will it cost? Offline.

1. The config is validated as ``campaign run`` would (every problem at once), except that
   models are looked up here instead of failing the file.
2. Every model the campaign needs (generators, the search CLIP, the labellers) is listed with
   where it would come from: the artbias cache, the starter zoo, the Hugging Face cache, a
   local path, or a download; what is missing is named file by file, with how to supply it
   (``artbias models pull``, copying into the cache, or the training command that makes it).
3. Evaluations are counted from the plan, and time is estimated from measured per-image costs
   (``gallery/costs.json``, made by ``python -m bench.campaign_costs``; ``--costs FILE`` takes
   figures measured on other hardware). The output says which figures it used.
Nothing is downloaded and no model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gallery.config import CampaignConfig, load_config
from gallery.planning import plan_jobs

COSTS_PATH = Path(__file__).with_name("costs.json")
GAN_FAMILIES = ("dcgan", "stylegan2", "biggan")
ZOO_OF_FAMILY = {"dcgan": "dcgan-world", "stylegan2": "stylegan2-world", "biggan": "biggan-world",
                 "diffusion": "ddpm-world"}  # what the training commands make by default


@dataclass
class ModelNeed:
    """One model the campaign needs, and whether it is here."""

    role: str  # "generator", "CLIP", "labeller", "to train a labeller"
    spec: str
    present: bool
    source: str  # cache, zoo, hf-cache, local path, download, ...
    where: str  # the path found, or where it is expected
    missing_files: list[str] = field(default_factory=list)
    how: str = ""  # how to supply it (when missing)
    notes: list[str] = field(default_factory=list)
    cost_key: str | None = None  # its per-image cost entry
    cost_note: str = ""

    def lines(self) -> list[str]:
        state = f"present ({self.source})" if self.present else f"MISSING ({self.source})"
        lines = [f"  {self.role:<10} {self.spec}: {state}  {self.where}"]
        lines += [f"      missing file: {name}" for name in self.missing_files]
        if self.how and not self.present:
            lines.append(f"      how: {self.how}")
        lines += [f"      note: {note}" for note in self.notes]
        return lines


# -- models ----------------------------------------------------------------------------------------
def catalogue_need(role: str, name: str, kind: str) -> ModelNeed:
    from data.weights.catalog import get_entry
    from data.weights.resolve import ZOO_DIR, locate, model_cache_dir

    entry = get_entry(name)
    notes = [f"non-commercial licence: {entry.licence}"] if entry.non_commercial else []
    found = locate(entry)
    if found is not None:
        arch = _classifier_arch(found.path) if kind == "classifier" and found.path.is_dir() else None
        return ModelNeed(role, name, True, found.place, str(found.path), notes=notes,
                         cost_key=f"{kind}:{arch or name}")
    if entry.zoo is not None:
        folder = ZOO_DIR / entry.zoo
        missing = [f.name for f in entry.files if not (folder / f.name).is_file()]
        return ModelNeed(role, name, False, "starter zoo", str(folder), missing,
                         f"retrain it: bash data/zoo/retrain.sh {name}", notes, f"{kind}:{name}")
    cache = model_cache_dir(entry)
    missing = [f.name for f in entry.files if not (cache / f.name).is_file()]
    size = f", {entry.size / 1e6:.0f} MB" if entry.size else ""
    how = (f"'artbias models pull {name}' on a networked machine (from {entry.where_from}{size}), then copy "
           f"{cache} here; or put the files there yourself")
    return ModelNeed(role, name, False, "download", str(cache), missing, how, notes, f"{kind}:{name}")


def generator_need(spec: str) -> ModelNeed:
    from generators.registry import generator_problem

    family, colon, path = spec.partition(":")
    if not colon:
        return catalogue_need("generator", spec, "generator")
    zoo = ZOO_OF_FAMILY.get(family)
    folder = Path(path).expanduser()
    cost_key = f"generator:{zoo}" if zoo else None
    cost_note = f"timed as {zoo}, the architecture training makes by default" if zoo else ""
    if generator_problem(spec) is None:
        return ModelNeed("generator", spec, True, "local path", str(folder.resolve()), cost_key=cost_key,
                         cost_note=cost_note)
    if family in GAN_FAMILIES:
        how = (f"train it: artbias train gan --arch {family} --data DATA_DIR --out {path} "
               "(DATA_DIR: a world, Intel (seg_train/seg_test) or ImageFolder tree)")
    elif family == "diffusion":
        how = f"train it: artbias train ddpm --data DATA_DIR --out {path}, or give a diffusers pipeline folder"
    else:
        how = "give the path of a saved model of this family"
    return ModelNeed("generator", spec, False, "local path", str(folder.resolve()), ["config.json", "model.safetensors"]
                     if family in ("dcgan", "biggan") else [], how, cost_key=cost_key, cost_note=cost_note)


def clip_need(name: str, role: str = "CLIP") -> ModelNeed:
    from search.clip import clip_problem, weights_needed

    if weights_needed(name):
        return catalogue_need(role, name, "clip")
    if "/" in name and ":" not in name and not Path(name).expanduser().is_dir():
        return ModelNeed(role, name, False, "download", "open_clip's cache",
                         how="an open_clip pretrained tag: open_clip fetches it when the network allows",
                         notes=["cannot be checked offline"])
    where = name.removeprefix("local-dir:").split(":", 1)[-1]
    present = clip_problem(name) is None
    return ModelNeed(role, name, present, "local path", str(Path(where).expanduser().resolve()),
                     [] if present else ["open_clip_config.json", "open_clip_model.safetensors"],
                     "train one with artbias train clip --data DIR --out PATH, or give a local open_clip folder")


def labeller_needs(spec: str) -> list[ModelNeed]:
    from classifier.labellers import labeller_problem, parse_labeller
    from data.weights.catalog import find_entry

    parsed = parse_labeller(spec)
    if parsed.kind == "zero-shot":
        need = clip_need(parsed.target, role="labeller")
        need.spec, need.cost_key = spec, need.cost_key or f"clip:{parsed.target}"
        return [need]
    if find_entry(spec) is not None:  # a catalogue name always means the catalogue model
        return [catalogue_need("labeller", spec, "classifier")]
    folder = Path(spec).expanduser()
    arch = _classifier_arch(folder)
    if labeller_problem(spec) is None:
        return [ModelNeed("labeller", spec, True, "local path", str(folder.resolve()),
                          cost_key=f"classifier:{arch}" if arch else None)]
    weights = " --weights imagenet" if arch in ("resnet18", "resnet50") else ""
    how = (f"train it: artbias train classifier --arch {arch or 'ARCH'} --data DATA_DIR{weights} --out {spec} "
           "(docs/classifier.md; DATA_DIR: e.g. the Intel scenes, seg_train/seg_test)")
    needs = [ModelNeed("labeller", spec, False, "local path", str(folder.resolve()),
                       ["config.json", "model.safetensors"], how,
                       cost_key=f"classifier:{arch}" if arch else None,
                       cost_note=f"architecture {arch} read from the folder's name" if arch else "")]
    backbone = {"resnet18": "resnet18-imagenet1k-v1", "resnet50": "resnet50-imagenet1k-v2"}.get(arch or "")
    if backbone:
        needs.append(catalogue_need("to train", backbone, "classifier"))
    return needs


def _classifier_arch(folder: Path) -> str | None:
    """The classifier's architecture: from its config.json, else a known name in the folder's."""
    from classifier.commands import ARCHS

    try:
        return json.loads((folder / "config.json").read_text())["arch"]["arch"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    named = [arch for arch in ARCHS if arch in folder.name]
    return max(named, key=len) if named else None


# -- the estimate ----------------------------------------------------------------------------------
@dataclass
class Estimate:
    jobs: int
    searches: int
    evaluations: int  # generated and scored images in searches (refinement counted as 3 per step)
    baseline_images: int
    labels: int
    cpu_hours: float | None
    gpu_hours: float | None
    unknown: list[str]
    figures: str
    gpu_figures: str


def load_costs(path: str | Path | None) -> dict:
    path = Path(path) if path is not None else COSTS_PATH
    try:
        return json.loads(path.read_text()) | {"path": str(path)}
    except (OSError, ValueError) as error:
        from data.errors import ConfigError

        raise ConfigError(f"cannot read per-image costs {path}: {error}") from None


def estimate(config: CampaignConfig, costs: dict, needs: dict[str, ModelNeed]) -> Estimate:
    from search.config import SearchConfig

    seconds = costs["seconds_per_image"]
    unknown: set[str] = set()

    def cost(spec: str) -> float:
        key = needs[spec].cost_key if spec in needs else None
        if key in seconds:
            return seconds[key]
        unknown.add(spec)
        return 0.0

    total = evaluations = baseline_images = labels = searches = 0
    label_cost = sum(cost(spec) for spec in config.labellers)
    for job in plan_jobs(config):
        generate = cost(job.generator)
        if job.kind == "baseline":
            baseline_images += job.count
            labels += job.count * len(config.labellers)
            total += job.count * (generate + label_cost)
            continue
        searches += 1
        search = SearchConfig(algorithm=job.algorithm, **job.settings)
        score = cost(config.clip) * max(1, search.augmentations)
        per_image = generate * (2 if search.uses_realism else 1) + score  # nsga2 also runs the discriminator
        starts = 1 if search.uses_realism else search.top_k
        refined = 3 * search.refine_steps * starts  # forward and backward through both networks
        artworks = search.top_k + 1
        evaluations += search.evaluations + refined
        labels += artworks * len(config.labellers)
        total += (search.evaluations + refined) * per_image + artworks * (generate + label_cost)
    hours = total / 3600 if total else None
    figures = f"{costs['path']} ({costs.get('measured', 'how measured not recorded')})"
    gpu_hours, gpu_figures = None, ""
    if hours is not None and costs.get("device") == "cuda":
        gpu_hours, hours, gpu_figures = hours, None, "measured on the GPU itself"
    elif hours is not None and "gpu" in costs:
        gpu = costs["gpu"]
        gpu_hours = hours / gpu["factor"]
        gpu_figures = f"CPU time / {gpu['factor']:g} ({gpu['gpu']}: {gpu['source']})"
    return Estimate(len(plan_jobs(config)), searches, evaluations, baseline_images, labels, hours, gpu_hours,
                    sorted(unknown), figures, gpu_figures)


# -- the report ------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    config: CampaignConfig
    source: str
    needs: list[ModelNeed]
    estimate: Estimate

    @property
    def missing(self) -> list[ModelNeed]:
        return [need for need in self.needs if not need.present]

    @property
    def ready(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        config, e = self.config, self.estimate
        lines = [f"campaign {config.name!r} ({self.source}): the config is valid",
                 f"models ({len(self.needs) - len(self.missing)} of {len(self.needs)} present):"]
        for need in self.needs:
            lines += need.lines()
        lines.append(f"plan: {e.jobs:,} jobs: {e.searches:,} searches ({_count(len(config.prompts), 'prompt')} "
                     f"with their controls, {_count(len(config.modifiers), 'modifier')}, "
                     f"{_count(len(config.generators), 'generator')}, {_count(config.replicates, 'replicate')}, "
                     f"{', '.join(config.algorithms)}) and {e.baseline_images:,} baseline images")
        lines.append(f"evaluations: {e.evaluations:,} generated and scored images in searches, "
                     f"{e.labels:,} labels")
        if e.cpu_hours is not None:
            lines.append(f"time: {_duration(e.cpu_hours, 'CPU')} (core time: one thread per job, as measured)")
        if e.gpu_hours is not None:
            lines.append(f"time: {_duration(e.gpu_hours, 'GPU')} ({e.gpu_figures})")
        lines.append(f"per-image costs from {e.figures}")
        for need in self.needs:
            if need.cost_note:
                lines.append(f"  {need.spec}: {need.cost_note}")
        if e.unknown:
            lines.append(f"  no measured cost (left out of the estimate): {', '.join(e.unknown)}")
        if self.missing:
            lines.append(f"not ready: {len(self.missing)} models missing (see 'how' above)")
        else:
            lines.append("ready: every model is here")
        return lines


def _duration(hours: float, unit: str) -> str:
    return f"{hours:,.1f} {unit}-hours" if hours >= 1 else f"{hours * 60:.1f} {unit}-minutes"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_campaign(path: str | Path, *, costs: str | Path | None = None) -> CheckReport:
    """Validate ``path`` and describe its models and cost; loads and downloads nothing."""
    config = load_config(path, check_models=False)
    _check_model_names(config, str(path))
    needs: dict[str, ModelNeed] = {}
    for spec in config.generators:
        needs.setdefault(spec, generator_need(spec))
    needs.setdefault(config.clip, clip_need(config.clip))
    extra: list[ModelNeed] = []
    for spec in config.labellers:
        first, *more = labeller_needs(spec)
        needs.setdefault(spec, first)
        extra += [need for need in more if need.spec not in needs and need.spec not in {m.spec for m in extra}]
    return CheckReport(config, str(path), list(needs.values()) + extra, estimate(config, load_costs(costs), needs))


def _check_model_names(config: CampaignConfig, source: str) -> None:
    """Names that could never work (unknown catalogue names or families, wrong kinds) are
    config errors; a path that does not exist yet is not: it is listed as missing."""
    from classifier.labellers import labeller_problem
    from data.errors import ConfigError
    from generators.registry import generator_problem
    from search.clip import clip_problem

    problems = []
    for spec in config.generators:
        problem = generator_problem(spec)
        if problem and "does not exist" not in problem:
            problems.append(problem)
    problem = clip_problem(config.clip)
    if problem and "does not exist" not in problem and "has no open_clip_config" not in problem:
        problems.append(problem)
    for spec in config.labellers:
        problem = labeller_problem(spec)
        if problem and "does not exist" not in problem and "has no " not in problem:
            problems.append(problem)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n{listed}")
