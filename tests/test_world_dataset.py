"""The world dataset builder: exact composition, byte-identical rebuilds, clean failures."""

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data.errors import ArtbiasError, ConfigError
from data.world.builder import WorldConfig, build_world, class_counts, parse_composition
from data.world.params import CLASSES
from gallery.cli import main


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def png_counts(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in root.rglob("*.png"):
        key = f"{path.parent.parent.name}/{path.parent.name}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_cli_builds_identical_trees_with_all_classes(tmp_path):
    args = ["data", "world", "--n", "60", "--seed", "7", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    first, second = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert first == second  # PNGs, manifest.parquet and world.json byte for byte
    assert {p.split("/")[1] for p in first if p.endswith(".png")} == set(CLASSES)
    assert main([*args[:-3], "--seed", "8", "--quiet", "--out", str(tmp_path / "c")]) == 0
    assert tree_digest(tmp_path / "c") != first


def test_composition_is_exact_and_nothing_else_is_written(tmp_path):
    out = tmp_path / "world"
    code = main(["data", "world", "--out", str(out), "--n", "200", "--quiet", "--test-fraction",
                 "0", "--composition", "mountain=0.5,sea=0.25,street=0.25"])
    assert code == 0
    assert png_counts(out) == {"train/mountain": 100, "train/sea": 50, "train/street": 50}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.parquet", "train", "world.json"]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["mountain", "sea", "street"]


def test_manifest_describes_every_image(tmp_path):
    out = build_world(tmp_path / "w", WorldConfig(n=30, seed=3, test_fraction=0.2), progress=False)
    table = pq.read_table(out / "manifest.parquet").to_pandas()
    assert len(table) == 30
    expected = {"id", "split", "path", "class", "time", "weather", "palette", "sky", "horizon",
                "layers", "view", "density", "noise_seed", "aesthetic", "aesthetic_word",
                "aesthetic_polarity", "caption", "seed"}
    assert expected <= set(table.columns)
    for path, split, cls in zip(table["path"], table["split"], table["class"], strict=True):
        assert (out / path).is_file()
        assert path.startswith(f"{split}/{cls}/")
    assert (table["split"] == "test").sum() == 6  # 5 per class x 0.2, rounded per class
    assert table["id"].is_unique and (table["seed"] == 3).all()


@pytest.mark.parametrize(
    ("n", "weights", "expected"),
    [
        (10, {"mountain": 1 / 3, "sea": 1 / 3, "street": 1 / 3}, {"mountain": 4, "sea": 3, "street": 3}),
        (7, {c: 1 / 6 for c in CLASSES}, {"buildings": 2, "forest": 1, "glacier": 1, "mountain": 1, "sea": 1, "street": 1}),
        (5, {"forest": 0.0, "glacier": 1.0}, {"glacier": 5}),
    ],
)
def test_largest_remainder_counts(n, weights, expected):
    counts = class_counts(n, weights)
    assert sum(counts.values()) == n
    assert {k: v for k, v in counts.items() if v} == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n"),
        (["--n", "-3"], "--n"),
        (["--n", "5", "--composition", "mountain=0.5,lake=0.5"], "lake"),
        (["--n", "5", "--composition", "mountain=0.5,sea=0.4"], "sum to 1"),
        (["--n", "5", "--composition", "mountain=-0.5,sea=1.5"], ">= 0"),
        (["--n", "5", "--size", "31"], "--size"),
        (["--n", "5", "--test-fraction", "1.5"], "--test-fraction"),
    ],
)
def test_bad_arguments_fail_clearly_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["data", "world", "--out", str(out), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["data", "world", "--out", str(blocker / "world"), "--n", "3", "--quiet"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        build_world(out, WorldConfig(n=6), progress=False)
    assert (out / "keep.txt").exists()
    build_world(out, WorldConfig(n=6), force=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "manifest.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["w"]  # no staging folders left behind


def test_a_failure_mid_build_leaves_nothing(tmp_path, monkeypatch):
    import data.world.builder as builder

    calls = {"n": 0}

    def failing_png(path, image):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ArtbiasError("disk on fire")
        path.write_bytes(b"png")

    monkeypatch.setattr(builder, "write_png", failing_png)
    with pytest.raises(ArtbiasError, match="disk on fire"):
        build_world(tmp_path / "w", WorldConfig(n=12), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_parse_composition_rejects_malformed_text():
    assert parse_composition("sea=0.5, street=0.5") == {"sea": 0.5, "street": 0.5}
    for text in ("sea", "sea=half,street=0.5", "sea=0.5,sea=0.5", "=1"):
        with pytest.raises(ConfigError):
            parse_composition(text)


def test_manifest_rows_rebuild_the_scenes(tmp_path):
    """A manifest keeps every attribute: its rows give back the very scenes (and captions)."""
    import numpy as np
    from PIL import Image

    from data.world.aesthetic import AestheticRule
    from data.world.builder import uniform_composition
    from data.world.captions import caption_scenes
    from data.world.params import SceneBatch
    from data.world.render import render_scenes

    out = build_world(tmp_path / "w", WorldConfig(n=24, composition=uniform_composition(), size=32, seed=9),
                      progress=False)
    table = pq.read_table(out / "manifest.parquet").to_pandas()
    scenes = SceneBatch.from_records(table.to_dict("records"))
    captions = caption_scenes(scenes, AestheticRule.load())
    assert [c.text for c in captions] == list(table["caption"])

    first = np.asarray(Image.open(out / table["path"][0]))
    assert np.array_equal(render_scenes(scenes.select([0]), 32)[0], first)


def test_test_fraction_one_builds_a_pure_test_set(tmp_path):
    out = build_world(tmp_path / "fresh", WorldConfig(n=12, seed=5, size=32, test_fraction=1.0), progress=False)
    assert not (out / "train").exists()
    assert len(list((out / "test").rglob("*.png"))) == 12


def test_label_by_lays_images_into_attribute_folders(tmp_path):
    from data.world.params import TIMES

    out = build_world(tmp_path / "w", WorldConfig(n=24, seed=4, size=32, label_by="time"), progress=False)
    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    for _, row in manifest.iterrows():
        assert row["path"] == f"{row['split']}/{row['time']}/{row['class']}_{row['id']:06d}.png"
        assert (out / row["path"]).is_file()
    assert {p.name for p in (out / "train").iterdir()} <= set(TIMES)
    with pytest.raises(ConfigError, match="--label-by"):
        WorldConfig(n=6, label_by="palette").validate()
