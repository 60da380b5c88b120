"""``artbias campaign check``: offline, it names every missing weight file and how to supply it,
and counts evaluations from the plan."""

from __future__ import annotations

from pathlib import Path

from test_campaign import models, raw_config, to_toml  # noqa: F401  (models: a fixture)

from gallery.check import check_campaign
from gallery.cli import main
from gallery.config import parse_config
from gallery.planning import plan_jobs

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "gallery" / "campaigns" / "published.toml"


def test_the_published_study_is_checked_offline_and_every_missing_file_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # its local models (models/...) are not here
    assert main(["campaign", "check", str(PUBLISHED)]) == 1  # valid, but not ready
    out = capsys.readouterr().out
    assert "the config is valid" in out and "not ready" in out
    for name, fragments in {
        "biggan-deep-256": ["missing file: pytorch_model.bin", "artbias models pull biggan-deep-256"],
        "stylegan2-church": ["missing file: stylegan2-church-config-f.pkl", "non-commercial licence"],
        "clip-vit-b-32-openai": ["missing file: open_clip_model.safetensors", "artbias models pull clip-vit-b-32-openai"],
        "dcgan:models/dcgan-intel": ["artbias train gan --arch dcgan --data DATA_DIR --out models/dcgan-intel"],
        "models/resnet50-intel": ["artbias train classifier --arch resnet50 --data DATA_DIR --weights imagenet"],
        "resnet50-imagenet1k-v2": ["missing file: resnet50-11ad3fa6.pth"],
    }.items():
        section = out[out.index(f" {name}: MISSING"):]
        for fragment in fragments:
            assert fragment in section[:1200], (name, fragment)
    assert "GPU-hours" in out and "CPU-hours" in out and "gallery/costs.json" in out
    report = check_campaign(PUBLISHED)
    assert report.estimate.evaluations > 1_000_000 and not report.estimate.unknown


def test_a_campaign_whose_models_are_here_is_ready_with_its_evaluations_counted(models, tmp_path, capsys):  # noqa: F811
    raw = raw_config(models, algorithms=["ga", "nsga2"])
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(raw))
    assert main(["campaign", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ready: every model is here" in out and "MISSING" not in out
    config = parse_config(raw)
    searches = [job for job in plan_jobs(config) if job.kind == "search"]
    estimate = check_campaign(path).estimate
    assert estimate.searches == len(searches) == 12
    assert estimate.evaluations == len(searches) * 4 * 2  # pop 4 x 2 generations, no refinement
    assert estimate.baseline_images == 2 * 6
    assert estimate.labels == 2 * 6 + 6 * 3 + 6 * 3  # baselines; ga: top 2 + chosen; nsga2 likewise
    # A local generator is timed as the architecture training makes by default, a classifier by
    # its architecture; a CLIP folder of unknown shape is left out, and the output says so.
    assert estimate.unknown == [models["clip"]]
    assert f"no measured cost (left out of the estimate): {models['clip']}" in out


def test_names_that_can_never_work_are_config_errors(models, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(raw_config(models, generators=["dcgan-wrld"])))
    assert main(["campaign", "check", str(path)]) == 2
    assert "did you mean dcgan-world" in capsys.readouterr().err
