"""Which input space a model is evaluated on, and the ``input_space`` rows.

:func:`resolve_space` turns what a user says (``--input-space``) into an
:class:`~roon.kernels.spaces.InputSpace` for one model:

* ``auto`` (the ingest default): a box grid when the model states its input box (model
  metadata ``input_bounds``, an .nnet header, ``--input-bounds``) or its layer 0 is
  judged on the ``box`` domain; else the cube of the model's input domain
  (``binary``/``signed``) when it has at most :data:`AUTO_POINTS` points; else none;
* ``none``: no input-space signatures;
* ``binary``, ``signed``: the cube of the model's inputs;
* ``box`` or ``box:K``: a grid of ``K`` points per axis (default
  :func:`~roon.kernels.spaces.default_grid`; ``box:2`` = the vertices) of the input box
  (``--input-bounds``, else the model's metadata or .nnet header; refused when neither
  gives a finite box: roon assumes no input box);
* a file (``.npy``, or a ``.pt`` tensor): a probe set ``[points, inputs]``;
* a stored spec (the ``space_spec`` column): what ``roon reindex`` recomputes from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError, require_reference
from roon.kernels.spaces import (
    MAX_POINTS,
    InputSpace,
    binary_space,
    box_space,
    default_grid,
    probe_space,
    signed_space,
    space_from_spec,
)
from roon.mlp import MLP
from roon.progress import ProgressCallback

__all__ = [
    "AUTO_POINTS",
    "SPACE_CHOICES",
    "check_space_choice",
    "resolve_space",
    "load_probe",
    "states_bounds",
    "input_space_table",
    "stored_space",
]

# `auto` takes a cube only up to this many points (binary up to 16 inputs, signed up to
# 10): a few milliseconds per small model at ingest, never a surprise on a wide one.
AUTO_POINTS = 1 << 16
SPACE_CHOICES = "auto, none, binary, signed, box, box:K or a .npy file"


def states_bounds(mlp: MLP) -> bool:
    """Whether the model itself states its input box (metadata or an .nnet header)."""
    from roon.ingest.normalize.bounds import METADATA_KEY

    return mlp.metadata.get(METADATA_KEY) is not None or "nnet.mins" in mlp.metadata


def load_probe(path: str | os.PathLike[str], *, max_points: int = MAX_POINTS) -> InputSpace:
    """A probe set from a ``.npy`` file (read with ``allow_pickle=False``) or a ``.pt`` tensor.

    Raises:
        ModelFormatError: an unreadable file or one that holds no numeric 2-D array.
    """
    from roon.ingest.normalize import load_sample

    data = load_sample(path)
    try:
        return probe_space(data, source=str(Path(path).resolve()), max_points=max_points)
    except InvalidArgumentError as exc:
        raise ModelFormatError(f"probe set {path}: {exc}") from None


def _box(mlp: MLP, input_bounds: Any, grid: int | None, max_points: int) -> InputSpace:
    from roon.ingest.normalize.bounds import finite_input_bounds

    n = mlp.input_width
    # The grid (K and the point count) is checked first, on the unit box, so that a bad
    # box:K is named even when the bounds are missing too.
    box_space(np.zeros(n), np.ones(n), grid=grid, max_points=max_points)
    lo, hi = finite_input_bounds(mlp, input_bounds, what="a box grid")
    return box_space(lo, hi, grid=grid, max_points=max_points)


def _auto(mlp: MLP, input_domain: str, input_bounds: Any, max_points: int) -> InputSpace | None:
    n = mlp.input_width
    if input_domain == "box" or input_bounds is not None or states_bounds(mlp):
        grid = default_grid(n, max_points)
        if grid**n <= min(AUTO_POINTS, max_points):
            return _box(mlp, input_bounds, grid, max_points)
        return None
    base = 3 if input_domain == "signed" else 2
    if base**n > min(AUTO_POINTS, max_points):
        return None
    return (signed_space if base == 3 else binary_space)(n, max_points=max_points)


def _space_text(spec: Any) -> str | os.PathLike[str]:
    """``spec`` when it is text or a path; a number, bytes, a list ... are refused."""
    try:
        return require_reference(spec, "the input space")
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"input space of type {type(spec).__name__}; choose {SPACE_CHOICES}"
        ) from None


def check_space_choice(spec: Any) -> None:
    """Refuse a ``--input-space`` value that can never resolve, before any model is read.

    Raises:
        InvalidArgumentError: not a keyword, ``box:K``, or an existing probe file.
    """
    if spec is None or isinstance(spec, InputSpace | Mapping):
        return
    text = os.fspath(_space_text(spec))
    if text in ("auto", "none", "binary", "signed", "box"):
        return
    if text.startswith("box:"):
        if not text[4:].isdigit():
            raise InvalidArgumentError(
                f"input space {text!r}: give box:K with K points per axis, e.g. box:5"
            )
        return
    if Path(text).suffix.lower() in (".npy", ".pt", ".pth"):
        if not Path(text).is_file():
            raise InvalidArgumentError(f"input space {text}: no such probe file")
        return
    raise InvalidArgumentError(f"input space {text!r}; choose {SPACE_CHOICES}")


def resolve_space(
    mlp: MLP,
    spec: str | os.PathLike[str] | InputSpace | Mapping[str, Any] | None,
    *,
    input_domain: str = "binary",
    input_bounds: Any = None,
    max_points: int = MAX_POINTS,
) -> InputSpace | None:
    """The input space of ``mlp`` for a ``--input-space`` value (see the module docstring).

    Args:
        mlp: the model.
        spec: ``auto``, ``none``/None, ``binary``, ``signed``, ``box``, ``box:K``, a probe
            file, an :class:`InputSpace`, or a stored spec (a dict or its JSON).
        input_domain: the local signature domain of layer 0 (what ``auto`` follows).
        input_bounds: the input box, ``(lo, hi)`` or per-input pairs (``box`` and ``auto``).
        max_points: the most points allowed.

    Returns:
        The space, or None for ``none`` (and for ``auto`` when nothing fits).

    Raises:
        InvalidArgumentError: an unknown choice, a space too large, or one whose width
            differs from the model's inputs.
        ModelFormatError: an unreadable probe file.
    """
    n = mlp.input_width
    space: InputSpace | None
    if spec is None or isinstance(spec, str) and spec == "none":
        return None
    if not isinstance(spec, InputSpace | Mapping):
        spec = _space_text(spec)
    if isinstance(spec, InputSpace):
        space = spec
    elif isinstance(spec, Mapping) or (isinstance(spec, str) and spec.startswith("{")):
        space = _from_spec(json.loads(spec) if isinstance(spec, str) else dict(spec))
    elif spec == "auto":
        return _auto(mlp, input_domain, input_bounds, max_points)
    elif spec in ("binary", "signed"):
        space = (binary_space if spec == "binary" else signed_space)(n, max_points=max_points)
    elif isinstance(spec, str) and (spec == "box" or spec.startswith("box:")):
        grid = None
        if spec != "box":
            try:
                grid = int(spec.split(":", 1)[1])
            except ValueError:
                raise InvalidArgumentError(
                    f"input space {spec!r}: give box:K with K points per axis, e.g. box:5"
                ) from None
        space = _box(mlp, input_bounds, grid, max_points)
    elif Path(spec).suffix.lower() in (".npy", ".pt", ".pth"):
        space = load_probe(spec, max_points=max_points)
    else:
        raise InvalidArgumentError(f"input space {str(spec)!r}; choose {SPACE_CHOICES}")
    if space.n != n:
        raise InvalidArgumentError(
            f"the input space {space.describe()} has {space.n} inputs but model "
            f"{mlp.name or mlp.id[:12]!r} takes {n}"
        )
    return space


def _from_spec(spec: dict[str, Any]) -> InputSpace:
    if spec.get("kind") != "probe":
        return space_from_spec(spec)
    source = spec.get("source")
    if not source or not Path(source).is_file():
        raise InvalidArgumentError(
            f"the input space is the probe set {source} (digest {str(spec.get('digest'))[:16]}), "
            "which is gone; put the file back or ingest again with --input-space FILE"
        )
    from roon.ingest.normalize import load_sample

    return space_from_spec(spec, probe=load_sample(source))


def stored_space(table: Any) -> dict[str, Any] | None:
    """The space spec recorded in a model's ``input_space`` rows (None when it has none)."""
    if table.num_rows == 0:
        return None
    found: dict[str, Any] = json.loads(table.column("space_spec")[0].as_py())
    return found


