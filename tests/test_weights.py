"""Model catalogue, weights resolution (path > cache > zoo > download) and ``artbias models``."""

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
def test_catalogue_entries_have_every_field_and_honest_hashes():
    raw = json.loads(catalog.CATALOG_PATH.read_text())["models"]
    assert len(raw) == len(list_models())
    for item in raw:
        assert set(catalog.REQUIRED_FIELDS) <= set(item), item["name"]
        for spec in item["source"].get("files", []):
            assert "sha256" in spec and "size" in spec, item["name"]
            assert spec["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", spec["sha256"])
    names = {e.name for e in list_models()}
    for expected in ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512", "stylegan2-church",
                     "stylegan2-ffhq", "ddpm-ema-church-256", "dcgan-world", "clip-world"):
        assert expected in names
    assert {e.kind for e in list_models()} == set(catalog.KINDS)
    assert all(e.kind == "clip" for e in list_models("clip"))


def test_nvidia_models_are_flagged_non_commercial_and_preprocessing_travels():
    for entry in list_models("generator"):
        assert entry.non_commercial == (entry.family == "stylegan2" and entry.zoo is None), entry.name
    clip = get_entry("clip-vit-b-32-openai")
    assert {"mean", "std", "size", "interpolation"} <= set(clip.preprocessing)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="stylegan2-church"):
        get_entry("stylegan2-chruch")


def test_zoo_models_are_listed_absent_unless_their_folder_exists(monkeypatch):
    monkeypatch.setattr(resolve, "ZOO_DIR", catalog.CATALOG_PATH.parents[1] / "zoo")  # the real zoo
    zoo = [e for e in list_models() if e.zoo is not None]
    assert len(zoo) == 6
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
