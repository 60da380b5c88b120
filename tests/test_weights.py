"""Model catalogue, weights resolution (path > cache > zoo > download) and ``artbias models``."""

import copy
import hashlib
import json
import re

import pytest

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.weights import catalog, resolve
from data.weights.catalog import ModelEntry, ModelFile, get_entry, list_models
from gallery.cli import main


@pytest.fixture(autouse=True)
def isolated(isolated_weights):
    """Every test here sees an empty cache and zoo and no network (tests/conftest.py)."""


def _entry(name="toy-model", payload=b"weights", sha256="auto", **changes):
    digest = hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256
    fields = dict(
        name=name, kind="generator", family="dcgan", description="toy", licence="MIT",
        non_commercial=False, training_data="none",
        files=(ModelFile("model.bin", url="https://example.invalid/model.bin", sha256=digest),),
    )
    return ModelEntry(**(fields | changes))


# -- the catalogue -------------------------------------------------------------------------
REAL_ZOO = catalog.CATALOG_PATH.parents[1] / "zoo"


@pytest.fixture
def edit_catalogue(tmp_path, monkeypatch):
    """``edit(name, change)``: from now on the catalogue is a copy whose entry ``name`` went
    through ``change(raw_entry_dict)``."""
    raw = json.loads(catalog.CATALOG_PATH.read_text())

    def edit(name, change):
        document = copy.deepcopy(raw)
        change(next(m for m in document["models"] if m["name"] == name))
        path = tmp_path / f"catalog-{len(list(tmp_path.glob('catalog-*')))}.json"
        path.write_text(json.dumps(document))
        monkeypatch.setattr(catalog, "CATALOG_PATH", path)
        catalog._catalogue.cache_clear()

    catalog._catalogue.cache_clear()
    yield edit
    catalog._catalogue.cache_clear()


def test_every_file_carries_a_full_sha256_or_says_why_not():
    assert len(json.loads(catalog.CATALOG_PATH.read_text())["models"]) == len(list_models())
    for entry in list_models():
        for spec in entry.files:
            if spec.sha256 is None:
                assert spec.sha256_unknown and spec.sha256_unknown.strip(), (entry.name, spec.name)
            else:
                assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256), (entry.name, spec.name)
            named = re.search(r"-([0-9a-f]{8,})\.pth$", spec.url or "")  # torchvision names carry a hash prefix
            if named and spec.sha256:
                assert spec.sha256.startswith(named[1]), (entry.name, spec.name)
        if entry.zoo is not None:  # the starter zoo ships here: its hashes are always known
            assert entry.files and all(spec.sha256 for spec in entry.files), entry.name
    names = {e.name for e in list_models()}
    for expected in ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512", "stylegan2-church",
                     "stylegan2-ffhq", "ddpm-ema-church-256", "dcgan-world", "clip-world"):
        assert expected in names
    assert {e.kind for e in list_models()} == set(catalog.KINDS)
    assert all(e.kind == "clip" for e in list_models("clip"))


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("stylegan2-church", lambda e: e.update(latent={"z_dim": 512}), "fields nothing reads"),
        ("stylegan2-church", lambda e: e["source"]["files"][0].pop("sha256_unknown"), "sha256 or sha256_unknown"),
        ("dcgan-world", lambda e: e["source"]["files"][0].update(sha256="abc"), "64 hex digits"),
        ("clip-world", lambda e: e.pop("preprocessing"), "needs preprocessing"),
        ("resnet18-imagenet1k-v1", lambda e: e["preprocessing"].pop("std"), r"needs preprocessing with \['std'\]"),
        ("dcgan-world", lambda e: e.update(preprocessing={"size": 64}), "takes no preprocessing"),
    ],
)
def test_catalogue_refuses_unread_fields_unexplained_hashes_and_missing_preprocessing(edit_catalogue, name, change, message):
    edit_catalogue(name, change)
    with pytest.raises(ConfigError, match=message):
        list_models()


def test_nvidia_models_are_flagged_non_commercial():
    for entry in list_models("generator"):
        assert entry.non_commercial == (entry.family == "stylegan2" and entry.zoo is None), entry.name


