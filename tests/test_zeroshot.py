"""The CLIP zero-shot labeller: proper distributions, the prompt ensemble, the classify command."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from classifier.labellers import load_labeller
from classifier.prediction import classify_files
from classifier.zeroshot import ZeroShotClassifier, default_prompts
from data.errors import ConfigError
from data.world import CLASSES
from gallery.cli import main


@pytest.fixture(scope="module")
def labeller(tiny_clip_dir):
    return ZeroShotClassifier.from_name(str(tiny_clip_dir))


def _images(n: int, seed: int, size=(48, 40)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *size, generator=generator) * 2 - 1


def test_returns_distributions_over_the_scene_classes(labeller):
    images = _images(5, seed=0)
    probabilities = labeller.predict(images)
    assert labeller.classes == CLASSES
    assert probabilities.shape == (5, len(CLASSES))
    assert (probabilities >= 0).all()
    assert torch.allclose(probabilities.sum(1), torch.ones(5), atol=1e-5)
    # Different images get different distributions; the same image the same one.
    assert not torch.allclose(probabilities[0], probabilities[1])
    assert torch.allclose(labeller.predict(images[:1]), probabilities[:1], atol=1e-6)


def test_class_feature_is_the_mean_over_templates_and_synonyms(labeller, tiny_clip_dir):
    templates, synonyms = default_prompts()
    prompts = labeller.prompts("glacier")
    assert len(prompts) == len(templates) * (1 + len(synonyms["glacier"]))
    assert {"a photo of a glacier.", "a landscape of ice field."} <= set(prompts)
    # Recompute the ensemble by hand from CLIP's text encoder.
    clip = labeller.clip
    with torch.no_grad():
        features = F.normalize(clip.model.encode_text(clip.tokenizer(prompts)).float(), dim=-1)
    expected = F.normalize(features.mean(0), dim=-1)
    index = CLASSES.index("glacier")
    assert torch.allclose(labeller.class_features[index], expected, atol=1e-5)
    # A single template gives a different class feature: the ensemble is really used.
    single = ZeroShotClassifier(clip, templates=("{}",), synonyms={})
    assert not torch.allclose(single.class_features[index], expected, atol=1e-3)


def test_logits_use_clip_logit_scale(labeller):
    images = _images(3, seed=1)
    features = labeller.scorer.image_features(images)
    scale = float(labeller.clip.model.logit_scale.exp())
    expected = scale * features @ labeller.class_features.T
    assert labeller.logit_scale == pytest.approx(scale)
    assert torch.allclose(labeller.logits(images), expected, atol=1e-4)


def test_custom_classes_and_bad_templates(tiny_clip_dir, labeller):
    two = ZeroShotClassifier(labeller.clip, classes=("sea", "desert"))
    assert two.predict(_images(2, seed=2)).shape == (2, 2)
    with pytest.raises(ConfigError, match="placeholder"):
        ZeroShotClassifier(labeller.clip, templates=("a photo",))
    with pytest.raises(ConfigError, match="distinct"):
        ZeroShotClassifier(labeller.clip, classes=("sea", "sea"))


def test_classify_command_with_clip_model(tiny_clip_dir, tmp_path, capsys):
    from PIL import Image

    paths = []
    for i, size in enumerate([(30, 30), (64, 48)]):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", size, (40 * i, 120, 200)).save(path)
        paths.append(path)
    (tmp_path / "readme.txt").write_text("no image")
    model = load_labeller(f"clip:{tiny_clip_dir}")
    result = classify_files(model, [tmp_path])  # a folder: its image files
    assert len(result.paths) == 2 and not result.failures
    code = main(["classify", *map(str, paths), str(tmp_path / "readme.txt"), "--model", f"clip:{tiny_clip_dir}", "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in report["results"]] == [str(p) for p in paths]
    assert report["failures"][0]["path"].endswith("readme.txt")
    assert set(report["results"][0]["probabilities"]) == set(CLASSES)
