"""Original and derived models: what counts when models are counted.

A catalogue holds the models that were ingested (from a file or a module) and, after
``roon ingest --normalize`` or ``roon normalize --store``, the models a normalizer derived
from them (``provenance.format = 'derived'``, named ``<name>+<rules>``). A derived model
computes (nearly) the same function as its parent, so counting both would count one
network twice: "this signature recurs in 46 of 45 networks". Counts over models leave
derived ones out unless asked; this module is the one place that says how.

Example:
    >>> from roon.query.originals import originals_only
    >>> originals_only("s.model_id")
    "s.model_id IN (SELECT model_id FROM provenance WHERE format <> 'derived')"
"""

from __future__ import annotations

from roon.ingest.rows import DERIVED_FORMAT

__all__ = ["DERIVED_FORMAT", "ORIGINAL_MODELS_SQL", "originals_only"]

# The ids of the models that were ingested, not derived by a normalizer.
ORIGINAL_MODELS_SQL = f"SELECT model_id FROM provenance WHERE format <> '{DERIVED_FORMAT}'"


def originals_only(column: str = "model_id", *, include_derived: bool = False) -> str:
    """A SQL predicate keeping rows of original models (``TRUE`` with ``include_derived``).

    Args:
        column: the model id column of the rows to filter, e.g. ``s.model_id``.
        include_derived: count derived models too (a ``--include-derived`` option).
    """
    if include_derived:
        return "TRUE"
    return f"{column} IN ({ORIGINAL_MODELS_SQL})"