def test_clip_preprocessing_comes_from_its_catalogue_entry(edit_catalogue, monkeypatch):
    from search.clip import load_clip

    monkeypatch.setattr(resolve, "ZOO_DIR", REAL_ZOO)
    shipped = load_clip("clip-world")
    recorded = get_entry("clip-world").preprocessing
    assert shipped.mean == tuple(recorded["mean"]) and shipped.std == tuple(recorded["std"])
    assert shipped.image_size == recorded["size"] and shipped.interpolation == recorded["interpolation"]

    edit_catalogue("clip-world", lambda e: e["preprocessing"].update(mean=[0.1, 0.2, 0.3], interpolation="bilinear"))
    edited = load_clip("clip-world")
    assert edited.mean == (0.1, 0.2, 0.3) and edited.interpolation == "bilinear"
    assert edited.std == shipped.std
    edit_catalogue("clip-world", lambda e: e["preprocessing"].update(size=224))
    with pytest.raises(CheckpointError, match="preprocessing size 224 but the network takes 64"):
        load_clip("clip-world")


def test_published_resnet_preprocessing_comes_from_its_catalogue_entry(edit_catalogue, tmp_path):
    from classifier.architectures import get_arch_config
    from classifier.pretrained import default_preprocessing
    from classifier.train import TrainConfig, _preprocessing

    arch = get_arch_config("resnet50")
    assert arch.preprocessing is None and arch.imagenet_weights == "resnet50-imagenet1k-v2"
    assert default_preprocessing(arch) == get_entry("resnet50-imagenet1k-v2").preprocessing
    edit_catalogue("resnet50-imagenet1k-v2", lambda e: e["preprocessing"].update(mean=[0.1, 0.2, 0.3], size=160, resize_size=200))
    config = TrainConfig(arch="resnet50", data=str(tmp_path), out=str(tmp_path / "out"), workers=0).resolved(arch)
    assert config.size == 160  # the default input size is the weights' own
    used = _preprocessing(arch, config.size)
    assert used["mean"] == [0.1, 0.2, 0.3] and used["resize_size"] == 200
    # An architecture trained from scratch keeps its own (it has no published weights).
    small = get_arch_config("resnet-small")
    assert default_preprocessing(small) == small.preprocessing


def test_a_torchvision_cached_backbone_is_checked_against_the_catalogue(tmp_path, monkeypatch):
    from classifier.architectures import get_arch_config
    from classifier.pretrained import imagenet_weights_path, torchvision_cache_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    entry = get_entry("resnet18-imagenet1k-v1")
    cached = torchvision_cache_file(entry.files[0].name)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x" * entry.files[0].size)  # the right size, not the right bytes
    with pytest.raises(CheckpointError, match="sha256"):
        imagenet_weights_path(get_arch_config("resnet18"))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="stylegan2-church"):
        get_entry("stylegan2-chruch")


def test_zoo_models_are_listed_absent_unless_their_folder_exists(monkeypatch):
    monkeypatch.setattr(resolve, "ZOO_DIR", catalog.CATALOG_PATH.parents[1] / "zoo")  # the real zoo
    zoo = [e for e in list_models() if e.zoo is not None]
    # 4 generators, 3 CLIPs (clip-world and two counterfactual ones), 2 scene classifiers, time-world, weather-world
    assert len(zoo) == 11
    for entry in zoo:
        folder = resolve.ZOO_DIR / entry.zoo
        shipped = folder.is_dir() and any(folder.iterdir())
        assert (resolve.locate(entry) is not None) == shipped


# -- resolution order -------------------------------------------------------------------------
def test_explicit_path_beats_cache_beats_zoo(tmp_path):
    entry = get_entry("stylegan2-church")
    filename = entry.files[0].name
    cached = resolve.model_cache_dir(entry) / filename
    zooed = resolve.ZOO_DIR / entry.name / filename
    for path in (cached, zooed):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"pickle")
    explicit = tmp_path / "mine.pkl"
    explicit.write_bytes(b"pickle")

    assert resolve.resolve_weights(entry.name, explicit) == explicit
    assert resolve.resolve_weights(entry.name) == cached
    cached.unlink()
    assert resolve.resolve_weights(entry.name) == zooed
    assert resolve.locate(entry).place == "zoo"


def test_multi_file_models_resolve_to_their_folder_only_when_complete():
    entry = get_entry("biggan-deep-128")
    folder = resolve.model_cache_dir(entry)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert resolve.locate(entry) is None  # the weights file is still missing
    (folder / "pytorch_model.bin").write_bytes(b"x")
    assert resolve.resolve_weights(entry) == folder


def test_missing_offline_names_the_cache_path_and_the_pull_command():
    entry = get_entry("stylegan2-church")
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve.resolve_weights(entry.name)
    message = str(caught.value)
    assert str(resolve.model_cache_dir(entry)) in message
    assert "artbias models pull stylegan2-church" in message
    assert entry.files[0].url in message


def test_missing_explicit_path_is_an_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve.resolve_weights("stylegan2-church", tmp_path / "nope.pkl")


