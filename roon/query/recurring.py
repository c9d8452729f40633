"""Which circuits recur across models: exact signatures and two-layer motifs, by GROUP BY.

* ``neuron``: neurons with the same exact signature hash — the same threshold function up
  to a permutation of its inputs — in at least ``min_models`` models.
* ``motif``: a neuron of a hidden or output layer (layer ≥ 1) together with the
  signatures and weight signs of its :data:`MOTIF_INPUTS` strongest incoming edges
  (largest ``|w|`` among the stored edges; ties by input index), hashed so that the
  order of those inputs does not matter — a two-layer circuit.

By default only models as ingested count (a model derived by normalization is the same
function and would count twice), and constant neurons (never or always excited on their
domain, ``relevant = 0``) are left out: a dead unit recurring everywhere says nothing.
Approximate (sampled) signatures never count. Each function is labelled with the
library circuits whose single neuron computes it, where any.

The same questions on the graph server: ``EXAMPLE_QUERIES["signatures_in_most_models"]``
and ``["recurring_motifs"]`` in :mod:`roon.query.neo4j.statements`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from roon.errors import InvalidArgumentError

__all__ = ["KINDS", "MOTIF_INPUTS", "recurring", "library_labels"]

KINDS = ("neuron", "motif")
# Incoming edges per motif: two strongest keeps a motif a small, readable circuit (AND of
# two features, one feature inhibiting another) and the key space dense enough to recur.
MOTIF_INPUTS = 2

_NEURONS = """
SELECT s.hash AS signature, any_value(s.domain) AS domain, any_value(s.fan_in) AS fan_in,
       any_value(s.chow) AS chow, any_value(s.truth_table) AS truth_table,
       count(DISTINCT s.model_id) AS models, count(*) AS neurons,
       list(DISTINCT m.name ORDER BY m.name) AS found_in,
       list(s.neuron_id ORDER BY s.neuron_id)[1:5] AS examples
FROM signatures s JOIN models m USING (model_id) JOIN provenance p USING (model_id)
WHERE s.exact AND ($derived OR p.format <> $derived_format) AND ($constant OR s.relevant > 0)
  AND ($any_model OR list_contains($models::VARCHAR[], s.model_id))
GROUP BY s.hash
HAVING count(DISTINCT s.model_id) >= $min_models
ORDER BY models DESC, neurons DESC, signature
LIMIT $limit
"""

_MOTIFS = """
WITH ranked AS (
    SELECT e.model_id, e.target_id, e.source_id, e.weight,
           row_number() OVER (PARTITION BY e.target_id
                              ORDER BY abs(e.weight) DESC, e.source) AS rank
    FROM edges e
    WHERE e.layer >= 1 AND e.weight <> 0
),
parts AS (
    SELECT r.model_id, r.target_id,
           string_agg(s.hash || CASE WHEN r.weight > 0 THEN '+' ELSE '-' END, ','
                      ORDER BY s.hash || CASE WHEN r.weight > 0 THEN '+' ELSE '-' END) AS inputs,
           bool_and(s.exact) AS exact
    FROM ranked r JOIN signatures s ON s.neuron_id = r.source_id
    WHERE r.rank <= $inputs
    GROUP BY r.model_id, r.target_id
)
SELECT md5(t.hash || '|' || p.inputs) AS motif, any_value(t.hash) AS signature,
       any_value(p.inputs) AS inputs, any_value(t.fan_in) AS fan_in,
       count(DISTINCT t.model_id) AS models, count(*) AS neurons,
       list(DISTINCT m.name ORDER BY m.name) AS found_in,
       list(t.neuron_id ORDER BY t.neuron_id)[1:5] AS examples
FROM parts p
JOIN signatures t ON t.neuron_id = p.target_id
JOIN models m ON m.model_id = t.model_id
JOIN provenance pr ON pr.model_id = t.model_id
WHERE p.exact AND t.exact AND ($derived OR pr.format <> $derived_format)
  AND ($constant OR t.relevant > 0)
  AND ($any_model OR list_contains($models::VARCHAR[], t.model_id))
GROUP BY motif
HAVING count(DISTINCT t.model_id) >= $min_models
ORDER BY models DESC, neurons DESC, motif
LIMIT $limit
"""


def library_labels() -> dict[str, list[str]]:
    """Signature hash → the library circuits that are that single neuron.

    A one-neuron circuit (``and``, ``or``, ``greater`` …) labels its own exact signature in
    each domain: its ties count as not excited, as in every signature, so a trained AND
    neuron (excited on (1, 1) only) carries the label ``and``.
    """
    from roon.ingest.loaders.circuit import list_circuits
    from roon.kernels import signatures

    labels: dict[str, list[str]] = {}
    for c in list_circuits():
        if len(c.mlp.layers) != 1 or c.mlp.output_width != 1:
            continue
        layer = c.mlp.layers[0]
        for domain in ("binary", "signed"):
            for h in signatures(layer.weight, layer.bias, domain=domain).hash:
                labels.setdefault(h, []).append(c.name)
    return {h: sorted(set(v)) for h, v in labels.items()}


def recurring(
    catalogue: str | os.PathLike[str],
    *,
    min_models: int = 2,
    kind: str = "neuron",
    include_derived: bool = False,
    include_constant: bool = False,
    limit: int = 20,
    models: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Functions (``neuron``) or two-layer motifs (``motif``) in at least ``min_models``
    models, most frequent first (see the module docstring).

    Args:
        models: count only these models (model ids; None: every model). Derived models
            among them count only with ``include_derived``.

    Returns:
        One dict per function or motif: its hash, ``models`` and ``neurons`` counts,
        ``found_in`` (model names), ``examples`` (up to 5 neuron ids), ``circuits``
        (library labels of the neuron's function) and, for neurons, ``domain``,
        ``fan_in``, ``chow``, ``truth_table``; for motifs the ``signature`` of the neuron
        and its ``inputs`` (input signatures with the weight's sign).

    Raises:
        InvalidArgumentError: an unknown kind, ``min_models < 1``, ``limit < 1`` or
            ``models`` a string rather than a list of ids.
        CatalogueError: no catalogue, or a damaged file (named, with the fix).
    """
    from roon.query.originals import DERIVED_FORMAT
    from roon.query.scan import guarded_scan

    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidArgumentError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    for name, value in (("min models", min_models), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name} {value!r}: give a positive integer")
    if isinstance(models, str):
        raise InvalidArgumentError(f"models {models!r}: give a list of model ids")
    params: dict[str, Any] = {
        "min_models": min_models,
        "derived": include_derived,
        "derived_format": DERIVED_FORMAT,
        "constant": include_constant,
        "limit": limit,
        "any_model": models is None,
        "models": list(models or []),
    }
    if kind == "motif":
        params["inputs"] = MOTIF_INPUTS
    with guarded_scan(catalogue) as con:
        rel = con.execute(_NEURONS if kind == "neuron" else _MOTIFS, params)
        columns = [d[0] for d in rel.description]
        rows = [dict(zip(columns, r, strict=True)) for r in rel.fetchall()]
    labels = library_labels()
    for row in rows:
        row["circuits"] = labels.get(row["signature"], [])
        if row.get("chow") is not None:  # DECIMAL(38,0) comes back as Decimal: exact ints
            row["chow"] = [int(v) for v in row["chow"]]
    return rows
