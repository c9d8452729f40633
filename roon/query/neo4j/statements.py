"""Every Cypher statement roon sends, as constants, and the example queries.

Statements are plain module-level strings: values always travel as parameters
(``$rows``, ``$ids``, ...), never spliced into the text, and a test parses this module
to keep it that way. The writers take ``UNWIND $rows AS row``: one round trip per batch.
Everything is ``MERGE``, so sending a batch twice changes nothing.

A model node gets ``pushed = true`` only after all its batches are in (``FINISH_MODEL``),
so an interrupted push leaves it unmarked and the next push sends it again.

Example:
    >>> from roon.query.neo4j.statements import EXAMPLE_QUERIES
    >>> EXAMPLE_QUERIES["feeding_neuron"].params
    {'neuron_id': '<model_id>:1:0', 'threshold': 0.5}
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from roon.errors import QueryError

__all__ = [
    "ExampleQuery",
    "EXAMPLE_QUERIES",
    "split_statements",
    "parse_params",
]

PING = "RETURN 1 AS ok"

# Models that are complete in the graph (all batches in) with every FEEDS of
# |weight| >= $min_weight: push skips them. One pushed with a higher threshold lacks
# FEEDS this push would send, so it is not skipped.
PUSHED_MODELS = """
UNWIND $ids AS id
MATCH (m:Model {id: id})
WHERE m.pushed = true AND coalesce(m.feeds_min_weight, 0.0) <= $min_weight
RETURN m.id AS id
"""

MERGE_MODELS = """
UNWIND $rows AS row
MERGE (m:Model {id: row.id})
SET m += row
"""

MERGE_INPUT_LAYERS = """
UNWIND $rows AS row
MATCH (m:Model {id: row.model_id})
MERGE (l:Layer {id: row.id})
SET l:Input, l += row
MERGE (m)-[:HAS_LAYER]->(l)
"""

MERGE_LAYERS = """
UNWIND $rows AS row
MATCH (m:Model {id: row.model_id})
MERGE (l:Layer {id: row.id})
SET l += row
MERGE (m)-[:HAS_LAYER]->(l)
"""

MERGE_NEXT = """
UNWIND $rows AS row
MATCH (a:Layer {id: row.source}), (b:Layer {id: row.target})
MERGE (a)-[:NEXT]->(b)
"""

MERGE_INPUT_NEURONS = """
UNWIND $rows AS row
MATCH (l:Layer {id: row.layer_id})
MERGE (n:Neuron {id: row.props.id})
SET n:Input, n += row.props
MERGE (l)-[:HAS_NEURON]->(n)
"""

MERGE_NEURONS = """
UNWIND $rows AS row
MATCH (l:Layer {id: row.layer_id})
MERGE (n:Neuron {id: row.props.id})
SET n += row.props
MERGE (l)-[:HAS_NEURON]->(n)
"""

# A signature node is one function: its properties are set once, by the first neuron
# that computes it. The per-neuron facts go on COMPUTES.
MERGE_SIGNATURES = """
UNWIND $rows AS row
MATCH (n:Neuron {id: row.neuron_id})
MERGE (s:Signature {hash: row.signature.hash})
ON CREATE SET s += row.signature
MERGE (n)-[c:COMPUTES]->(s)
SET c += row.computes
"""

MERGE_FEEDS = """
UNWIND $rows AS row
MATCH (a:Neuron {id: row.source_id}), (b:Neuron {id: row.target_id})
MERGE (a)-[f:FEEDS]->(b)
SET f.weight = row.weight
"""

FINISH_MODEL = """
MATCH (m:Model {id: $model_id})
SET m.feeds_min_weight = $min_weight, m.pushed = true
"""

# A parent outside the catalogue (or not pushed yet) becomes a bare (:Model {id}); a
# later push of that model fills it in, since it carries no `pushed` mark.
MERGE_LINEAGE = """
UNWIND $rows AS row
MERGE (child:Model {id: row.child_id})
MERGE (parent:Model {id: row.parent_id})
MERGE (child)-[r:DERIVED_FROM {rule: row.rule, params: row.params}]->(parent)
SET r.changes = row.changes,
    r.max_output_change = row.max_output_change,
    r.created_at = row.created_at
"""

# Saved circuit matches (the ``matches`` table): one APPEARS_IN per embedding, keyed as
# the table's rows are (offset, maps and input map as JSON text, strict), with the
# functional check's result on it; a circuit may sit in a model several times. Circuits
# key on their network's hash (two may share a name).
MERGE_MATCHES = """
UNWIND $rows AS row
MERGE (c:Circuit {id: row.circuit_id})
SET c.name = row.circuit, c.description = row.description
MERGE (m:Model {id: row.model_id})
MERGE (c)-[a:APPEARS_IN {layer_offset: row.layer_offset, maps: row.maps,
                         input_map: row.input_map, strict: row.strict}]->(m)