# -- downloads (mocked) -----------------------------------------------------------------------
def test_download_lands_atomically_after_the_hash_checks_out(monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "0")
    entry = _entry(payload=b"good weights")
    target = resolve.model_cache_dir(entry) / "model.bin"
    seen = []

    def fake_fetch(url, destination):
        seen.append((url, destination))
        assert not target.exists()  # nothing at the final name while bytes are arriving
        destination.write_bytes(b"good weights")

    monkeypatch.setattr(resolve, "fetch", fake_fetch)
    assert resolve.resolve_weights(entry) == target
    assert target.read_bytes() == b"good weights"
    assert seen[0][0] == "https://example.invalid/model.bin" and seen[0][1] != target
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.bin"]
    resolve.resolve_weights(entry)  # present now: no second download
    assert len(seen) == 1


def test_hash_mismatch_is_rejected_and_leaves_nothing_in_the_cache(monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "0")
    entry = _entry(payload=b"expected bytes")
    monkeypatch.setattr(resolve, "fetch", lambda url, destination: destination.write_bytes(b"tampered"))
    with pytest.raises(CheckpointError, match="sha256"):
        resolve.resolve_weights(entry)
    folder = resolve.model_cache_dir(entry)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_hub_models_download_through_the_hub_fetcher(monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "0")
    entry = _entry(hf_repo="org/model", files=(ModelFile("a.json"), ModelFile("b.bin")))
    calls = []

    def fake_hub(repo, filename, revision, destination):
        calls.append((repo, filename))
        destination.write_text(filename)

    monkeypatch.setattr(resolve, "fetch_hf", fake_hub)
    folder = resolve.resolve_weights(entry)
    assert folder == resolve.model_cache_dir(entry)
    assert calls == [("org/model", "a.json"), ("org/model", "b.bin")]
    assert (folder / "b.bin").read_text() == "b.bin"


def test_a_failing_download_is_a_weights_not_found_error(monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "0")

    def unreachable(url, destination):
        destination.write_bytes(b"half")
        raise OSError("network unreachable")

    monkeypatch.setattr(resolve, "fetch", unreachable)
    entry = _entry()
    with pytest.raises(WeightsNotFoundError, match="network unreachable"):
        resolve.resolve_weights(entry)
    folder = resolve.model_cache_dir(entry)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_sha256_file_and_verify(tmp_path):
    payload = b"abc" * 1000
    entry = _entry(payload=payload)
    folder = resolve.model_cache_dir(entry)
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(payload)
    assert resolve.sha256_file(folder / "model.bin") == hashlib.sha256(payload).hexdigest()
    assert [c.status for c in resolve.verify_model(entry)] == ["ok"]
    (folder / "model.bin").write_bytes(b"corrupted")
    assert [c.status for c in resolve.verify_model(entry)] == ["mismatch"]


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTBIAS_CACHE", str(tmp_path / "elsewhere"))
    assert resolve.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("ARTBIAS_CACHE")
    assert resolve.cache_dir().name == "artbias"


# -- the command line -------------------------------------------------------------------------
def test_models_list_json_parses_and_shows_presence(capsys):
    entry = get_entry("stylegan2-cat")
    path = resolve.model_cache_dir(entry) / entry.files[0].name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert main(["models", "list", "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in listing["models"]}
    assert set(rows) == {e.name for e in list_models()}
    assert rows["stylegan2-cat"]["present"] and rows["stylegan2-cat"]["path"] == str(path)
    assert not rows["stylegan2-church"]["present"] and rows["stylegan2-church"]["non_commercial"]
    assert main(["models", "list", "--kind", "clip"]) == 0
    table = capsys.readouterr().out
    assert "clip-vit-b-32-openai" in table and "stylegan2-cat" not in table


def test_models_pull_unknown_name_exits_2_with_a_suggestion(capsys):
    assert main(["models", "pull", "biggan-deep-265"]) == 2
    assert "biggan-deep-256" in capsys.readouterr().err


def test_models_pull_offline_exits_2_naming_the_cache(capsys):
    assert main(["models", "pull", "ddpm-ema-church-256"]) == 2
    assert str(resolve.model_cache_dir(get_entry("ddpm-ema-church-256"))) in capsys.readouterr().err


def test_models_verify_fails_on_missing_or_mismatched_files(capsys):
    assert main(["models", "verify"]) == 0  # nothing present, nothing wrong
    assert main(["models", "verify", "stylegan2-church"]) == 1
    entry = get_entry("biggan-deep-256")
    folder = resolve.model_cache_dir(entry)
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(b"x" * 715)  # right size, wrong bytes
    assert main(["models", "verify", "biggan-deep-256"]) == 1
    assert "mismatch" in capsys.readouterr().out
