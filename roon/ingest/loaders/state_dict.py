"""PyTorch state_dict files (``.pt``, ``.pth``, ``.bin``), read with ``weights_only=True``.

Only ``torch.load(..., weights_only=True)`` touches the file, so a file can hold
tensors, dicts and plain numbers but never makes Python run code: a pickled model
object is refused and reported as a :class:`~roon.errors.ModelFormatError`.

A state_dict stores no activations. Hidden layers get ``activation`` (default
``relu``, recorded as assumed) and the last layer ``output_activation`` (default
``linear``), the usual classifier convention. Layer order comes from the key names
(numerically: ``fc2`` before ``fc10``), see :func:`._common.layers_from_tensors`.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import ModelFormatError
from roon.ingest.loaders._common import Loaded, first_line, layers_from_tensors

__all__ = ["check_torch_archive", "read_state_dict"]

# Keys under which training checkpoints commonly nest the model's state_dict.
_WRAPPER_KEYS = ("state_dict", "model_state_dict")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", re.S)
# torch.save stores archive members uncompressed, so what torch.load allocates is about
# the file's size. A deflated member can expand ~1000x (10 MB of zeros → 10 GB): refuse
# archives that declare more than this many times their size, above a floor that no
# small file can hurt with.
_MAX_EXPANSION = 4
_EXPANSION_FLOOR = 64 << 20  # bytes


def read_state_dict(
    path: Path,
    activation: str | Sequence[str] | None = None,
    output_activation: str | None = None,
) -> Loaded:
    """Read a state_dict (or a checkpoint dict wrapping one) into dense layers.

    Args:
        path: the ``.pt``/``.pth``/``.bin`` file.
        activation: hidden-layer activation, or one name per layer; default ``relu``.
        output_activation: last-layer activation; default ``linear``.

    Raises:
        ModelFormatError: unreadable, truncated or corrupt file, a pickled object that
            is not a dict of tensors, NaN or infinite values.
        UnsupportedArchitectureError: a non-dense layer, or shapes that do not chain.
    """
    obj = _torch_load(path)
    state = _unwrap(obj)
    tensors = {str(key): _to_numpy(str(key), value) for key, value in state.items()}
    layers, assumed = layers_from_tensors(
        tensors,
        None,
        file_order=True,  # torch keeps registration order in the dict
        activation=activation,
        output_activation=output_activation,
    )
    return Loaded(layers, activation_assumed=assumed)


def check_torch_archive(path: Path) -> None:
    """Refuse a zip-format torch file whose members would expand far beyond its size.

    Reads only the zip's central directory (the sizes torch's reader allocates from).
    Files that are not zip archives (the legacy format, garbage) pass: torch reports them.

    Raises:
        ModelFormatError: the members declare more than ``4x`` the file's size (and
            more than 64 MiB): a compressed archive that torch.save does not write.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            declared = sum(member.file_size for member in archive.infolist())
        size = path.stat().st_size
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return  # torch.load reports unreadable archives in its own words
    if declared > max(_MAX_EXPANSION * size, _EXPANSION_FLOOR):
        raise ModelFormatError(
            f"is a zip archive of {size:,} bytes whose members expand to {declared:,} bytes "
            "(a zip bomb?); torch.save writes uncompressed archives, roon reads only those"
        )


def _torch_load(path: Path) -> Any:
    import torch

    check_torch_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        refused = _REFUSED_GLOBAL.search(text)
        if refused:
            raise ModelFormatError(
                f"holds a pickled {refused.group(1)} object, not a dict of tensors; "
                "roon loads with weights_only=True and will not unpickle it "
                "(save model.state_dict() instead)"
            ) from exc
        detail = _UNPICKLER_DETAIL.search(text)
        why = " ".join(detail.group(1).split()) if detail else first_line(exc)
        raise ModelFormatError(f"truncated or corrupt PyTorch file ({why})") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, … for bad bytes
        if "TorchScript" in str(exc):
            raise ModelFormatError(
                "is a TorchScript archive, not a state_dict; save model.state_dict() instead"
            ) from exc
        raise ModelFormatError(f"truncated or corrupt PyTorch file ({first_line(exc)})") from exc


def _unwrap(obj: Any) -> Mapping[Any, Any]:
    """The state_dict itself, or the one a training checkpoint nests under a known key."""
    if not isinstance(obj, Mapping):
        raise ModelFormatError(
            f"holds type {type(obj).__name__}, not a state_dict (a dict of tensors)"
        )
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            return inner
    return obj


def _to_numpy(key: str, value: Any) -> np.ndarray:
    import torch

    if not isinstance(value, torch.Tensor):
        raise ModelFormatError(
            f"entry {key!r} is not a tensor but {type(value).__name__}; "
            "expected a state_dict (a dict of tensors)"
        )
    t = value.detach().cpu()
    try:
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        if t.dtype == torch.bfloat16:
            t = t.float()  # numpy has no bfloat16; widening to float32 is exact
        return t.numpy()
    except (RuntimeError, TypeError) as exc:
        raise ModelFormatError(
            f"entry {key!r} ({t.dtype}) cannot be read as numbers ({first_line(exc)})"
        ) from exc
