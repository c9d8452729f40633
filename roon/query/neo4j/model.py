"""The layer graph's model: which catalogue column becomes which graph property.

One table of mappings serves both roads into Neo4j, so they cannot drift apart:
``roon graph push`` builds its ``UNWIND $rows`` maps from it, and ``roon graph export``
builds its neo4j-admin CSV columns and typed headers from it. Types come from the
catalogue's schema files (``schema/tables/*.json``): a property has the Neo4j type of
the column it is copied from.

Nodes and relationships (see ``schema/neo4j.cypher`` for the whole picture):

* ``:Model`` ← ``models`` (+ ``provenance``), ``:Layer`` ← ``layers``,
  ``:Neuron`` ← ``neurons``, ``:Signature`` ← ``signatures`` (one node per hash);
* ``:Layer:Input`` and ``:Neuron:Input`` for the model inputs (layer -1), derived from
  ``models.input_width``: the catalogue stores no rows for them;
* ``FEEDS`` ← ``edges``, ``COMPUTES`` ← ``signatures``, ``DERIVED_FROM`` ← ``lineage``.
"""

from __future__ import annotations

from roon.errors import InvalidArgumentError
from roon.schema import table_spec

__all__ = [
    "LABELS",
    "RELATIONSHIP_TYPES",
    "MODEL_PROPERTIES",
    "PUSH_PROPERTIES",
    "LAYER_PROPERTIES",
    "INPUT_LAYER_PROPERTIES",
    "NEURON_PROPERTIES",
    "INPUT_NEURON_PROPERTIES",
    "SIGNATURE_PROPERTIES",
    "COMPUTES_PROPERTIES",
    "FEEDS_PROPERTIES",
    "DERIVED_FROM_PROPERTIES",
    "neo4j_type",
    "property_type",
    "as_text",
    "graph_value",
    "input_layer_id",
    "input_neuron_id",
]

LABELS = ("Model", "Layer", "Neuron", "Signature", "Circuit", "Input")
RELATIONSHIP_TYPES = (
    "HAS_LAYER",
    "NEXT",
    "HAS_NEURON",
    "FEEDS",
    "COMPUTES",
    "APPEARS_IN",
    "DERIVED_FROM",
)

# (graph property, "table.column" it is copied from), in the order of the CSV columns.
MODEL_PROPERTIES = (
    ("id", "models.model_id"),
    ("name", "models.name"),
    ("input_width", "models.input_width"),
    ("output_width", "models.output_width"),
    ("n_layers", "models.n_layers"),
    ("n_neurons", "models.n_neurons"),
    ("n_params", "models.n_params"),
    ("widths", "models.widths"),
    ("activations", "models.activations"),
    ("dtype", "models.dtype"),
    ("metadata", "models.metadata"),
    ("format", "provenance.format"),
    ("source", "provenance.source"),
    ("file_sha256", "provenance.file_sha256"),
    # the ingest threshold (edges below it were never stored) ...
    ("edges_min_weight", "provenance.min_weight"),
    ("ingested_at", "provenance.ingested_at"),
)
# ... and the push threshold (FEEDS below it were not sent), set with `pushed` last.
PUSH_PROPERTIES = (("feeds_min_weight", "float64"), ("pushed", "bool"))

LAYER_PROPERTIES = (
    ("id", "layers.layer_id"),
    ("model_id", "layers.model_id"),
    ("index", "layers.layer"),
    ("fan_in", "layers.fan_in"),
    ("width", "layers.width"),
    ("activation", "layers.activation"),
    ("input_domain", "layers.input_domain"),
)
# The input layer has no catalogue row: id '<model_id>:-1', index -1, width input_width.
INPUT_LAYER_PROPERTIES = ("id", "model_id", "index", "width")

NEURON_PROPERTIES = (
    ("id", "neurons.neuron_id"),
    ("model_id", "neurons.model_id"),
    ("layer", "neurons.layer"),
    ("index", "neurons.neuron"),
    ("fan_in", "neurons.fan_in"),
    ("bias", "neurons.bias"),
    ("weight_norm", "neurons.weight_norm"),
    ("activation", "neurons.activation"),
)
# Input i: id '<model_id>:-1:<i>', layer -1, index i.
INPUT_NEURON_PROPERTIES = ("id", "model_id", "layer", "index")

SIGNATURE_PROPERTIES = (
    ("hash", "signatures.hash"),
    ("domain", "signatures.domain"),
    ("fan_in", "signatures.fan_in"),
    ("fire_count", "signatures.fire_count"),  # a decimal string: may exceed 64 bits
    ("fire_fraction", "signatures.fire_fraction"),
    ("exact", "signatures.exact"),
    ("chow", "signatures.chow"),  # comma-separated decimals, likewise
    ("truth_table", "signatures.truth_table"),
)
# Per neuron, not per function: how this neuron's signature was found and how close it
# sits to a flip, so they live on the neuron's COMPUTES relationship.
COMPUTES_PROPERTIES = (
    ("method", "signatures.method"),
    ("fragile", "signatures.fragile"),
    ("margin", "signatures.margin"),
    ("relevant", "signatures.relevant"),
)
FEEDS_PROPERTIES = (("weight", "edges.weight"),)
DERIVED_FROM_PROPERTIES = (
    ("rule", "lineage.rule"),
    ("params", "lineage.params"),
    ("changes", "lineage.changes"),
    ("max_output_change", "lineage.max_output_change"),
    ("created_at", "lineage.created_at"),
)

# Arrow type of a catalogue column -> neo4j-admin header type. Integers are `long` and
# floats `double` because that is what the driver stores for Python int and float, so
# a pushed graph and an imported one hold the same types (`float` would be 32-bit).
# Counts (decimal128(38,0) and lists of them) may exceed Neo4j's 64-bit integers, so the
# graph holds them as text: a decimal string, and a list as comma-separated decimals.
_NEO4J_TYPES = {
    "string": "string",
    "int32": "long",
    "int64": "long",
    "float64": "double",
    "bool": "boolean",
    "timestamp[us, tz=UTC]": "datetime",
    "decimal128(38,0)": "string",
    "list<decimal128(38,0)>": "string",
}
_TEXT_TYPES = ("decimal128(38,0)", "list<decimal128(38,0)>")


def neo4j_type(arrow_type: str) -> str:
    """neo4j-admin property type of a catalogue column type (``"int32"`` → ``"long"``)."""
    return _NEO4J_TYPES[arrow_type]


def as_text(source: str) -> bool:
    """Whether the graph holds the column ``"table.column"`` as text (wide integers)."""
    return property_type(source) in _TEXT_TYPES


def graph_value(source: str, value: object) -> object:
    """A catalogue value as the graph stores it (see :func:`as_text`); None stays None."""
    if value is None or not as_text(source):
        return value
    if isinstance(value, list):
        return ",".join(str(int(v)) for v in value)
    return str(int(value))  # type: ignore[call-overload]


def property_type(source: str) -> str:
    """Catalogue type (``"int32"``, ``"string"``, ...) of a ``"table.column"`` source."""
    table, column = source.split(".", 1)
    for spec in table_spec(table)["columns"]:
        if spec["name"] == column:
            return spec["type"]
    raise InvalidArgumentError(f"no column {column!r} in table {table!r}")


def input_layer_id(model_id: str) -> str:
    """Id of a model's input layer node (``<model_id>:-1``)."""
    return f"{model_id}:-1"


def input_neuron_id(model_id: str, index: int) -> str:
    """Id of a model's input neuron ``index`` (``<model_id>:-1:<index>``)."""
    return f"{model_id}:-1:{index}"
