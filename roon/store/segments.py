"""Writing segments from other segments: without some models, with some tables replaced,
or many merged into one (``roon compact``).

Every model table of a segment holds its rows in the order of its ``models`` (sorted
ids), so a new segment is written in one pass over its models: each model's rows of
each table come either from a file of an old segment (read batch by batch, in order) or
from new rows; its weights from an old weights file or from the model. Memory stays
bounded by a few record batches per table, whatever the segments' sizes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roon.errors import CatalogueError
from roon.mlp import MLP
from roon.store import layout
from roon.store.manifest import Segment, TableFile

__all__ = ["Source", "build_segment", "drop_models", "merge_segments", "read_blob", "read_range"]

# Rows per record batch read from an old segment file.
READ_BATCH = 8192


@dataclass(frozen=True)
class Source:
    """Where one model of a new segment comes from.

    Attributes:
        segment: the old segment holding its rows and weights (None for a new model).
        tables: new rows of some tables (replacing the old segment's rows of those).
        mlp: its weights, when they are not taken from ``segment``.
    """

    segment: Segment | None = None
    tables: Mapping[str, Any] | None = None
    mlp: MLP | None = None


class _Pieces:
    """The rows of one old segment file, handed out model by model, in file order."""

    def __init__(self, root: Path, path: str, table: str) -> None:
        import pyarrow.dataset as ds

        from roon.schema import table_schema

        self._path = root / path
        self._root = root
        try:
            dataset = ds.dataset([str(self._path)], schema=table_schema(table), format="parquet")
            self._batches = iter(dataset.to_batches(batch_size=READ_BATCH))
        except (OSError, ValueError) as exc:
            raise self._damaged(exc) from None
        self._current: Any = None
        self._runs: list[tuple[str, int, int]] = []

    def _damaged(self, exc: object) -> CatalogueError:
        from roon.store.check import damaged_file

        return damaged_file(self._root, self._path, exc)

    def _refill(self) -> bool:
        import pyarrow as pa
        import pyarrow.compute as pc

        while not self._runs:
            try:
                batch = next(self._batches)
            except StopIteration:
                return False
            except (OSError, pa.ArrowException) as exc:
                raise self._damaged(exc) from None
            if batch.num_rows == 0:
                continue
            runs = pc.run_end_encode(batch.column("model_id"))
            ends = runs.run_ends.to_pylist()
            starts = [0, *ends[:-1]]
            self._current = batch
            self._runs = list(zip(runs.values.to_pylist(), starts, ends, strict=True))
        return True

    def take(self, model_id: str) -> Iterator[Any]:
        """The rows of ``model_id`` (skipping those of models before it)."""
        while self._refill():
            found, start, end = self._runs[0]
            if found > model_id:
                return
            self._runs.pop(0)
            if found == model_id:
                yield self._current.slice(start, end - start)


def read_range(path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes of a file from ``offset``.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is shorter than that (the message says so).
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise ValueError(f"truncated: safetensors data of {len(data)} bytes, not {size}")
    return data


def read_blob(root: Path, segment: Segment, model_id: str) -> bytes:
    """One model's safetensors file, read from its segment's weights file.

    Raises:
        CatalogueError: the weights file is missing or shorter than the manifest says.
    """
    from roon.store.check import damaged_file

    if segment.weights is None:
        raise CatalogueError(f"catalogue {root}: segment {segment.id} holds no weights")
    path = root / segment.weights
    try:
        return read_range(path, *segment.blob(model_id))
    except FileNotFoundError:
        raise damaged_file(root, path, "missing") from None
    except OSError as exc:
        raise damaged_file(root, path, exc.strerror or exc) from None
    except ValueError as exc:
        raise damaged_file(root, path, exc) from None


def build_segment(
    root: Path,
    folder: Path,
    segment_id: str,
    models: Sequence[str],
    source: Callable[[str], Source],
    tables: Mapping[str, int | None],
    *,
    keep: Mapping[str, TableFile] | None = None,
    weights_of: Segment | None = None,
) -> Segment:
    """Write a segment into ``folder``: for each model (sorted), its rows of each of
    ``tables`` (name → definition version) and its weights, from ``source(model)``.

    Args:
        keep: table entries taken over as they are (files that do not change).
        weights_of: a segment of the same models whose weights file is taken over as it
            is (instead of writing one).
    """
    from roon.ingest.loaders.safetensors_io import write_safetensors
    from roon.store.write import TableWriter, writing

    rel = f"segments/{segment_id}"
    ordered = [t for t in layout.MODEL_TABLES if t in tables]
    writers = {t: TableWriter(t, folder / f"{t}.parquet") for t in ordered}
    pieces: dict[tuple[str, str], _Pieces] = {}
    sizes = []
    pack = folder / layout.PACK_FILE
    try:
        with writing(pack), open(pack, "wb") as out:
            for model_id in sorted(models):
                src = source(model_id)
                for table, writer in writers.items():
                    new = (src.tables or {}).get(table)
                    if new is not None:
                        for part in [new] if hasattr(new, "num_rows") else new:
                            writer.add(part)
                        continue
                    entry = src.segment.tables.get(table) if src.segment is not None else None
                    if entry is None or entry.path is None:
                        continue
                    key = (src.segment.id, table)  # type: ignore[union-attr]
                    if key not in pieces:
                        pieces[key] = _Pieces(root, entry.path, table)
                    for part in pieces[key].take(model_id):
                        writer.add(part)
                if weights_of is not None:
                    pass
                elif src.mlp is not None:
                    sizes.append(write_safetensors(out, src.mlp))
                elif src.segment is not None:
                    data = read_blob(root, src.segment, model_id)
                    sizes.append(out.write(data))
                    del data
                else:
                    raise CatalogueError(f"internal error: no weights for model {model_id}")
            out.flush()
            os.fsync(out.fileno())
        entries = {}
        for table, writer in writers.items():
            rows = writer.close()
            path = f"{rel}/{table}.parquet" if rows else None
            entries[table] = TableFile(path, rows, tables[table])
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    from roon.store.write import fsync_dir

    if weights_of is not None:
        pack.unlink(missing_ok=True)
        weights, sizes = weights_of.weights, list(weights_of.sizes)
    elif models:
        weights = f"{rel}/{layout.PACK_FILE}"
    else:
        pack.unlink(missing_ok=True)
        weights = None
    fsync_dir(folder)
    merged = {**entries, **(keep or {})}
    in_order = {t: merged[t] for t in layout.TABLES_ORDER if t in merged}
    return Segment(segment_id, rel, tuple(sorted(models)), in_order, weights, tuple(sizes))


def _model_tables(segment: Segment) -> dict[str, int | None]:
    return {t: e.version for t, e in segment.tables.items() if t in layout.MODEL_TABLES}


def _catalogue_tables(segment: Segment) -> dict[str, TableFile]:
    return {t: e for t, e in segment.tables.items() if t in layout.CATALOGUE_TABLES}


def drop_models(root: Path, stage: Any, segment: Segment, gone: set[str]) -> Segment:
    """A new segment (staged in ``stage``) holding ``segment`` without the models in
    ``gone``; its rows of catalogue tables stay in their files."""
    from roon.store.write import new_segment_id

    segment_id = new_segment_id()
    kept = [m for m in segment.models if m not in gone]
    if not kept:  # nothing to write: its catalogue rows stay where they are
        return Segment(segment_id, f"segments/{segment_id}", tables=_catalogue_tables(segment))
    folder = stage.folder(segment_id)
    return build_segment(
        root,
        folder,
        segment_id,
        kept,
        lambda _: Source(segment),
        _model_tables(segment),
        keep=_catalogue_tables(segment),
    )


def merge_segments(root: Path, stage: Any, segments: Sequence[Segment]) -> Segment:
    """One new segment (staged in ``stage``) holding every model and row of
    ``segments``: model tables merged in model order, catalogue tables concatenated.

    Raises:
        CatalogueError: the segments hold different tables or definition versions.
    """
    from roon.store.write import new_segment_id, write_parquet

    shapes = {tuple(sorted(_model_tables(s).items())) for s in segments if s.models}
    if len(shapes) > 1:
        raise CatalogueError("internal error: merging segments of different tables or versions")
    tables = dict(shapes.pop()) if shapes else {}
    owner = {m: s for s in segments for m in s.models}
    segment_id = new_segment_id()
    folder = stage.folder(segment_id)
    merged = build_segment(
        root, folder, segment_id, sorted(owner), lambda m: Source(owner[m]), tables
    )
    rel = merged.dir
    extra = {}
    for table in layout.CATALOGUE_TABLES:
        files = [e.path for s in segments if (e := s.tables.get(table)) and e.path]
        if not files:
            continue
        rows = write_parquet(table, _concatenated(root, files, table), folder / f"{table}.parquet")
        extra[table] = TableFile(f"{rel}/{table}.parquet" if rows else None, rows)
    from roon.store.write import fsync_dir

    fsync_dir(folder)
    return Segment(merged.id, rel, merged.models, {**merged.tables, **extra}, merged.weights,
                   merged.sizes)  # fmt: skip


def _concatenated(root: Path, files: Sequence[str], table: str) -> Iterator[Any]:
    """The rows of some files of a catalogue table, batch by batch."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from roon.schema import table_schema
    from roon.store.check import damaged_file

    for path in files:
        try:
            dataset = ds.dataset([str(root / path)], schema=table_schema(table), format="parquet")
            yield from dataset.to_batches(batch_size=READ_BATCH)
        except (OSError, pa.ArrowException) as exc:
            raise damaged_file(root, root / path, exc) from None
