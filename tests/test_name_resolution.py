"""A catalogue name always means the catalogue model, even beside a folder of that name.

A user who names an output folder after its model (``artbias validate --clip clip-world --out
clip-world``) must not have every later ``clip-world`` read that folder. A folder is read when
the name is no catalogue name, or when it is written as a path (``./NAME``, absolute, ``~``)
or, for a CLIP, as ``local-dir:NAME``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from classifier.labellers import labeller_problem, load_labeller
from classifier.labellers import weights_needed as labeller_weights
from data.errors import CheckpointError
from data.weights.catalog import local_folder
from search.clip import clip_folder, clip_problem, load_clip
from search.clip import weights_needed as clip_weights

ZOO = Path(__file__).resolve().parents[1] / "data" / "zoo"


@pytest.fixture
def shadowing_cwd(tmp_path, monkeypatch):
    """A working directory holding empty folders named like catalogue models."""
    for name in ("clip-world", "classifier-world"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_one_rule(shadowing_cwd):
    assert local_folder("clip-world") is None and local_folder("classifier-world") is None
    assert local_folder("./clip-world") == Path("clip-world")
    assert local_folder(str(shadowing_cwd / "clip-world")) == shadowing_cwd / "clip-world"
    (shadowing_cwd / "my-clip").mkdir()
    assert local_folder("my-clip") == Path("my-clip")  # no catalogue name: the folder
    assert local_folder("no-such-thing") is None and local_folder("") is None


def test_a_catalogue_clip_name_beside_a_folder_of_that_name_is_the_catalogue_model(shadowing_cwd):
    assert clip_problem("clip-world") is None
    assert clip_weights("clip-world") == ["clip-world"]
    clip = load_clip("clip-world")
    assert clip.identity["catalogue"] == "clip-world"
    assert Path(clip.identity["path"]).resolve() == (ZOO / "clip-world").resolve()
    assert clip_folder(clip).resolve() == (ZOO / "clip-world").resolve()


@pytest.mark.parametrize("name", ["./clip-world", "local-dir:clip-world"])
def test_a_folder_written_as_a_path_is_still_the_folder(shadowing_cwd, name):
    assert "has no open_clip_config.json" in clip_problem(name)
    assert clip_weights(name) == []
    if name.startswith("./"):
        with pytest.raises(CheckpointError, match="has no open_clip_config.json"):
            load_clip(name)


def test_a_real_clip_folder_given_as_a_path_still_loads(shadowing_cwd):
    copy = shutil.copytree(ZOO / "clip-world", shadowing_cwd / "copies" / "clip-world")
    for name in (str(copy), "./copies/clip-world", f"local-dir:{copy}"):
        assert clip_problem(name) is None and clip_weights(name) == []
        clip = load_clip(name)
        assert "catalogue" not in clip.identity
        assert clip_folder(clip).resolve() == copy.resolve()


def test_a_catalogue_labeller_name_beside_a_folder_of_that_name_is_the_catalogue_model(shadowing_cwd):
    assert labeller_problem("classifier-world") is None
    assert labeller_weights("classifier-world") == ["classifier-world"]
    assert labeller_problem("clip:clip-world") is None
    assert "has no config.json" in labeller_problem("./classifier-world")
    assert labeller_weights("./classifier-world") == []
    copy = shutil.copytree(ZOO / "classifier-world", shadowing_cwd / "copies" / "classifier-world")
    assert labeller_problem(str(copy)) is None and labeller_weights(str(copy)) == []
    assert load_labeller(str(copy)).classes == load_labeller("clip:clip-world").classes


def test_a_catalogue_labeller_name_loads_the_catalogue_model(shadowing_cwd):
    assert load_labeller("classifier-world").classes
