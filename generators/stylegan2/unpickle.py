"""Reading NVIDIA's StyleGAN2 network pickles without running anything they contain.

Both published formats are Python pickles that name classes of NVIDIA's code
(``torch_utils.persistence``, ``dnnlib.tflib.network.Network``) and carry that code as text
(``module_src`` / ``build_module_src``). Plain ``pickle.load`` would import or execute it, so
``SafeUnpickler`` resolves only an allow-list of globals, each to an inert stand-in that
returns plain data (dicts, tensors, numpy arrays). Any other global is refused with a
``CheckpointError`` before anything is called, and the code text stays a string.
"""

from __future__ import annotations

import builtins
import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.errors import CheckpointError

try:  # numpy >= 2 moved the module; files of either era may name either spelling
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray


@dataclass
class PersistentRecord:
    """What ``torch_utils.persistence`` pickled for one network: its class name and state.

    ``module_src`` is the source text the original class came from; it is kept only as a
    string for inspection and is never imported or executed.
    """

    class_name: str
    state: dict
    version: int | None = None
    module_src: str = field(default="", repr=False)


class TFNetworkRecord:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps its pickled state as a dict."""

    def __init__(self):
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CheckpointError(f"TF network state must be a dict, got {type(state).__name__}")
        self.state = dict(state)

    def __repr__(self) -> str:
        return f"TFNetworkRecord(name={self.state.get('name')!r})"


class _PlainDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a dict that tolerates an (empty) pickled ``__dict__``."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise CheckpointError("persistent object without a state dict")
    return PersistentRecord(
        class_name=str(meta.get("class_name", "")),
        state=meta["state"],
        version=meta.get("version"),
        module_src=str(meta.get("module_src", "")),
    )


def _storage_from_bytes(data: Any) -> Any:
    # torch pickles each storage as the bytes of a torch.save of that storage; weights_only
    # keeps the nested load to tensors and storages.
    if not isinstance(data, bytes | bytearray):
        raise CheckpointError("tensor storage record is not bytes")
    try:
        return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except Exception as error:
        raise CheckpointError(
            f"a tensor storage holds something other than tensor data ({type(error).__name__}); "
            "refused by torch's weights-only loader"
        ) from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *state: Any) -> torch.Tensor:
    # Hooks and extra Python state of a parameter are dropped: they could only name code.
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("parameter record does not hold a tensor")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


def _numpy_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise CheckpointError(f"refusing numpy array subtype {subtype!r}")
    return _np_multiarray._reconstruct(np.ndarray, shape, dtype_code)


def _latin1_encode(text: Any, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("refusing _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


_NUMPY_MULTIARRAY = {
    "_reconstruct": _numpy_reconstruct,
    "scalar": _np_multiarray.scalar,
}

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("dnnlib", "EasyDict"): _PlainDict,
    ("dnnlib.util", "EasyDict"): _PlainDict,
    ("dnnlib.tflib.network", "Network"): TFNetworkRecord,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    # plain-value constructors older protocols reach through globals
    **{("builtins", name): getattr(builtins, name)
       for name in ("set", "frozenset", "slice", "complex", "bytearray")},
    **{(module, name): fn for module in ("numpy.core.multiarray", "numpy._core.multiarray")
       for name, fn in _NUMPY_MULTIARRAY.items()},
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals NVIDIA's network pickles need."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load global {module}.{name}: not a tensor, array or plain-data "
                "type of a StyleGAN2 network pickle (the file may be unsafe or of another kind)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(f"unexpected persistent id in pickle: {pid!r:.80}")


def safe_load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with ``SafeUnpickler``; every failure is a ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"network pickle not found: {path}")
    with path.open("rb") as handle:
        return safe_loads(handle.read(), source=str(path))


def safe_loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle bytes with ``SafeUnpickler``; every failure is a ``CheckpointError``."""
    try:
        return SafeUnpickler(io.BytesIO(data)).load()
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    except Exception as error:  # corrupt, truncated or malformed: never a raw pickle error
        raise CheckpointError(
            f"{source}: not a readable network pickle ({type(error).__name__}: {error})"
        ) from error
