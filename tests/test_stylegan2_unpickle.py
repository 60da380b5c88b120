"""The safe unpickler: NVIDIA's formats load as plain data; nothing in a file ever runs."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import conftest
import pytest
import torch

from data.errors import CheckpointError
from generators.stylegan2 import load_network_pickle
from generators.stylegan2.unpickle import (
    PersistentRecord,
    TFNetworkRecord,
    safe_load_pickle,
    safe_loads,
)

FIXTURES = conftest.FIXTURES / "stylegan2"
SNAPSHOT = FIXTURES / "tiny-network-snapshot.pkl"
TF_PICKLE = FIXTURES / "tiny-tf-config-f.pkl"


class _Reduces:
    """An object whose unpickling calls ``func(*args)``: what a malicious pickle does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _touch_payloads(marker: Path) -> dict[str, object]:
    return {
        "os.system": _Reduces(os.system, f"touch {marker}"),
        "builtins.exec": _Reduces(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": _Reduces(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": _Reduces(subprocess.call, ["touch", str(marker)]),
    }


def test_snapshot_reads_as_plain_records_and_source_stays_text():
    data = safe_load_pickle(SNAPSHOT)
    assert set(data) >= {"G", "D", "G_ema", "training_set_kwargs"}
    record = data["G_ema"]
    assert isinstance(record, PersistentRecord) and record.class_name == "Generator"
    assert isinstance(record.module_src, str) and "never execute" in record.module_src
    assert record.state["_init_kwargs"]["z_dim"] == 32
    const = record.state["_modules"]["synthesis"].state["_modules"]["b4"].state["_parameters"]["const"]
    assert isinstance(const, torch.Tensor) and tuple(const.shape) == (64, 4, 4)
    assert type(data["training_set_kwargs"]).__mro__[1] is dict  # EasyDict -> a plain dict


def test_tf_pickle_reads_as_network_records_with_numpy_variables():
    G, D, Gs = safe_load_pickle(TF_PICKLE)
    assert all(isinstance(n, TFNetworkRecord) for n in (G, D, Gs))
    assert Gs.state["name"] == "Gs" and isinstance(Gs.state["build_module_src"], str)
    variables = dict(Gs.state["components"]["synthesis"].state["variables"])
    assert variables["4x4/Conv/weight"].shape == (3, 3, 64, 64)


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval", "subprocess.call"])
def test_code_running_globals_are_refused_before_anything_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_touch_payloads(marker)[payload])
    with pytest.raises(CheckpointError, match="refusing to load global"):
        safe_loads(data)
    assert not marker.exists()


def test_payload_hidden_inside_a_snapshot_dict_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Reduces(os.system, f"touch {marker}"), "G": None}))
    with pytest.raises(CheckpointError, match="system"):
        load_network_pickle(path)
    assert not marker.exists()


def test_unexpected_global_is_named_in_the_error():
    data = pickle.dumps(_Reduces(Path, "/tmp"))
    with pytest.raises(CheckpointError, match="pathlib"):
        safe_loads(data)


def test_payload_in_tensor_storage_bytes_is_refused(tmp_path):
    # torch.storage._load_from_bytes is allowed, but its bytes load with weights_only=True.
    marker = tmp_path / "pwned"
    inner = pickle.dumps(_Reduces(os.system, f"touch {marker}"), protocol=2)
    data = pickle.dumps(_Reduces(torch.storage._load_from_bytes, inner))
    with pytest.raises(CheckpointError, match="tensor storage"):
        safe_loads(data)
    assert not marker.exists()


def _fake_persistence_module(monkeypatch) -> types.FunctionType:
    """Register a stand-in ``torch_utils.persistence`` so pickle can name its function."""

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only pickled, never called
        raise AssertionError("the real reconstruct function must never be called")

    package = types.ModuleType("torch_utils")
    module = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = module.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    package.persistence = module
    monkeypatch.setitem(sys.modules, "torch_utils", package)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)
    return _reconstruct_persistent_obj


def test_persistence_module_src_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    reconstruct = _fake_persistence_module(monkeypatch)
    evil_src = f"open({str(marker)!r}, 'w').write('module_src ran')\n"
    meta = {"type": "class", "version": 6, "module_src": evil_src, "class_name": "Generator",
            "state": {"_parameters": {}, "_buffers": {}, "_modules": {}}}
    data = pickle.dumps({"G_ema": _Reduces(reconstruct, meta)})
    monkeypatch.delitem(sys.modules, "torch_utils.persistence")
    monkeypatch.delitem(sys.modules, "torch_utils")

    record = safe_loads(data)["G_ema"]
    assert isinstance(record, PersistentRecord) and record.module_src == evil_src
    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):  # no init kwargs, no tensors: refused as a network
        load_network_pickle(path)
    assert not marker.exists()
    assert "torch_utils.persistence" not in sys.modules  # nothing was imported either


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "flipped"])
def test_corrupt_files_raise_checkpoint_error(tmp_path, damage):
    original = SNAPSHOT.read_bytes()
    damaged = {
        "truncated": original[: len(original) // 2],
        "garbage": os.urandom(4096),
        "empty": b"",
        "flipped": original[:200] + bytes(b ^ 0xFF for b in original[200:400]) + original[400:],
    }[damage]
    path = tmp_path / "broken.pkl"
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError):
        load_network_pickle(path)


def test_missing_file_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_network_pickle(tmp_path / "nope.pkl")


def test_a_plain_pickle_of_other_data_is_not_a_network(tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(CheckpointError, match="not a StyleGAN2 network pickle"):
        load_network_pickle(path)
