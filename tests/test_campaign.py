"""Campaigns: every job recorded once, idempotent reruns, kill -9 and resume, failing jobs,
readers beside the writer, config validation. Tiny random models built in tmp."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import data.weights.resolve as resolve
from data.errors import ConfigError, WeightsNotFoundError
from gallery.campaign import run_campaign
from gallery.cli import main
from gallery.config import CampaignConfig, apply_modifier, load_config, parse_config
from gallery.images import image_files
from gallery.jobs import cached_generator
from gallery.planning import plan_jobs
from gallery.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_clip_dir) -> dict[str, str]:
    """Two tiny DCGANs, a tiny random scene classifier (with a confusion matrix) and tiny CLIP."""
    from classifier.architectures import build_network, get_arch_config
    from classifier.model import SceneClassifier, save_classifier
    from data.world import CLASSES
    from generators.dcgan import DCGANConfig, build_dcgan, save_dcgan

    root = tmp_path_factory.mktemp("campaign-models")
    torch.manual_seed(0)
    config = DCGANConfig(image_size=32, nz=8, ngf=8, ndf=8)
    for name in ("dcgan-a", "dcgan-b"):
        save_dcgan(*build_dcgan(config), config, root / name)
    arch = get_arch_config("resnet-small")
    confusion = [[8 if i == j else 1 for j in range(6)] for i in range(6)]
    classifier = SceneClassifier(build_network(arch, 6), arch, CLASSES,
                                 dict(arch.preprocessing, size=32, resize_size=32))
    folder = save_classifier(classifier, root / "classifier")
    (folder / "evaluation.json").write_text(json.dumps({"classes": list(CLASSES), "confusion_matrix": confusion}))
    return {"a": f"dcgan:{root / 'dcgan-a'}", "b": f"dcgan:{root / 'dcgan-b'}",
            "classifier": str(root / "classifier"), "clip": str(tiny_clip_dir)}


def raw_config(models, **overrides) -> dict:
    raw = {
        "name": "tiny",
        "prompts": ["a beautiful landscape", {"text": "a calm sea", "seeds": 1}],
        "generators": [models["a"], models["b"]],
        "seeds": 2,
        "clip": models["clip"],
        "labellers": [models["classifier"]],
        "search": {"pop_size": 4, "generations": 2, "top_k": 2},
        "baseline": {"samples": 6, "chunk": 4},
    }
    return raw | overrides


def to_toml(raw: dict) -> str:
    """Enough TOML for these configs (JSON strings and arrays are valid TOML values)."""
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{key} = {value(x)}" for key, x in v.items()]
    return "\n".join(lines) + "\n"


def check_gallery(store: Store, config: CampaignConfig, *, complete: bool) -> dict[str, int]:
    """The invariants a campaign keeps at every moment, and the ones it reaches when complete."""
    jobs = {job.run_id: job for job in plan_jobs(config)}
    runs = store.read("SELECT run_id, status FROM runs")
    done = set(runs[runs["status"] == "done"]["run_id"])
    assert done <= set(jobs)
    artworks = store.read("SELECT artwork_id, run_id, role, rank, image_path, image_sha256 FROM artworks")
    labels = store.read("SELECT artwork_id, labeller FROM labels")
    assert set(artworks["run_id"]) <= done, "artworks of a run that is not done: a half-written run"
    assert set(labels["artwork_id"]) <= set(artworks["artwork_id"])
    for run_id in done:
        mine = artworks[artworks["run_id"] == run_id]
        indices = sorted(int(a.rsplit(":", 1)[1]) for a in mine["artwork_id"])
        assert indices == list(range(len(mine))), f"run {run_id} has missing or repeated artworks"
        job = jobs[run_id]
        if job.kind == "baseline":
            assert len(mine) == job.count and set(mine["role"]) == {"baseline"}
        else:
            assert (mine["role"] == "chosen").sum() == 1
            assert mine.loc[mine["role"] == "chosen", "rank"].tolist() == [0]
    assert len(labels) == len(artworks) * len(config.labellers)
    assert not labels.duplicated().any()
    files = set(image_files(store.root))
    referenced = set(artworks["image_path"])
    assert referenced <= files, "an artwork refers to a missing PNG"
    for row in artworks.drop_duplicates("image_path").itertuples():
        assert hashlib.sha256((store.root / row.image_path).read_bytes()).hexdigest() == row.image_sha256
    if complete:
        assert done == set(jobs)
        assert files == referenced, "unreferenced PNGs after a completed campaign"
    return {"done": len(done), "artworks": len(artworks)}


# -- validation ---------------------------------------------------------------------------------
def test_invalid_config_lists_every_problem_and_writes_nothing(models, tmp_path, capsys):
    raw = raw_config(models, colour="blue", prompts=["a calm sea", "  "], seeds=-3,
                     generators=[models["a"], "dcgan-wrld", "nofamily:x"], algorithms=["ga", "simulated-annealing"],
                     search={"pop_size": 1, "mutation_sigma": "large", "speed": 3})
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    for fragment in ("'colour'", "prompts[1] is empty", "seeds", "dcgan-wrld", "did you mean dcgan-world",
                     "unknown family 'nofamily'", "simulated-annealing", "mutation_sigma", "'speed'"):
        assert fragment in message
    assert message.count("\n  - ") == 8 and "has 8 problems" in message

    path = tmp_path / "bad.toml"
    path.write_text(to_toml(raw))
    gallery = tmp_path / "gallery"
    assert main(["campaign", "run", str(path), "--gallery", str(gallery)]) == 2
    assert "dcgan-wrld" in capsys.readouterr().err
    assert not gallery.exists()


def test_search_settings_are_checked_per_algorithm(models):
    with pytest.raises(ConfigError, match=r"search \(ga\): .*population"):
        parse_config(raw_config(models, search={"pop_size": 1}))
    with pytest.raises(ConfigError, match="budget"):
        parse_config(raw_config(models, search={"pop_size": 8, "budget": 4}))


def test_modifiers_wrap_or_follow_the_prompt(models):
    assert apply_modifier("a calm sea", "an oil painting of {}") == "an oil painting of a calm sea"
    assert apply_modifier("a calm sea", "ArtStation HD") == "a calm sea, ArtStation HD"
    assert apply_modifier("a calm sea", "") == "a calm sea"
    config = parse_config(raw_config(models, modifiers=["", "ArtStation HD"], algorithms=["ga", "random"]))
    searches = [job for job in plan_jobs(config) if job.kind == "search"]
    # (2 seeds + 1 seed) x 2 modifiers x 2 generators x 2 algorithms
    assert len(searches) == 24 and len({job.run_id for job in searches}) == 24
    assert {job.full_prompt for job in searches} == {
        "a beautiful landscape", "a beautiful landscape, ArtStation HD", "a calm sea", "a calm sea, ArtStation HD"}
    baselines = [job for job in plan_jobs(config) if job.kind == "baseline"]
    assert sorted(job.count for job in baselines) == [2, 2, 4, 4]


def test_demo_campaign_is_valid_and_large_enough():
    config = load_config(REPO / "gallery" / "campaigns" / "demo.toml")
    jobs = plan_jobs(config)
    assert set(config.generators) == {"dcgan-world", "stylegan2-world", "biggan-world"}
    for generator in config.generators:
        landscape = [j for j in jobs if j.generator == generator and j.prompt == "a beautiful landscape"]
        assert len(landscape) >= 30
        assert sum(j.count for j in jobs if j.generator == generator and j.kind == "baseline") >= 200
    # The headline prompt is paired with controls on the same seeds, in at least 3 replicates.
    assert config.replicates >= 3
    assert set(config.controls()["a beautiful landscape"]) == {"a landscape", "a dull landscape"}
    for control in ("a landscape", "a dull landscape"):
        seeds = {(j.generator, j.seed) for j in jobs if j.prompt == control}
        assert seeds == {(j.generator, j.seed) for j in jobs if j.prompt == "a beautiful landscape"}


def test_demo_runs_its_campaign_and_prints_the_bias_table(models, tmp_path, monkeypatch, capsys):
    import gallery.commands

    raw = raw_config(models, name="demo", generators=[models["a"]], prompts=["a calm sea"],
                     labellers=[models["classifier"], f"clip:{models['clip']}"], baseline={"samples": 4})
    (tmp_path / "demo.toml").write_text(to_toml(raw))
    monkeypatch.setattr(gallery.commands, "DEMO_CONFIG", tmp_path / "demo.toml")
    gallery = tmp_path / "gallery-demo"
    assert main(["demo", "--no-serve", "--gallery", str(gallery), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 jobs — 3 done" in out
    assert models["a"] in out and "a calm sea" in out and "baseline" in out
    assert f"artbias gallery --gallery {gallery}" in out
    check_gallery(Store(gallery), parse_config(raw), complete=True)


def test_missing_zoo_weights_fail_fast_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(resolve, "ZOO_DIR", tmp_path / "empty-zoo")
    config = load_config(REPO / "gallery" / "campaigns" / "demo.toml")
    with pytest.raises(WeightsNotFoundError, match="dcgan-world"):
        run_campaign(config, tmp_path / "gallery", progress=False)
    assert not (tmp_path / "gallery").exists()


# -- running ------------------------------------------------------------------------------------
def test_campaign_records_every_job_once_and_a_rerun_does_nothing(models, tmp_path):
    config = parse_config(raw_config(
        models, algorithms=["ga", "nsga2"], prompts=["a calm sea"], seeds=1, generators=[models["a"]],
        labellers=[models["classifier"], f"clip:{models['clip']}"]))
    gallery = tmp_path / "gallery"
    summary = run_campaign(config, gallery, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (len(plan_jobs(config)), 0, 0)
    store = Store(gallery)
    counts = check_gallery(store, config, complete=True)
    roles = set(store.read("SELECT role FROM artworks")["role"])
    assert {"chosen", "top", "baseline"} <= roles <= {"chosen", "top", "pareto", "baseline"}
    search = store.read("SELECT * FROM runs WHERE kind = 'search' AND algorithm = 'nsga2'").iloc[0]
    assert json.loads(search.settings_json)["pop_size"] == 4 and len(json.loads(search.history_json)) == 2
    assert json.loads(search.versions_json)["torch"] and search.evaluations == 8
    labellers = store.labellers()
    assert labellers[models["classifier"]]["confusion"][0][0] == 8
    assert labellers[f"clip:{models['clip']}"]["confusion"] is None

    files_before = {p: (gallery / p).stat().st_mtime_ns for p in image_files(gallery)}
    again = run_campaign(config, gallery, progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 0, summary.done)
    assert check_gallery(store, config, complete=True) == counts
    assert {p: (gallery / p).stat().st_mtime_ns for p in image_files(gallery)} == files_before


def test_changed_settings_need_a_new_name_or_prune(models, tmp_path):
    gallery = tmp_path / "gallery"
    small = raw_config(models, generators=[models["a"]], prompts=["a calm sea"], seeds=1, baseline={})
    run_campaign(parse_config(small), gallery, progress=False)
    changed = parse_config(small | {"search": {"pop_size": 4, "generations": 3}})
    with pytest.raises(ConfigError, match="--prune"):
        run_campaign(changed, gallery, progress=False)
    summary = run_campaign(changed, gallery, progress=False, prune=True)
    assert summary.pruned == 1 and summary.done == 1
    check_gallery(Store(gallery), changed, complete=True)


BROKEN = {"on": True}


def load(path, **options):
    """A generator family whose generator raises while BROKEN['on'] (see the test below)."""
    from generators.dcgan import load as load_dcgan

    generator = load_dcgan(path, **options)
    synthesize = generator.synthesize

    def maybe_broken(parts):
        if BROKEN["on"]:
            raise RuntimeError("the generator broke at generate time")
        return synthesize(parts)

    generator.synthesize = maybe_broken
    return generator


def test_a_failing_job_is_recorded_and_the_others_finish(models, tmp_path, monkeypatch):
    from generators.registry import FAMILY_MODULES

    monkeypatch.setitem(FAMILY_MODULES, "broken", __name__)
    monkeypatch.setitem(BROKEN, "on", True)
    broken = "broken:" + models["a"].removeprefix("dcgan:")
    config = parse_config(raw_config(models, generators=[models["b"], broken], prompts=["a calm sea"],
                                     baseline={"samples": 2}))
    gallery = tmp_path / "gallery"
    summary = run_campaign(config, gallery, progress=False)
    assert summary.failed == 3 and summary.done == 3  # 2 seeds + 1 baseline chunk each
    assert all("broke at generate time" in error for _, error in summary.failures)
    store = Store(gallery)
    failed = store.runs(status="failed")
    assert set(failed["generator"]) == {broken} and failed["error"].str.contains("RuntimeError").all()
    check_gallery(store, config, complete=False)

    BROKEN["on"] = False  # fixed: the rerun retries exactly the failed jobs
    again = run_campaign(config, gallery, progress=False)
    assert (again.done, again.failed, again.skipped) == (3, 0, 3)
    assert store.runs(status="failed").empty
    check_gallery(store, config, complete=True)
    cached_generator.cache_clear()  # the patched family must not outlive this test


def test_readers_never_see_an_error_while_a_campaign_writes(models, tmp_path):
    config = parse_config(raw_config(models, generators=[models["a"]], prompts=["a calm sea"]))
    store = Store(tmp_path / "gallery")
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            if store.exists:  # a new gallery appears complete (built aside, then renamed)
                try:
                    seen.append(int(store.read("SELECT count(*) AS n FROM artworks")["n"].iloc[0]))
                except BaseException as error:  # any error reaching a reader fails the test
                    errors.append(error)
            time.sleep(0.005)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        run_campaign(config, store.root, progress=False)
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:1]
    assert seen and seen == sorted(seen)  # counts only grow: whole runs appear at once
    check_gallery(store, config, complete=True)


@pytest.mark.slow
def test_a_campaign_killed_at_random_points_resumes_with_nothing_lost(models, tmp_path):
    raw = raw_config(models, seeds=3)  # 12 jobs
    config = parse_config(raw)
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(raw))
    gallery = tmp_path / "gallery"
    store = Store(gallery)
    command = [sys.executable, "-m", "gallery.cli", "campaign", "run", str(path), "--gallery", str(gallery), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    rng = random.Random(1234)

    def runs_recorded() -> int:
        return int(store.read("SELECT count(*) AS n FROM runs")["n"].iloc[0]) if store.exists else 0

    # Kill 1 lands early (start-up, sweep, model loading: counted from when the process holds
    # the gallery lock); kills 2 and 3 land among jobs (counted from its first recorded run).
    # Kill 2 hits a parent with worker processes: they must stop, and write nothing.
    for attempt, workers in enumerate((1, 2, 1)):
        before = runs_recorded()
        process = subprocess.Popen([*command, "--workers", str(workers)], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lock = gallery / ".campaign.lock"
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if attempt == 0 and lock.is_file() and lock.read_text().strip() == str(process.pid):
                break
            if attempt > 0 and runs_recorded() > before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.5, 3.0) if attempt == 0 else rng.uniform(0.0, 1.5))
        process.kill()  # SIGKILL: no cleanup of any kind
        process.wait()
        if store.exists:
            check_gallery(store, config, complete=False)

    # The last run goes to the end while a reader in this process polls the gallery.
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                if store.exists:
                    store.read("SELECT count(*) FROM artworks")
            except BaseException as error:
                errors.append(error)
            time.sleep(0.01)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        finished = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        reader.join()
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert not errors, errors[:1]
    check_gallery(store, config, complete=True)