def input_space_table(
    mlp: MLP, space: InputSpace | None, *, progress: ProgressCallback | None = None
) -> Any:
    """The ``input_space`` rows of a model on ``space`` (no rows when ``space`` is None)."""
    import numpy as np
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels.input_space import input_space_signatures
    from roon.schema import table_schema

    schema = table_schema("input_space")
    if space is None:
        return schema.empty_table()
    found = input_space_signatures(mlp, space, progress=progress)
    spec = json.dumps(space.spec(), sort_keys=True)
    parts = []
    for layer in found.layers:
        width = len(layer.hash)
        missing: list[str | None] = [None] * width
        columns = {
            "neuron_id": neuron_ids(mlp.id, layer.layer, range(width)),
            "model_id": [mlp.id] * width,
            "layer": np.full(width, layer.layer, dtype=np.int32),
            "neuron": np.arange(width, dtype=np.int32),
            "space": [space.label] * width,
            "space_id": [space.id] * width,
            "space_spec": [spec] * width,
            "points": np.full(width, space.size, dtype=np.int64),
            "complete": np.full(width, space.complete),
            "fire_count": layer.fire_count,
            "zero_count": layer.zero_count,
            "hash": layer.hash,
            "complement_hash": layer.complement_hash,
            "pattern": layer.pattern or missing,
            "sign_hash": layer.sign_hash or missing,
            "exact": layer.exact,
            "rechecked": layer.rechecked,
        }
        parts.append(
            pa.table([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)
        )
    return pa.concat_tables(parts)
