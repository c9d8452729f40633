"""Inputs of a capture, as a stream of batches: arrays, tensors, files, data loaders.

:func:`batches` accepts

* a NumPy array or torch tensor ``[samples, ...]``, sliced into batches;
* an ``.npy`` file, memory-mapped (``allow_pickle=False``), so a file larger than memory
  streams;
* a ``.pt``/``.pth`` file holding one tensor, read with ``torch.load(weights_only=True)``
  (never unpickling code) after the loaders' zip-bomb check;
* any iterable of batches — a ``torch.utils.data.DataLoader``, a generator, a list of
  arrays — where a batch is an array/tensor or a ``(x, y, ...)`` tuple whose first item is
  the input. Batches larger than ``batch_size`` are split.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, RoonError, one_line

__all__ = ["Batches", "batches"]

_SUFFIXES = (".npy", ".pt", ".pth")


class Batches:
    """An iterator of ``[batch, ...]`` arrays or tensors with the sample count if known.

    Attributes:
        total: the number of samples, or None (a generator).
        label: how the inputs were given, for messages.
    """

    def __init__(self, source: Iterator[Any], total: int | None, label: str) -> None:
        self._source = source
        self.total = total
        self.label = label

    def __iter__(self) -> Iterator[Any]:
        return self._source


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _check_array(value: Any, label: str) -> Any:
    shape = tuple(value.shape)
    if len(shape) < 2:
        raise InvalidArgumentError(
            f"{label}: inputs of shape {shape}; expected [samples, features] "
            "(reshape a single feature to [samples, 1])"
        )
    kind = str(value.dtype)
    if not any(word in kind for word in ("float", "int", "bool")) or "complex" in kind:
        raise InvalidArgumentError(f"{label}: inputs have dtype {kind}; expected numbers")
    return value


def _slices(value: Any, size: int) -> Iterator[Any]:
    for start in range(0, int(value.shape[0]), size):
        yield value[start : start + size]


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no such inputs file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidArgumentError(
                f"{path}: not a readable .npy array ({one_line(exc)})"
            ) from exc
    if suffix in (".pt", ".pth"):
        import torch

        from roon.ingest.loaders.state_dict import check_torch_archive

        try:
            check_torch_archive(path)
            value = torch.load(path, map_location="cpu", weights_only=True)
        except RoonError as exc:
            raise InvalidArgumentError(f"{path}: {one_line(exc)}") from exc
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise InvalidArgumentError(
                f"{path}: not a tensor file torch.load(weights_only=True) can read "
                f"({one_line(exc)[:160]})"
            ) from exc
        if not isinstance(value, torch.Tensor):
            raise InvalidArgumentError(
                f"{path}: holds {type(value).__name__}, not a tensor; save the inputs "
                "with torch.save(tensor, path)"
            )
        return value
    raise InvalidArgumentError(
        f"{path}: inputs file of unknown type; roon reads {', '.join(_SUFFIXES)}"
    )


def _stream(items: Iterable[Any], size: int, label: str) -> Iterator[Any]:
    for k, item in enumerate(items):
        x = item[0] if isinstance(item, (tuple, list)) and item else item
        if not (isinstance(x, np.ndarray) or _is_tensor(x)):
            raise InvalidArgumentError(
                f"{label}: batch {k} is {type(x).__name__}; a batch must be an array, a "
                "tensor, or an (inputs, targets) tuple"
            )
        yield from _slices(_check_array(x, f"{label} batch {k}"), size)


def batches(inputs: Any, batch_size: int) -> Batches:
    """The inputs as a stream of batches of at most ``batch_size`` samples.

    Raises:
        InvalidArgumentError: a bad ``batch_size``, a missing or unreadable file, a
            file type roon does not read, inputs that are not ``[samples, ...]`` numbers.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size {batch_size!r}; expected a positive integer")
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).expanduser()
        value = _check_array(_load_file(path), str(path))
        return Batches(_slices(value, batch_size), int(value.shape[0]), str(path))
    if isinstance(inputs, np.ndarray) or _is_tensor(inputs):
        value = _check_array(inputs, "inputs")
        return Batches(_slices(value, batch_size), int(value.shape[0]), "inputs")
    if isinstance(inputs, (list, tuple)) and inputs and not _is_batch_like(inputs[0]):
        value = _check_array(np.asarray(inputs), "inputs")
        return Batches(_slices(value, batch_size), int(value.shape[0]), "inputs")
    if isinstance(inputs, Iterable) and not isinstance(inputs, (dict, bytes)):
        dataset = getattr(inputs, "dataset", None)
        total = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
        return Batches(_stream(inputs, batch_size, "inputs"), total, "inputs")
    raise InvalidArgumentError(
        f"inputs of type {type(inputs).__name__}; pass an array, a tensor, an .npy/.pt "
        "file, or an iterable of batches (e.g. a DataLoader)"
    )


def _is_batch_like(value: Any) -> bool:
    """A list's first item is a batch (``[b, ...]`` array, or ``(x, y)`` with one), not a row."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    return (isinstance(value, np.ndarray) or _is_tensor(value)) and value.ndim >= 2
