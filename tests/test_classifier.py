"""Scene classifier: training on a tiny world, the saved folder, loading errors, prediction."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from classifier.architectures import build_network, get_arch_config, list_archs
from classifier.model import load_classifier
from classifier.prediction import classify_files
from classifier.pretrained import initial_weights
from classifier.train import TrainConfig, train_classifier
from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.world.builder import WorldConfig, build_world
from gallery.cli import main


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny convolutions run faster on one thread than on two contended ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "w"
    return build_world(out, WorldConfig(n=300, size=32, seed=5, test_fraction=0.2), progress=False)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "resnet-small"
    config = TrainConfig(
        arch="resnet-small", data=str(world), out=str(out), epochs=8, lr=0.01, size=32,
        batch_size=16, seed=0, workers=0, progress=False,
    )
    return train_classifier(config)


def _test_images(world, count=12):
    from classifier.data import load_split, read_image

    split = load_split(world, "test")
    samples = split.samples[:: max(1, len(split) // count)][:count]
    images = torch.stack([read_image(p).float() / 127.5 - 1 for p, _ in samples])
    return images, [p for p, _ in samples]


def _model_inputs(classifier, images):
    from classifier.data import preprocess

    return preprocess((images + 1) / 2, classifier.preprocessing)


def test_tiny_resnet_small_learns_far_above_chance(trained):
    evaluation = trained.evaluation
    assert evaluation["split"] == "test" and evaluation["images"] == 60
    # Chance is 1/6; a few hundred steps on 32 px scenes reach roughly 0.6-0.75 here.
    assert evaluation["accuracy"] > 0.5
    history = json.loads((trained.path / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_saved_folder_describes_itself(trained, world):
    folder = trained.path
    for name in ("config.json", "model.safetensors", "evaluation.json", "confusion.png", "card.md", "history.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["classes"] == ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    assert config["preprocessing"]["size"] == 32
    assert config["temperature"] == pytest.approx(trained.temperature)
    assert config["training"]["seed"] == 0
    assert config["training"]["data"]["manifest_sha256"]
    assert config["versions"]["torch"]
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert evaluation["classes"] == config["classes"]
    assert "artbias train classifier --arch resnet-small" in (folder / "card.md").read_text()


def test_reloaded_classifier_predicts_the_same(trained, world):
    images, _ = _test_images(world)
    again = load_classifier(trained.path)
    assert again.classes == trained.classes and again.temperature == trained.temperature
    assert torch.allclose(again.predict(images), trained.predict(images), atol=1e-6)


def test_predict_gives_calibrated_distributions_at_any_size(trained, world):
    images, _ = _test_images(world)
    probabilities = trained.predict(images)
    assert probabilities.shape == (len(images), 6)
    assert torch.allclose(probabilities.sum(1), torch.ones(len(images)), atol=1e-5)
    # The temperature divides the logits, so it changes confidence but never the argmax.
    with torch.no_grad():
        logits = trained.network(_model_inputs(trained, images))
    assert torch.allclose(probabilities, torch.softmax(logits / trained.temperature, 1), atol=1e-5)
    # Larger and non-square images are resized (antialiased) to the model's size.
    big = torch.nn.functional.interpolate(images, size=(96, 80), mode="bilinear")
    assert trained.predict(big).argmax(1).eq(probabilities.argmax(1)).float().mean() >= 0.5


def test_wrong_class_count_is_a_clear_error(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["classes"] = config["classes"][:5]
    config["num_classes"] = 5
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="6-class head but config.json lists 5 classes"):
        load_classifier(copy)


def test_corrupt_or_truncated_weights_are_a_clear_error(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    weights = copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_classifier(copy)
    weights.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_classifier(copy)


def test_missing_files_are_a_clear_error(trained, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        load_classifier(copy)
    (copy / "config.json").unlink()
    with pytest.raises(CheckpointError, match="lacks config.json"):
        load_classifier(copy)


def test_catalogue_backbone_is_not_a_scene_classifier():
    with pytest.raises(ConfigError, match="not a trained scene classifier"):
        load_classifier("resnet50-imagenet1k-v2")


def test_imagenet_weights_absent_offline_is_an_error_not_random_weights(world, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "1")
    monkeypatch.setenv("ARTBIAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = tmp_path / "out"
    config = TrainConfig(arch="resnet50", data=str(world), out=str(out), weights="imagenet", epochs=1, workers=0, progress=False)
    with pytest.raises(WeightsNotFoundError, match="resnet50-imagenet1k-v2.*resnet50-11ad3fa6.pth"):
        train_classifier(config)
    assert not out.exists()
    # The command line says the same in one line, exit code 2.
    assert main(["train", "classifier", "--arch", "resnet50", "--data", str(world), "--out", str(out), "--quiet"]) == 2


@pytest.mark.parametrize("arch", ["resnet50", "resnet18"])
def test_resnets_match_torchvision_layout_and_name_their_imagenet_weights(arch):
    import torchvision

    from data.weights.catalog import get_entry

    config = get_arch_config(arch)
    assert get_entry(config.imagenet_weights).options["torchvision_builder"] == arch
    ours = build_network(config, 6).state_dict()
    reference = getattr(torchvision.models, arch)().state_dict()
    assert ours.keys() == reference.keys()
    mismatched = [k for k in ours if ours[k].shape != reference[k].shape]
    assert mismatched == ["fc.weight", "fc.bias"]  # only the new head differs


def test_architectures_are_configs_and_small_is_small():
    assert {"resnet50", "resnet18", "resnet-small"} <= set(list_archs())
    small = build_network(get_arch_config("resnet-small"), 6)
    assert sum(p.numel() * p.element_size() for p in small.parameters()) <= 10 * 2**20
    with pytest.raises(ConfigError, match="unknown classifier architecture"):
        get_arch_config("resnet1000")


def test_weights_path_loads_the_backbone_and_keeps_a_new_head(trained, tmp_path):
    network = build_network(trained.arch, 3)
    source = initial_weights(network, trained.arch, str(trained.path))
    assert source == str(trained.path)
    assert torch.equal(network.state_dict()["layer2.0.conv1.weight"], trained.network.state_dict()["layer2.0.conv1.weight"])
    assert network.fc.out_features == 3
    with pytest.raises(CheckpointError, match="do not fit this architecture"):
        initial_weights(build_network(get_arch_config("resnet18"), 6), get_arch_config("resnet18"), str(trained.path))


def test_classify_reports_files_that_are_not_images(trained, world, tmp_path, capsys):
    _, paths = _test_images(world, count=3)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:40])
    result = classify_files(trained, [paths[0], notes, paths[1], broken, tmp_path / "missing.png", paths[2]])
    assert [str(p) for p in result.paths] == [str(p) for p in paths]
    assert {p.name for p, _ in result.failures} == {"notes.txt", "broken.png", "missing.png"}
    rows = result.rows()
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)

    code = main(["classify", str(paths[0]), str(notes), "--model", str(trained.path), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)
    assert len(report["results"]) == 1 and report["failures"][0]["path"] == str(notes)
    assert "notes.txt" in captured.err
    # Nothing classifiable: bad input, one line and exit 2, still no traceback.
    assert main(["classify", str(notes), "--model", str(trained.path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("artbias: error: no image could be classified")


def test_training_refuses_to_overwrite_a_non_empty_folder(world, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    config = TrainConfig(arch="resnet-small", data=str(world), out=str(out), epochs=1, size=32, workers=0, progress=False)
    with pytest.raises(ConfigError, match="not empty"):
        train_classifier(config)
    assert (out / "keep.txt").read_text() == "mine"
