"""Store a comparison's neuron matching in the catalogue (table ``activation_matches``).

One row per matched neuron pair; its identity is ``(model_a, model_b, layer_a, layer_b,
neuron_a, inputs_digest)`` (``schema/tables/activation_matches.json``), so saving the
same comparison twice adds nothing. Rows go through the store layer
(:func:`roon.store.write_rows`); both models must be in the catalogue, so that every row
names models a query can join.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from roon.errors import CatalogueError

__all__ = ["TABLE", "matching_table", "require_catalogued", "save_matching"]

TABLE = "activation_matches"


def matching_table(result: Any, created_at: datetime | None = None) -> Any:
    """The rows of ``result``'s matching as an Arrow table of the ``activation_matches``
    schema (no I/O)."""
    import pyarrow as pa

    from roon.schema import table_schema

    if result.id_a is None or result.id_b is None:
        raise CatalogueError(
            "only roon MLPs can be stored: a torch module has no model id; load it with "
            "roon.load_model first"
        )
    when = created_at or datetime.now(timezone.utc)
    rows = [
        {
            "model_a": result.id_a,
            "model_b": result.id_b,
            "layer_a": layer.layer_a,
            "layer_b": layer.layer_b,
            "neuron_a": pair.a,
            "neuron_b": pair.b,
            "correlation": pair.correlation,
            "signatures_equal": pair.signatures_equal,
            "signatures_exact": pair.signatures_exact,
            "layer_cka": layer.cka,
            "cka_debiased": result.debiased,
            "n_samples": result.n_samples,
            "inputs": result.inputs,
            "inputs_digest": result.inputs_digest,
            "created_at": when,
        }
        for layer in result.layers
        for pair in layer.pairs
    ]
    return pa.Table.from_pylist(rows, schema=table_schema(TABLE))


def require_catalogued(catalogue: str | os.PathLike[str], models: Any) -> Path:
    """Check, before any work, that a matching of ``models`` could be stored; the root.

    Raises:
        CatalogueError: no catalogue there, a model that is not in it, or a model
            without an id (a torch module).
    """
    from roon.mlp import MLP
    from roon.store import has_model, open_catalogue

    root = open_catalogue(catalogue)
    for model in models:
        if not isinstance(model, MLP):
            raise CatalogueError(
                f"a {type(model).__name__} has no model id to store; load it with "
                "roon.load_model and ingest it first"
            )
        if not has_model(root, model.id):
            label = model.name or model.id[:12]
            raise CatalogueError(
                f"model {label} ({model.id[:12]}) is not in {root}; ingest it first "
                "(roon ingest FILE) so the stored matching names a catalogued model"
            )
    return root


def save_matching(result: Any, catalogue: str | os.PathLike[str]) -> int:
    """Add ``result``'s matched neuron pairs to the catalogue; returns the rows added.

    Raises:
        CatalogueError: see :func:`require_catalogued`.
    """
    from roon.store import write_rows

    root = require_catalogued(catalogue, result.capture.models)
    return write_rows(root, TABLE, matching_table(result))
