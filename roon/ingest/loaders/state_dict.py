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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import ModelFormatError
from roon.ingest.loaders._common import Loaded, first_line, layers_from_tensors

__all__ = ["read_state_dict"]

# Keys under which training checkpoints commonly nest the model's state_dict.
_WRAPPER_KEYS = ("state_dict", "model_state_dict")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", re.S)


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


def _torch_load(path: Path) -> Any:
    import torch

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