SET a.verified = row.verified, a.deviation = row.deviation, a.exact = row.exact
"""

COUNT_LABELS = """
MATCH (n)
UNWIND labels(n) AS label
RETURN label, count(*) AS count
ORDER BY label
"""

COUNT_TYPES = """
MATCH ()-[r]->()
RETURN type(r) AS type, count(*) AS count
ORDER BY type
"""


class ExampleQuery(NamedTuple):
    """A documented query: what it answers, its text, and example parameter values."""

    description: str
    query: str
    params: dict[str, Any]


SIGNATURES_IN_MOST_MODELS = """
MATCH (n:Neuron)-[:COMPUTES]->(s:Signature)
WITH s, count(DISTINCT n.model_id) AS models, count(n) AS neurons
RETURN s.hash AS hash, s.domain AS domain, s.fan_in AS fan_in,
       s.fire_count AS fire_count, models, neurons
ORDER BY models DESC, neurons DESC, hash
LIMIT $limit
"""

# Only verified embeddings count as appearances (as in ``roon where``'s summary); the
# others stay in the graph with verified = false.
MODELS_WITH_CIRCUIT = """
MATCH (c:Circuit {name: $circuit})-[a:APPEARS_IN]->(m:Model)
WHERE a.verified
RETURN DISTINCT m.id AS model_id, m.name AS model, a.layer_offset AS layer_offset
ORDER BY model, model_id, layer_offset
"""

FEEDING_NEURON = """
MATCH (source:Neuron)-[f:FEEDS]->(:Neuron {id: $neuron_id})
WHERE abs(f.weight) > $threshold
RETURN source.id AS source, source.layer AS layer, source.index AS index,
       f.weight AS weight
ORDER BY abs(f.weight) DESC, source
"""

# Two-layer motifs (roon recurring --kind motif): a neuron of layer >= 1 with the
# signatures and weight signs (hash + "1" or "-1") of its two strongest incoming FEEDS
# (ties by input index), the pair in a fixed order so that input order does not matter.
RECURRING_MOTIFS = """
MATCH (src:Neuron)-[f:FEEDS]->(n:Neuron)-[:COMPUTES]->(s:Signature),
      (src)-[:COMPUTES]->(inner:Signature)
WHERE n.layer >= 1 AND f.weight <> 0
WITH n, s, src, inner.hash + toString(sign(f.weight)) AS part, abs(f.weight) AS strength
ORDER BY n.id, strength DESC, src.index
WITH n, s, collect(part)[0..2] AS top
WITH n, s, CASE WHEN size(top) = 2 AND top[1] < top[0] THEN [top[1], top[0]] ELSE top END AS inputs
RETURN s.hash AS signature, inputs, count(DISTINCT n.model_id) AS models, count(n) AS neurons
ORDER BY models DESC, neurons DESC, signature
LIMIT $limit
"""

# Every DERIVED_FROM step above the model, nearest first: depth 1 is the step that made
# it, depth 2 the step that made its parent, and so on.
LINEAGE = """
MATCH path = (:Model {id: $model_id})-[:DERIVED_FROM*1..]->(:Model)
WITH length(path) AS depth, last(relationships(path)) AS step
RETURN depth, startNode(step).id AS model_id, step.rule AS rule, step.params AS params,
       endNode(step).id AS derived_from, endNode(step).name AS parent_name
ORDER BY depth, rule, derived_from
"""

EXAMPLE_QUERIES: dict[str, ExampleQuery] = {
    "signatures_in_most_models": ExampleQuery(
        "the signatures (neuron functions) that appear in the most models",
        SIGNATURES_IN_MOST_MODELS,
        {"limit": 10},
    ),
    "models_with_circuit": ExampleQuery(
        "the models in which a named circuit appears, with its layer offset",
        MODELS_WITH_CIRCUIT,
        {"circuit": "xor"},
    ),
    "feeding_neuron": ExampleQuery(
        "the neurons feeding a given neuron with |weight| > threshold, strongest first",
        FEEDING_NEURON,
        {"neuron_id": "<model_id>:1:0", "threshold": 0.5},
    ),
    "recurring_motifs": ExampleQuery(
        "two-layer motifs (a neuron and its two strongest inputs) in the most models",
        RECURRING_MOTIFS,
        {"limit": 10},
    ),
    "lineage": ExampleQuery(
        "the lineage of a normalized model: each normalization step back to the original",
        LINEAGE,
        {"model_id": "<model_id>"},
    ),
}

_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_statements(text: str) -> list[str]:
    """Split a Cypher script into statements: ``;`` ends one, ``//`` lines are comments.

    Meant for roon's own schema file, whose statements hold no ``;`` or ``//`` inside
    strings. Whitespace inside a statement is collapsed to single spaces.

    Example:
        >>> split_statements("// c\\nRETURN 1;\\nRETURN\\n  2;")
        ['RETURN 1', 'RETURN 2']
    """
    body = _COMMENT.sub("", text)
    return [" ".join(part.split()) for part in body.split(";") if part.strip()]


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``name=value`` pairs; a value is JSON when it parses, else a string.

    So ``n=3`` gives the integer 3, ``ok=true`` a boolean, ``ids=["a","b"]`` a list,
    ``name=xor`` the string ``"xor"`` and ``name='"3"'`` the string ``"3"``.

    Raises:
        QueryError: an item without ``=``, or a name that is not a Cypher identifier.

    Example:
        >>> parse_params(["limit=5", "circuit=xor"])
        {'limit': 5, 'circuit': 'xor'}
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not _PARAM_NAME.match(name):
            raise QueryError(f"--param {item!r}: expected name=value with a name like limit")
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params
