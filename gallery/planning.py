"""Campaign planning: a validated config becomes the list of jobs to run.

Baselines come first (they anchor every comparison), then every (prompt x modifier x
generator x seed x algorithm) search; control prompts run with their prompt's seeds, and each
replicate with its own disjoint seeds. ``preflight`` checks, before anything is written, that
every catalogue model the jobs need has its weights here.
"""

from __future__ import annotations

from gallery.config import CampaignConfig
from gallery.jobs import BASELINE_ALGORITHM, CampaignJob


def search_settings(algorithm: str, search: dict) -> dict:
    """The full, validated search settings a job records (its algorithm apart)."""
    from search.config import SearchConfig

    settings = SearchConfig(algorithm=algorithm, **search).to_dict()
    settings.pop("algorithm")
    return settings


def plan_jobs(config: CampaignConfig) -> list[CampaignJob]:
    """Every job of the campaign: baselines first, then searches."""
    jobs: list[CampaignJob] = []
    for generator in config.generators:
        for chunk, count in config.baseline.chunks():
            jobs.append(CampaignJob(
                config.campaign_id, "baseline", generator, None, "", config.baseline.seed + chunk,
                BASELINE_ALGORITHM, {"chunk": config.baseline.chunk}, config.clip, config.labellers, count,
            ))
    settings = {algorithm: search_settings(algorithm, config.search) for algorithm in config.algorithms}
    searches = config.searches()
    for text in dict.fromkeys(planned.text for planned in searches):  # prompt by prompt
        for modifier in config.modifiers:
            for generator in config.generators:
                for planned in (p for p in searches if p.text == text):
                    for algorithm in config.algorithms:
                        jobs.append(CampaignJob(
                            config.campaign_id, "search", generator, text, modifier, planned.seed,
                            algorithm, settings[algorithm], config.clip, config.labellers,
                            replicate=planned.replicate, negatives=planned.negatives,
                            negative_weight=planned.negative_weight,
                        ))
    return jobs


def weights_needed(config: CampaignConfig) -> list[str]:
    """Catalogue names whose weights the campaign's models need (each package reads its names)."""
    from classifier.labellers import weights_needed as labeller_weights
    from generators.registry import weights_needed as generator_weights
    from search.clip import weights_needed as clip_weights

    names = [name for spec in config.generators for name in generator_weights(spec)]
    names += clip_weights(config.clip)
    names += [name for spec in config.labellers for name in labeller_weights(spec)]
    return list(dict.fromkeys(names))


def preflight(config: CampaignConfig) -> None:
    """Fail fast, before anything is written, when a catalogue model's weights are absent."""
    from data.weights.catalog import get_entry
    from data.weights.resolve import resolve_weights

    for name in weights_needed(config):
        resolve_weights(get_entry(name))  # WeightsNotFoundError says what is missing and how to get it
