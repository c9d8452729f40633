"""Turn an :class:`~roon.mlp.MLP` into catalogue rows (Arrow tables).

One function per table, each returning a ``pyarrow.Table`` with exactly the schema of
``schema/tables/<name>.json``. Ids are derived from the model id only, so the same model
always produces the same rows:

* layer ``<model_id>:<layer>``,
* neuron ``<model_id>:<layer>:<neuron>``, inputs ``<model_id>:-1:<i>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from roon import __version__
from roon.errors import InvalidArgumentError
from roon.mlp import MLP, NONNEGATIVE_ACTIVATIONS
from roon.schema import table_schema

__all__ = [
    "DERIVED_FORMAT",
    "INPUT_DOMAINS",
    "layer_domains",
    "neuron_ids",
    "models_table",
    "layers_table",
    "neurons_table",
    "edges_batches",
    "edges_table",
    "provenance_table",
    "model_tables",
]

INPUT_DOMAINS = ("binary", "signed", "box")
# provenance.format of a model a normalizer derived from another (not read from a file)
DERIVED_FORMAT = "derived"
# Rows of one edges batch: 2^16 edges ≈ 11 MB of Arrow (~165 bytes each), a constant
# whatever the model's size; large enough that Parquet row groups stay efficient.
EDGE_BATCH = 1 << 16


def layer_domains(mlp: MLP, input_domain: str = "binary") -> list[str]:
    """Signature domain of each layer's inputs.

    Layer 0 sees the model inputs (``input_domain``); a later layer sees ``binary``
    inputs after a non-negative activation (ReLU, sigmoid, softplus: a neuron is off or
    on), and ``signed`` ones otherwise (``relu(-x)`` must differ from a dead neuron).
    ``box`` judges every layer on the corners of its own input box
    (:mod:`roon.kernels.box`).
    """
    if input_domain not in INPUT_DOMAINS:
        raise InvalidArgumentError(
            f"input domain {input_domain!r}; expected one of {INPUT_DOMAINS}"
        )
    if input_domain == "box":
        return ["box"] * len(mlp.layers)
    domains = [input_domain]
    for prev in mlp.layers[:-1]:
        domains.append("binary" if prev.activation in NONNEGATIVE_ACTIVATIONS else "signed")
    return domains


def neuron_ids(model_id: str, layer: int, indices: Any) -> pa.Array:
    """Vectorized ``<model_id>:<layer>:<i>`` ids (``layer = -1`` for inputs)."""
    idx = pc.cast(pa.array(np.asarray(indices, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(f"{model_id}:{layer}", idx, ":")


def _table(name: str, columns: dict[str, Any]) -> pa.Table:
    schema = table_schema(name)
    return pa.table([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def models_table(mlp: MLP) -> pa.Table:
    return _table(
        "models",
        {
            "model_id": [mlp.id],
            "name": [mlp.name or mlp.id[:12]],
            "input_width": [mlp.input_width],
            "output_width": [mlp.output_width],
            "n_layers": [len(mlp.layers)],
            "n_neurons": [mlp.n_neurons],
            "n_params": [mlp.n_params],
            "widths": ["-".join(str(w) for w in mlp.widths)],
            "activations": [",".join(mlp.activations)],
            "dtype": [str(mlp.dtype)],
            "metadata": [json.dumps(mlp.metadata, sort_keys=True, default=str)],
        },
    )


def layers_table(mlp: MLP, input_domain: str = "binary") -> pa.Table:
    n = len(mlp.layers)
    return _table(
        "layers",
        {
            "layer_id": [f"{mlp.id}:{i}" for i in range(n)],
            "model_id": [mlp.id] * n,
            "layer": list(range(n)),
            "fan_in": [layer.fan_in for layer in mlp.layers],
            "width": [layer.width for layer in mlp.layers],
            "activation": list(mlp.activations),
            "input_domain": layer_domains(mlp, input_domain),
        },
    )


def _row_norms(weight: np.ndarray) -> np.ndarray:
    """‖w_j‖ of each row in float64, a block of rows at a time (no float64 copy of the
    whole layer)."""
    out = np.empty(weight.shape[0], dtype=np.float64)
    step = max(1, EDGE_BATCH // max(1, weight.shape[1]))
    for start in range(0, weight.shape[0], step):
        w = weight[start : start + step].astype(np.float64)
        out[start : start + step] = np.sqrt(np.einsum("ij,ij->i", w, w))
    return out


def neurons_table(mlp: MLP) -> pa.Table:
    parts = []
    for i, layer in enumerate(mlp.layers):
        idx = np.arange(layer.width)
        parts.append(
            _table(
                "neurons",
                {
                    "neuron_id": neuron_ids(mlp.id, i, idx),
                    "model_id": [mlp.id] * layer.width,
                    "layer": np.full(layer.width, i, dtype=np.int32),
                    "neuron": idx.astype(np.int32),
                    "fan_in": np.full(layer.width, layer.fan_in, dtype=np.int32),
                    "bias": layer.bias.astype(np.float64),
                    "weight_norm": _row_norms(layer.weight),
                    "activation": [layer.activation] * layer.width,
                },
            )
        )
    return pa.concat_tables(parts)


def _repeated(text: str, n: int) -> pa.Array:
    """``[text] * n`` as an Arrow string array, built from two buffers (no Python list)."""
    data = text.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data * n)
    ).cast(pa.string())


def edges_batches(mlp: MLP, min_weight: float = 0.0) -> Iterator[pa.RecordBatch]:
    """The ``edges`` rows in batches of about :data:`EDGE_BATCH` rows, layer by layer.

    All connections, or only those with ``|weight| >= min_weight`` when it is > 0;
    grouped by target neuron, sources ascending. Each batch is built from a block of
    target rows, so memory stays bounded however many edges the model has (a stored
    edge costs ~165 bytes in Arrow: three id strings and four numbers).
    """
    schema = table_schema("edges")
    for i, layer in enumerate(mlp.layers):
        step = max(1, EDGE_BATCH // max(1, layer.fan_in))
        for start in range(0, layer.width, step):
            w = layer.weight[start : start + step].astype(np.float64)  # [rows, in]
            if min_weight > 0:
                target, source = np.nonzero(np.abs(w) >= min_weight)
                weights = w[target, source]
            else:
                target, source = np.divmod(np.arange(w.size), w.shape[1])
                weights = w.ravel()
            target = target + start
            n = len(source)
            yield pa.RecordBatch.from_arrays(
                [
                    _repeated(mlp.id, n),
                    pa.array(np.full(n, i, dtype=np.int32)),
                    pa.array(source.astype(np.int32)),
                    pa.array(target.astype(np.int32)),
                    neuron_ids(mlp.id, i - 1, source),
                    neuron_ids(mlp.id, i, target),
                    pa.array(weights),
                ],
                schema=schema,
            )


def edges_table(mlp: MLP, min_weight: float = 0.0) -> pa.Table:
    """All connections, or only those with ``|weight| >= min_weight`` when it is > 0.

    The whole table in memory; :func:`edges_batches` streams it (what ingest writes).
    """
    return pa.Table.from_batches(list(edges_batches(mlp, min_weight)), schema=table_schema("edges"))


def provenance_table(mlp: MLP, min_weight: float = 0.0, now: datetime | None = None) -> pa.Table:
    """Where the model came from, read from its first (``load``) provenance step."""
    load = next((p for p in mlp.provenance if p.get("step") == "load"), {})
    derived = any(p.get("step") != "load" for p in mlp.provenance)
    return _table(
        "provenance",
        {
            "model_id": [mlp.id],
            "source": [str(load.get("source", "<unknown>"))],
            "format": [DERIVED_FORMAT if derived else str(load.get("format", "unknown"))],
            "file_sha256": [None if derived else load.get("sha256")],
            "activation_assumed": [bool(load.get("activation_assumed", False))],
            "min_weight": [float(min_weight)],
            "roon_version": [__version__],
            "ingested_at": [now or datetime.now(timezone.utc)],
        },
    )


def model_tables(
    mlp: MLP, *, min_weight: float = 0.0, input_domain: str = "binary", stream: bool = False
) -> dict[str, Any]:
    """The structural tables of one model: models, layers, neurons, edges, provenance.

    With ``stream``, ``edges`` is a one-pass iterator of record batches
    (:func:`edges_batches`) for :func:`roon.store.write_model` to write as they come;
    otherwise every value is a ``pyarrow.Table``.
    """
    return {
        "models": models_table(mlp),
        "layers": layers_table(mlp, input_domain),
        "neurons": neurons_table(mlp),
        "edges": edges_batches(mlp, min_weight) if stream else edges_table(mlp, min_weight),
        "provenance": provenance_table(mlp, min_weight),
    }
