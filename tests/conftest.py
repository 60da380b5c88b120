"""Shared fixtures: tiny random models built on the fly (never shipped, never published)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

# Published-reference fixtures (made with the reference implementations; see each README).
FIXTURES = Path(__file__).resolve().parent / "fixtures"

TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A random open_clip model saved in open_clip's local-dir layout."""
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = CLIP(**TINY_CLIP_CONFIG)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": TINY_CLIP_CONFIG,
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear"},
    }
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "open_clip_model.safetensors"))
    return directory


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never touch the network, and never see the user's own model cache."""
    monkeypatch.setenv("ARTBIAS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ARTBIAS_CACHE", str(tmp_path_factory.getbasetemp() / "artbias-cache"))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@contextmanager
def write_lock_held(database: Path, seconds: float = 1.5):
    """Another process holds a DuckDB write transaction on ``database`` for ``seconds``."""
    holder = textwrap.dedent(
        f"""
        import time, duckdb
        con = duckdb.connect({str(database)!r})
        con.execute("BEGIN TRANSACTION")
        print("locked", flush=True)
        time.sleep({seconds})
        con.execute("COMMIT")
        con.close()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield
    finally:
        process.wait(timeout=30)


def _no_network(*args, **kwargs):
    raise AssertionError("a test tried to download")


@pytest.fixture()
def isolated_weights(tmp_path, monkeypatch):
    """An empty cache and zoo, no downloads, no Hugging Face cache: nothing outside tmp."""
    from data.weights import resolve

    monkeypatch.setenv("ARTBIAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTBIAS_OFFLINE", "1")
    monkeypatch.setattr(resolve, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setattr(resolve, "_hf_cache_folder", lambda entry: None)
    monkeypatch.setattr(resolve, "fetch", _no_network)
    monkeypatch.setattr(resolve, "fetch_hf", _no_network)


APP = Path(__file__).resolve().parents[1] / "gallery" / "app" / "app.py"
APP_TIMEOUT = 60


@pytest.fixture
def open_app(monkeypatch):
    """open_app(gallery, page=..., **query) -> a Streamlit AppTest of the gallery app that has
    run once without an exception."""
    from streamlit.testing.v1 import AppTest

    def start(gallery: Path, **query: str) -> AppTest:
        monkeypatch.setenv("ARTBIAS_GALLERY", str(gallery))
        app = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)
        for name, value in query.items():
            app.query_params[name] = value
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        return app

    return start
