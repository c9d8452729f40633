"""``roon compact``: merge a catalogue's segments into few, atomically.

Segments of the same tables and definition versions are merged into one (model tables
merged in model-id order, rows of catalogue tables concatenated); segments that differ
(a derived table of an older definition, before ``roon reindex``) stay apart. The merged
segments are staged, then committed as one manifest generation, under the catalogue
lock: readers see the old segments or the merged ones, never a mix, and those reading
the old ones keep them (their lease) until they finish. A crash at any point leaves the
old generation current and nothing lost: the staged folder is removed by the next
writer, a merged folder renamed in but not committed by the next compaction.

Concurrent ingests stay safe: they stage their batches meanwhile and commit after the
compaction, in the generation after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roon.progress import ProgressCallback, emit
from roon.store import layout

if TYPE_CHECKING:
    from roon.store.manifest import Segment

__all__ = ["CompactResult", "compact"]


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did.

    Attributes:
        catalogue: the catalogue.
        models: models in the catalogue.
        segments_before: live segments before.
        segments_after: live segments after.
        debris_removed: files no generation named (a commit or compaction killed
            between renaming its segment in and writing its manifest), deleted.
    """

    catalogue: str
    models: int
    segments_before: int
    segments_after: int
    debris_removed: int


def _shape(segment: Segment) -> tuple[object, ...]:
    tables = segment.tables
    return tuple(sorted((t, e.version) for t, e in tables.items() if t in layout.MODEL_TABLES))


def compact(
    catalogue: str | os.PathLike[str], *, progress: ProgressCallback | None = None
) -> CompactResult:
    """Merge the segments of a catalogue (see the module docstring).

    A version-1 catalogue is upgraded first (its model folders become segments), so a
    compaction is also how an old catalogue gets the new layout's read speed.

    Args:
        catalogue: the catalogue directory.
        progress: ``segments`` events, one per group of segments merged.

    Raises:
        CatalogueError: no catalogue, a damaged file of a segment to merge (named, with
            ``roon check --repair`` as the fix), or a file that cannot be written.
            Nothing changes then.
    """
    from roon.store.manifest import commit, current_manifest, replaced, sweep
    from roon.store.segments import merge_segments
    from roon.store.write import Stage, catalogue_lock, fsync_dir, install

    root = layout.open_catalogue(catalogue)
    with Stage(root) as stage, catalogue_lock(root):
        current = current_manifest(root)
        groups: dict[tuple[object, ...], list[Segment]] = {}
        rows_only: list[Segment] = []
        for segment in current.segments:
            if segment.models:
                groups.setdefault(_shape(segment), []).append(segment)
            else:
                rows_only.append(segment)
        todo = [g for g in groups.values() if len(g) > 1]
        if len(rows_only) > 1:
            todo.append(rows_only)
        merged, gone = [], []
        for number, group in enumerate(todo):
            emit(progress, "segments", number, len(todo), f"{len(group)} segments")
            merged.append(merge_segments(root, stage, group))
            gone += [s.id for s in group]
            emit(progress, "segments", number + 1, len(todo), f"{len(group)} segments")
        after = current
        if merged:
            for segment in merged:
                install(root, segment)
            fsync_dir(layout.segments_dir(root))
            after = commit(root, current, replaced(current, gone, merged))
        removed = sweep(root, after)
        return CompactResult(
            str(root),
            len(after.by_model),
            len(current.segments),
            len(after.segments),
            removed,
        )
