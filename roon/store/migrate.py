"""Format versions of derived tables: which tables of a model a newer roon computes anew.

The manifest records, for every table file of a segment, the definition version of the
derived table it holds (signatures, tokens, ...; one version per file: a file is
computed by one definition). A table that is missing, recorded with an older version
than the running roon's, or whose file does not decode, is *stale*; ``roon reindex``
recomputes stale tables from the stored weights, so a catalogue built today gains
tomorrow's columns without the original model files. Tables of version-1 models come
from their ``derived.json`` (1 where it is missing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from roon.store import layout
from roon.store.manifest import Manifest, Segment, current_manifest

__all__ = ["derived_versions", "readable", "stale_tables", "stale_models"]


def derived_versions(root: Path, model_id: str) -> dict[str, int]:
    """``{table: version}`` of the tables stored for one model (1 where unrecorded)."""
    segment = current_manifest(root).by_model.get(model_id)
    if segment is None:
        return {}
    return {
        t: 1 if e.version is None else e.version
        for t, e in segment.tables.items()
        if t in layout.MODEL_TABLES
    }


def stale_tables(root: Path, model_id: str, current: Mapping[str, int]) -> list[str]:
    """Derived tables of a model that are missing, older than ``current``, or whose file
    is damaged (its Parquet footer does not decode), sorted."""
    return stale_models(root, [model_id], current).get(model_id, [])


def stale_models(
    root: Path,
    models: Sequence[str],
    current: Mapping[str, int],
    *,
    manifest: Manifest | None = None,
) -> dict[str, list[str]]:
    """:func:`stale_tables` of many models at once (each segment file checked once)."""
    manifest = manifest or current_manifest(root)
    seen: dict[str, bool] = {}
    out = {}
    for model_id in models:
        segment = manifest.by_model.get(model_id)
        if segment is None:
            continue
        out[model_id] = _stale(root, segment, current, seen)
    return out


def _stale(
    root: Path, segment: Segment, current: Mapping[str, int], seen: dict[str, bool]
) -> list[str]:
    found = []
    for table, version in current.items():
        entry = segment.tables.get(table)
        if entry is None or (1 if entry.version is None else entry.version) < version:
            found.append(table)
            continue
        if entry.path is None:
            continue
        if entry.path not in seen:
            seen[entry.path] = readable(root / entry.path)
        if not seen[entry.path]:
            found.append(table)
    return sorted(found)


def readable(path: Path) -> bool:
    """Whether a Parquet file's footer decodes."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception:  # ArrowInvalid, OSError: truncated, overwritten, missing, not Parquet
        return False
    return True
