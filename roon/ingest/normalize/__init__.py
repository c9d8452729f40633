"""Normalizers: pure rules ``MLP -> (MLP, Step)`` composed into pipelines.

Exact rules (``zero-out``, ``constant``, ``exact-duplicates``, ``rescale``, ``canonical``)
preserve the function on the input domain; approximate ones (``dead``, ``duplicates``,
``low-variance``) follow seed 004 with thresholds as parameters. Every step records the
parent and child model ids, what changed per layer and the largest output change on a
fixed sample; :func:`lineage_table` turns steps into catalogue rows.
"""

from roon.ingest.normalize.approx_rules import load_sample
from roon.ingest.normalize.pipeline import (
    PRESETS,
    RULES,
    Rule,
    domain_note,
    normalize,
    resolve_rules,
)
from roon.ingest.normalize.records import Step, lineage_table, normalization_report

__all__ = [
    "PRESETS",
    "RULES",
    "Rule",
    "Step",
    "domain_note",
    "lineage_table",
    "load_sample",
    "normalization_report",
    "normalize",
    "resolve_rules",
]
