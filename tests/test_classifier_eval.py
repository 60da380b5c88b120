"""Classifier evaluation: confusion matrix bookkeeping, calibration, the eval command."""

from __future__ import annotations

import json
import math

import pytest
import torch

from classifier.architectures import build_network, get_arch_config
from classifier.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from classifier.evaluate import summarise
from classifier.model import SceneClassifier, load_classifier, save_classifier
from data.errors import CheckpointError
from data.world import CLASSES
from data.world.builder import WorldConfig, build_world
from gallery.cli import main


@pytest.fixture(scope="module")
def skewed_world(tmp_path_factory):
    """Three classes in unequal numbers, so each row of the confusion matrix has its own sum."""
    out = tmp_path_factory.mktemp("skewed") / "w"
    config = WorldConfig(n=60, size=32, seed=9, test_fraction=0.5,
                         composition={"mountain": 0.5, "sea": 0.3, "street": 0.2})
    return build_world(out, config, progress=False)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A randomly initialised six-class classifier saved the way training saves one."""
    torch.manual_seed(0)
    arch = get_arch_config("resnet-small")
    preprocessing = dict(arch.preprocessing, size=32, resize_size=32)
    classifier = SceneClassifier(build_network(arch, len(CLASSES)), arch, CLASSES, preprocessing, temperature=1.7)
    return save_classifier(classifier, tmp_path_factory.mktemp("model") / "random")


def _folder_counts(split_dir):
    return {d.name: sum(1 for f in d.iterdir() if f.suffix == ".png") for d in split_dir.iterdir() if d.is_dir()}


def test_confusion_rows_sum_to_class_counts(untrained, skewed_world, capsys):
    code = main(["eval", "classifier", "--model", str(untrained), "--data", str(skewed_world), "--format", "json"])
    assert code == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert {"accuracy", "per_class", "confusion_matrix", "classes"} <= set(evaluation)
    assert evaluation["classes"] == list(CLASSES)  # the model's class order, not the folder's
    counts = _folder_counts(skewed_world / "test")
    assert len(set(counts.values())) == 3
    for name, row in zip(evaluation["classes"], evaluation["confusion_matrix"], strict=True):
        assert sum(row) == counts.get(name, 0)
        assert evaluation["per_class"][name]["support"] == counts.get(name, 0)
    matrix = torch.tensor(evaluation["confusion_matrix"])
    assert evaluation["accuracy"] == pytest.approx(float(matrix.diag().sum() / matrix.sum()))
    assert evaluation["temperature"] == pytest.approx(1.7)  # the model's own, stored with it


def test_eval_table_and_heatmap(untrained, skewed_world, tmp_path, capsys):
    heatmap = tmp_path / "confusion.png"
    code = main(["eval", "classifier", "--model", str(untrained), "--data", str(skewed_world),
                 "--confusion-png", str(heatmap)])
    assert code == 0
    table = capsys.readouterr().out
    assert "accuracy" in table and all(name in table for name in CLASSES)
    from PIL import Image

    with Image.open(heatmap) as image:
        assert image.size[0] > 100 and image.size[1] > 100


def test_eval_on_a_folder_with_foreign_classes_is_a_clear_error(untrained, tmp_path, capsys):
    folder = tmp_path / "data" / "cats"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 10, 10)).save(folder / "a.png")
    assert main(["eval", "classifier", "--model", str(untrained), "--data", str(tmp_path / "data")]) == 2
    assert "cats" in capsys.readouterr().err


def _overconfident(n: int, seed: int, sharpness: float = 4.0):
    """Labels drawn from softmax(z); the 'model' reports sharpness * z (over-confident)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 6, generator=generator) * 1.5
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=generator).squeeze(1)
    return z * sharpness, labels


def test_temperature_scaling_keeps_predictions_and_improves_calibration():
    fit_logits, fit_labels = _overconfident(3000, seed=1)
    held_logits, held_labels = _overconfident(3000, seed=2)
    temperature = fit_temperature(fit_logits, fit_labels)
    assert temperature == pytest.approx(4.0, rel=0.15)  # recovers the injected over-confidence
    scaled = held_logits / temperature
    assert torch.equal(scaled.argmax(1), held_logits.argmax(1))
    assert negative_log_likelihood(held_logits, held_labels, temperature) < negative_log_likelihood(held_logits, held_labels)
    before = expected_calibration_error(torch.softmax(held_logits, 1), held_labels)
    after = expected_calibration_error(torch.softmax(scaled, 1), held_labels)
    assert after < before / 2
    summary = summarise(held_logits, held_labels, CLASSES, temperature)
    assert summary["ece_after_temperature"] == pytest.approx(after)
    assert summary["nll_after_temperature"] < summary["nll_before_temperature"]


def test_expected_calibration_error_matches_its_definition():
    # Ten predictions at confidence 0.9, of which 7 are right: one bin, gap |0.7 - 0.9|.
    probabilities = torch.full((10, 2), 0.1)
    probabilities[:, 0] = 0.9
    labels = torch.tensor([0] * 7 + [1] * 3)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.2)
    # Calibrated labels drawn from the model's own probabilities: a small error.
    logits, labels = _overconfident(20000, seed=3, sharpness=1.0)
    assert expected_calibration_error(torch.softmax(logits, 1), labels) < 0.02


def test_saved_temperature_must_be_positive(untrained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(untrained, copy)
    config = json.loads((copy / "config.json").read_text())
    config["temperature"] = -1
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="temperature"):
        load_classifier(copy)
    assert math.isfinite(load_classifier(untrained).temperature)


def test_eval_of_a_zero_shot_attribute_labeller_matches_its_own_predictions(tiny_clip_dir, tmp_path, capsys):
    """`eval classifier --model clip-time:CLIP` scores the CLIP's zero-shot time of day on a world
    labelled by time: the same confusion matrix its predict() gives image by image."""
    from classifier.data import load_split, read_image
    from classifier.labellers import load_labeller

    world = build_world(tmp_path / "w", WorldConfig(n=24, size=32, seed=4, test_fraction=0.5, label_by="time"),
                        progress=False)
    spec = f"clip-time:{tiny_clip_dir}"
    assert main(["eval", "classifier", "--model", spec, "--data", str(world), "--format", "json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    labeller = load_labeller(spec)
    assert evaluation["classes"] == list(labeller.classes) == ["day", "golden", "night", "overcast"]
    split = load_split(world, "test").relabelled(labeller.classes)
    images = torch.stack([read_image(path).float() / 127.5 - 1 for path, _ in split.samples])
    predicted = labeller.predict(images).argmax(1)
    expected = torch.zeros(4, 4, dtype=torch.long)
    for (_, truth), guess in zip(split.samples, predicted.tolist(), strict=True):
        expected[truth, guess] += 1
    assert evaluation["confusion_matrix"] == expected.tolist()
    assert evaluation["images"] == len(split.samples) == 12
    assert evaluation["model"] == spec and evaluation["temperature"] == 1.0
