"""Derived tables: what roon computes from a model's weights (signatures, tokens, ...).

Structural tables (models, layers, neurons, edges, provenance; :mod:`roon.ingest.rows`)
copy the model; derived tables are computed from it and may change definition between
roon versions. Each has a definition version in :data:`DERIVED_TABLES`: bump it when a
table's rows would come out differently, and ``roon reindex`` recomputes that table for
every stored model from its weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP
from roon.progress import ProgressCallback, shifted

__all__ = ["DERIVED_TABLES", "derived_tables", "restricted_table", "signature_table"]

# table -> definition version (see the module docstring).
DERIVED_TABLES: dict[str, int] = {"signatures": 1, "tokens": 1, "restricted": 1, "input_space": 1}


def signature_table(
    mlp: MLP,
    domains: Sequence[str],
    *,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
) -> Any:
    """The ``signatures`` rows of a model: every neuron, each layer in its input domain.

    A ``box`` layer is judged on the corners of its input box, propagated from the
    model's (:func:`roon.ingest.normalize.bounds.resolve_input_bounds`).
    ``progress`` receives ``neurons`` events counting over the whole model.
    """
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels import signatures

    boxes = _boxes(mlp) if "box" in domains else None
    parts = []
    done = 0
    label = mlp.name or mlp.id[:12]
    for i, layer in enumerate(mlp.layers):
        report = shifted(progress, done, mlp.n_neurons, label)
        if domains[i] == "box" and boxes is not None:
            from roon.kernels.box import box_signatures

            batch = box_signatures(
                layer.weight, layer.bias, *boxes[i], backend=backend, progress=report
            )
        else:
            batch = signatures(
                layer.weight, layer.bias, domain=domains[i], backend=backend, progress=report
            )
        done += layer.width
        table = batch.to_arrow()
        n = layer.width
        head = {
            "neuron_id": neuron_ids(mlp.id, i, range(n)),
            "model_id": pa.array([mlp.id] * n),
            "layer": pa.array([i] * n, type=pa.int32()),
            "neuron": pa.array(range(n), type=pa.int32()),
        }
        for pos, (name, column) in enumerate(head.items()):
            table = table.add_column(pos, name, column)
        parts.append(table)
    return pa.concat_tables(parts)


def restricted_table(mlp: MLP, domains: Sequence[str]) -> Any:
    """The ``restricted`` rows of a model (:mod:`roon.kernels.restricted`), every layer.

    ``box`` layers get none: the restricted index is defined on the binary and signed
    domains only.
    """
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels.restricted import restricted_rows
    from roon.schema import table_schema

    parts = [table_schema("restricted").empty_table()]
    for i, layer in enumerate(mlp.layers):
        if domains[i] == "box":
            continue
        rows = restricted_rows(layer.weight, layer.bias, domains[i])
        n = len(rows.hash)
        columns = {
            "neuron_id": neuron_ids(mlp.id, i, rows.neuron),
            "model_id": pa.array([mlp.id] * n),
            "layer": pa.array(np.full(n, i, dtype=np.int32)),
            "neuron": pa.array(rows.neuron),
            "domain": pa.array([domains[i]] * n),
            "k": pa.array(rows.k),
            "inputs": pa.array(rows.input_lists(), type=pa.list_(pa.int32())),
            "hash": pa.array(rows.hash, type=pa.string()),
            "fragile": pa.array(rows.fragile),
        }
        parts.append(pa.table(columns, schema=table_schema("restricted")))
    return pa.concat_tables(parts)


def _boxes(mlp: MLP) -> list[Any]:
    from roon.ingest.normalize.bounds import resolve_input_bounds
    from roon.kernels.box import layer_boxes

    return layer_boxes(mlp, *resolve_input_bounds(mlp))


def derived_tables(
    mlp: MLP,
    domains: Sequence[str],
    *,
    tables: Iterable[str] | None = None,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    input_space: Any = "auto",
) -> dict[str, Any]:
    """Compute derived tables of a model (all of :data:`DERIVED_TABLES` by default).

    Args:
        mlp: the model.
        domains: the signature domain of each layer's inputs
            (:func:`roon.ingest.rows.layer_domains`, or a stored ``layers`` table).
        tables: which derived tables to compute.
        backend: signature backend.
        progress: ``neurons`` events while signatures are computed.
        input_space: the space of the ``input_space`` table: what
            :func:`roon.ingest.spaces.resolve_space` takes (``auto`` follows ``domains[0]``).

    Raises:
        InvalidArgumentError: an unknown table name, or one domain per layer missing.
    """
    from roon.ingest.tokenize import tokens_table

    wanted = list(DERIVED_TABLES if tables is None else tables)
    unknown = [t for t in wanted if t not in DERIVED_TABLES]
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]!r} is not a derived table; they are {', '.join(DERIVED_TABLES)}"
        )
    if len(domains) != len(mlp.layers):
        raise InvalidArgumentError(
            f"{len(domains)} input domains for {len(mlp.layers)} layers; give one per layer"
        )
    out: dict[str, Any] = {}
    if "signatures" in wanted:
        out["signatures"] = signature_table(mlp, domains, backend=backend, progress=progress)
    if "tokens" in wanted:
        out["tokens"] = tokens_table(mlp)
    if "restricted" in wanted:
        out["restricted"] = restricted_table(mlp, domains)
    if "input_space" in wanted:
        from roon.ingest.spaces import input_space_table, resolve_space

        space = resolve_space(mlp, input_space, input_domain=domains[0])
        out["input_space"] = input_space_table(mlp, space)
    return out
