"""CLIP-guided latent search on a toy generator and a tiny random CLIP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_protocol import WithDiscriminator

from data.errors import ConfigError
from search import pareto
from search.clip import load_clip
from search.config import SearchConfig
from search.engine import run_search
from search.operators import PriorGaussianMutation, PriorSampling
from search.problem import LatentSearchProblem
from search.refine import prior_penalty, refine
from search.scorer import ClipScorer, Prompt

PROMPT = "a beautiful landscape"


@pytest.fixture(scope="module")
def clip(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


@pytest.fixture()
def scorer(clip):
    return ClipScorer(clip)


@pytest.fixture()
def generator():
    return WithDiscriminator(with_discriminator=True)


def images(n, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def record_populations(monkeypatch, dtype) -> list[np.ndarray]:
    """Every population the search evaluates, in order (filled as the search runs)."""
    populations = []
    evaluate = LatentSearchProblem._evaluate

    def recording(self, X, out, *args, **kwargs):
        populations.append(np.array(X, dtype=dtype))
        return evaluate(self, X, out, *args, **kwargs)

    monkeypatch.setattr(LatentSearchProblem, "_evaluate", recording)
    return populations


# -- scorer ------------------------------------------------------------------------------
def test_preprocess_uses_the_models_size_and_normalisation(scorer, clip):
    grey = torch.zeros(2, 3, 16, 16)  # 0 in [-1, 1] is 0.5 in [0, 1]
    x = scorer.preprocess(grey)
    assert x.shape == (2, 3, clip.image_size, clip.image_size)
    expected = (0.5 - torch.tensor(clip.mean)) / torch.tensor(clip.std)
    assert torch.allclose(x[0, :, 5, 5], expected, atol=1e-5)
    wide = scorer.preprocess(torch.zeros(1, 3, 16, 40))  # shortest side resized, then centre crop
    assert wide.shape[-2:] == (clip.image_size, clip.image_size)


def test_batched_scores_equal_one_at_a_time(clip):
    batch = images(6)
    whole = ClipScorer(clip, chunk_size=64).similarity(batch, PROMPT)
    single = torch.cat([ClipScorer(clip).similarity(batch[i : i + 1], PROMPT) for i in range(6)])
    assert torch.allclose(whole, single, atol=1e-5)
    assert whole.abs().max() <= 1 and whole.std() > 0


def test_text_features_are_computed_once_per_prompt(scorer, monkeypatch):
    calls = []
    original = scorer.clip.model.encode_text
    monkeypatch.setattr(scorer.clip.model, "encode_text", lambda t: calls.append(1) or original(t))
    for _ in range(3):
        scorer.similarity(images(2), PROMPT)
    assert len(calls) == 1


def test_scores_are_differentiable(scorer):
    x = images(2).requires_grad_(True)
    scorer.similarity(x, PROMPT).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_negative_prompt_lowers_scores(scorer):
    batch = images(4)
    plain = scorer.similarity(batch, Prompt(PROMPT))
    avoided = scorer.similarity(batch, Prompt(PROMPT, negatives=("a dull street",), negative_weight=1.0))
    assert not torch.allclose(plain, avoided)
    # a negative prompt identical to the prompt cancels it exactly
    cancelled = scorer.similarity(batch, Prompt(PROMPT, negatives=(PROMPT,), negative_weight=1.0))
    assert torch.allclose(cancelled, torch.zeros(4), atol=1e-5)


def test_augmented_scores_are_deterministic_and_differ(clip):
    batch = images(3)
    augmented = ClipScorer(clip, augmentations=4, augment_seed=3)
    first, second = augmented.similarity(batch, PROMPT), augmented.similarity(batch, PROMPT)
    assert torch.equal(first, second)
    assert not torch.allclose(first, ClipScorer(clip).similarity(batch, PROMPT))


@pytest.mark.parametrize("bad", ["", "   ", "x" * 1001])
def test_bad_prompts_are_refused(bad):
    with pytest.raises(ConfigError):
        Prompt(bad)


def test_prompt_longer_than_context_warns(scorer):
    with pytest.warns(UserWarning, match="truncated"):
        scorer.similarity(images(1), "mountain " * 90)


def test_ensemble_needs_placeholders():
    with pytest.raises(ConfigError, match="placeholder"):
        Prompt(PROMPT, templates=("a photo",))


# -- operators and problem -----------------------------------------------------------------
def test_mutation_steps_follow_the_prior(generator):
    space = generator.latent_space
    rng = np.random.default_rng(0)
    X = PriorSampling(space)._do(None, 4000, random_state=rng)
    assert abs(X.std() - 1.0) < 0.05
    mutated = PriorGaussianMutation(space, sigma=0.2, prob_var=1.0)._do(None, X, random_state=rng)
    steps = (mutated - X)[np.abs(mutated) < 3.9]  # away from the clipping bounds
    assert abs(steps.std() - 0.2) < 0.02


def test_problem_scores_a_population_in_batches(generator, scorer):
    problem = LatentSearchProblem(generator, scorer, Prompt(PROMPT), batch_size=8, use_realism=True)
    X = generator.latent_space.sample(20, torch.Generator().manual_seed(0)).numpy()
    generator.calls = 0
    out = {}
    problem._evaluate(X, out)
    assert generator.calls == 3  # ceil(20 / 8) batches, not 20 single calls
    assert out["F"].shape == (20, 2)
    assert np.allclose(out["F"][:, 0], -out["similarity"])
    assert problem.evaluations == 20
    with pytest.raises(ConfigError, match="NaN"):
        problem._evaluate(np.full((2, 5), np.nan), {})
    with pytest.raises(ConfigError, match="bounds"):
        problem._evaluate(np.full((2, 5), 99.0), {})


# -- the search ----------------------------------------------------------------------------
def search(generator, scorer, seed=0, **settings):
    config = SearchConfig(**({"pop_size": 16, "budget": 128} | settings))
    return run_search(generator, scorer, PROMPT, config, seed=seed, progress=False)


@pytest.mark.parametrize("algorithm", ["ga", "cmaes", "random", "nsga2"])
def test_same_seed_same_result(generator, scorer, algorithm):
    first = search(generator, scorer, seed=5, algorithm=algorithm)
    again = search(generator, scorer, seed=5, algorithm=algorithm)
    other = search(generator, scorer, seed=6, algorithm=algorithm)
    assert np.array_equal(first.latent, again.latent)
    assert torch.equal(first.image, again.image)
    assert not np.array_equal(first.latent, other.latent)
    assert first.evaluations <= 129 and len(first.history) == 8


@pytest.mark.parametrize("algorithm", ["ga", "cmaes", "random", "nsga2"])
def test_history_is_the_best_similarity_after_each_generation(generator, scorer, algorithm, monkeypatch):
    """Each generation is one batch; the history entry after it is the best similarity of
    every latent evaluated so far, scored again here from the latents alone."""
    populations = record_populations(monkeypatch, np.float32)
    result = search(generator, scorer, seed=3, algorithm=algorithm)
    assert len(populations) == len(result.history) == 8
    with torch.no_grad():
        best = [float(scorer.similarity(generator.generate(torch.from_numpy(X)), PROMPT).max()) for X in populations]
    assert result.history == pytest.approx(np.maximum.accumulate(best).tolist(), abs=1e-5)
    assert result.evaluations == sum(len(X) for X in populations)
    with torch.no_grad():  # the reported similarity is the chosen latent's image, scored again
        rescored = float(scorer.similarity(generator.generate(torch.from_numpy(result.latent[None, :])), PROMPT)[0])
    assert result.similarity == pytest.approx(rescored, abs=1e-5)
    if algorithm != "nsga2":  # single objective: the chosen latent is the best one seen
        assert result.similarity == pytest.approx(result.history[-1], abs=1e-5)


def test_ga_beats_best_of_n_at_equal_budget(generator, scorer):
    ga = [search(generator, scorer, seed=s, algorithm="ga").similarity for s in range(6)]
    best_of_n = [search(generator, scorer, seed=s, algorithm="random").similarity for s in range(6)]
    assert np.mean(ga) > np.mean(best_of_n)


def test_search_beats_unguided_samples(generator, scorer):
    result = search(generator, scorer, seed=0)
    unguided = scorer.similarity(generator.generate(generator.latent_space.sample(128)), PROMPT)
    assert result.similarity > float(unguided.max())


def test_nsga2_keeps_a_front_and_follows_the_rule(generator, scorer):
    result = search(generator, scorer, algorithm="nsga2", pareto_rule="threshold", realism_threshold=0.4)
    front = result.front
    sim, real = front["similarity"], front["realism"]
    assert len(sim) >= 2
    for i in range(len(sim)):  # no member dominates another
        assert not np.any((sim >= sim[i]) & (real >= real[i]) & ((sim > sim[i]) | (real > real[i])))
    chosen = front["chosen"]
    if result.rule_satisfied:
        ok = real >= 0.4
        assert real[chosen] >= 0.4 and sim[chosen] == sim[ok].max()
    else:
        assert real[chosen] == real.max()
    assert result.similarity == pytest.approx(sim[chosen], abs=1e-5)


def test_nsga2_needs_a_discriminator(scorer):
    from test_protocol import LinearFamily

    with pytest.raises(ConfigError, match="discriminator"):
        search(LinearFamily(), scorer, algorithm="nsga2")


def test_refinement_never_loses_and_stays_in_bounds(generator, scorer):
    start = generator.latent_space.sample(3, torch.Generator().manual_seed(1))
    before = scorer.similarity(generator.generate(start), PROMPT)
    refined, after, history = refine(generator, scorer, Prompt(PROMPT), start, steps=10, lr=0.2)
    assert torch.all(after >= before - 1e-6) and after.max() > before.max()
    low, high = generator.latent_space.bounds()
    assert refined.min() >= low.min() and refined.max() <= high.max()
    assert len(history) == 10
    plain = search(generator, scorer, seed=2)
    refined_search = search(generator, scorer, seed=2, refine_steps=10)
    assert refined_search.similarity >= plain.similarity


def test_prior_penalty_is_zero_in_the_typical_set(generator):
    typical = torch.ones(1, 5)  # |z|^2 / d = 1
    assert prior_penalty(generator, typical).item() == pytest.approx(0.0)
    assert prior_penalty(generator, 3 * typical).item() > 1


@pytest.mark.parametrize("algorithm", ["ga", "nsga2"])
def test_typical_set_search_evaluates_only_latents_on_the_typical_radius(generator, scorer, algorithm, monkeypatch):
    populations = record_populations(monkeypatch, float)
    result = search(generator, scorer, seed=1, algorithm=algorithm, typical_set=True)
    radius = generator.latent_space.blocks[0].typical_radius
    evaluated = np.concatenate(populations)
    assert len(evaluated) == result.evaluations
    assert np.allclose(np.linalg.norm(evaluated, axis=1), radius, atol=1e-6)
    assert np.linalg.norm(result.latent) == pytest.approx(radius, abs=1e-4)
    plain = search(generator, scorer, seed=1, algorithm=algorithm)
    assert not np.allclose(np.linalg.norm(plain.latent), radius, atol=1e-3)  # without it, norms drift


@pytest.mark.parametrize("algorithm", ["ga", "nsga2", "random"])
def test_anchored_search_evaluates_only_latents_near_the_seeds_own_draw(generator, scorer, algorithm, monkeypatch):
    from search.engine import anchor_latent

    populations = record_populations(monkeypatch, float)
    result = search(generator, scorer, seed=3, algorithm=algorithm, anchor_radius=0.4)
    space = generator.latent_space
    anchor = space.sample(1, torch.Generator().manual_seed(3))[0].double().numpy()  # `generate --n 1 --seed 3`
    assert np.array_equal(result.anchor, anchor) and np.array_equal(anchor_latent(space, 3), anchor)
    evaluated = np.concatenate(populations)
    assert len(evaluated) == result.evaluations
    assert space.distance(evaluated, anchor).max() <= 0.4 + 1e-6
    assert space.distance(result.latent[None], anchor)[0] <= 0.4 + 1e-5
    # the population spreads inside the region, not piled on the anchor
    assert space.distance(evaluated, anchor).mean() > 0.1
    # unanchored, the same search leaves that region
    plain = search(generator, scorer, seed=3, algorithm=algorithm)
    assert space.distance(plain.latent[None], anchor)[0] > 0.4 and plain.anchor is None


def test_anchored_sampling_draws_conditioning_blocks_from_the_prior():
    from generators.latents import LatentBlock, LatentSpace
    from search.operators import AnchoredSampling

    space = LatentSpace((LatentBlock("z", (16,)), LatentBlock("class_logits", (4,), conditioning=True)))
    anchor = space.sample(1, torch.Generator().manual_seed(0))[0].double().numpy()
    drawn = AnchoredSampling(space, anchor, 0.5)._do(None, 400, random_state=np.random.default_rng(0))
    assert np.all(space.distance(drawn, anchor) <= 0.5 + 1e-9)
    assert np.abs(drawn[:, :16] - anchor[:16]).std() < 0.4  # held near the anchor
    assert drawn[:, 16:].std() == pytest.approx(1.0, abs=0.1)  # the class: anywhere the prior puts it


def test_an_anchor_from_several_draws_is_the_best_scored_of_the_seeds_first_draws(generator, scorer, monkeypatch):
    populations = record_populations(monkeypatch, float)
    result = search(generator, scorer, seed=2, anchor_radius=0.3, anchor_draws=12, budget=64)
    space = generator.latent_space
    draws = space.sample(12, torch.Generator().manual_seed(2)).double().numpy()
    similarity = LatentSearchProblem(generator, scorer, Prompt(PROMPT)).score(draws)["similarity"]
    assert np.array_equal(result.anchor, draws[np.argmax(similarity)])
    assert result.evaluations == 12 + 64  # the draws are scored before the search's budget
    assert len(np.concatenate(populations)) == 64
    assert space.distance(np.concatenate(populations), result.anchor).max() <= 0.3 + 1e-6
    # only the anchor among the draws may be offered: every runner-up lies in the trust region
    assert space.distance(result.top_latents, result.anchor).max() <= 0.3 + 1e-5
    assert result.similarity >= similarity.max() - 1e-6  # the search never ends below its anchor


def test_anchored_refinement_stays_in_the_trust_region(generator, scorer):
    result = search(generator, scorer, seed=4, anchor_radius=0.3, refine_steps=8)
    assert generator.latent_space.distance(result.latent[None], result.anchor)[0] <= 0.3 + 1e-5
    again = search(generator, scorer, seed=4, anchor_radius=0.3, refine_steps=8)
    assert np.array_equal(result.latent, again.latent)


def test_anchored_seeds_stay_apart_where_plain_searches_converge(generator, scorer):
    """The point of anchoring: each seed varies its own picture instead of all seeds finding
    the one latent CLIP likes most."""
    space = generator.latent_space
    def spread(**settings):
        latents = np.stack([search(generator, scorer, seed=s, budget=256, **settings).latent for s in range(4)])
        return np.mean([space.distance(latents[i][None], latents[j])[0] for i in range(4) for j in range(i)])
    assert spread(anchor_radius=0.3) > spread()


@pytest.mark.parametrize(
    "settings",
    [{"algorithm": "sgd"}, {"budget": 8, "pop_size": 16}, {"pop_size": 0}, {"pareto_rule": "middle"},
     {"mutation_sigma": 0}, {"refine_steps": -1}, {"algorithm": "cmaes", "typical_set": True},
     {"typical_set": "yes"}, {"anchor_radius": 0}, {"anchor_radius": float("nan")}, {"anchor_radius": "1"},
     {"algorithm": "cmaes", "anchor_radius": 0.5}, {"typical_set": True, "anchor_radius": 0.5},
     {"anchor_draws": 4}, {"anchor_radius": 0.5, "anchor_draws": 0}, {"anchor_radius": 0.5, "anchor_draws": 10**9}],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        SearchConfig(**settings)


# -- Pareto rules --------------------------------------------------------------------------
def test_knee_is_the_elbow_of_a_front():
    similarity = np.array([1.0, 0.95, 0.9, 0.5, 0.0])
    realism = np.array([0.0, 0.5, 0.9, 0.95, 1.0])
    assert pareto.choose(similarity, realism, "knee") == (2, True)
    assert pareto.choose(similarity, realism, "similarity") == (0, True)
    assert pareto.choose(similarity, realism, "threshold", 0.92) == (3, True)
    assert pareto.choose(similarity, realism, "threshold", 2.0) == (4, False)


def test_published_clip_tags_fail_at_once_offline(monkeypatch):
    """Offline, open_clip's hub download is switched to huggingface_hub's offline mode (a cache
    miss then fails at once, not after a minute of retries), and switched back afterwards."""
    import huggingface_hub.constants as hub

    from data.errors import WeightsNotFoundError
    from data.weights.resolve import hub_offline_when_offline

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    with hub_offline_when_offline():
        assert hub.is_offline_mode()
    assert not hub.is_offline_mode()
    monkeypatch.setenv("ARTBIAS_OFFLINE", "0")
    with hub_offline_when_offline():
        assert not hub.is_offline_mode()
    monkeypatch.setenv("ARTBIAS_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="ViT-B-32/openai"):
        load_clip("ViT-B-32/openai")
    assert hub.HF_HUB_OFFLINE is False
