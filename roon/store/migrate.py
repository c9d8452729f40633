"""Format versions of derived tables: which tables of a model a newer roon computes anew.

Each model folder records, in ``derived.json``, the definition version of every derived
table written for it (signatures, tokens, ...). A table that is missing, or recorded with
an older version than the running roon's, is *stale*; ``roon reindex`` recomputes stale
tables from the stored weights, so a catalogue built today gains tomorrow's columns
without the original model files. Models written before ``derived.json`` existed count
their present tables as version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from roon.store import layout
from roon.store.write import read_derived

__all__ = ["derived_versions", "stale_tables"]


def derived_versions(root: Path, model_id: str) -> dict[str, int]:
    """``{table: version}`` of the derived tables stored for one model."""
    recorded = read_derived(layout.derived_path(root, model_id))
    present = {t: 1 for t in layout.MODEL_TABLES if layout.table_path(root, model_id, t).is_file()}
    return {t: recorded.get(t, v) for t, v in present.items()}


def stale_tables(root: Path, model_id: str, current: Mapping[str, int]) -> list[str]:
    """Derived tables of a model that are missing, older than ``current``, or whose file
    is damaged (its Parquet footer does not decode), sorted."""
    stored = derived_versions(root, model_id)
    return sorted(
        t
        for t, v in current.items()
        if stored.get(t, 0) < v or not _readable(layout.table_path(root, model_id, t))
    )


def _readable(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception:  # ArrowInvalid, OSError: truncated, overwritten, not Parquet
        return False
    return True
