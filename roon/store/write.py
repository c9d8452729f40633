"""Atomic, idempotent writes: batches of models, rows of catalogue tables, removals.

A batch of models is written into a staging folder as one segment (one Parquet file per
table, rows in model-id order, and one weights file; every file fsynced once) and
committed by renaming the folder into ``segments/`` and writing the next manifest
generation, both under the catalogue lock: one commit, a fixed number of fsyncs, however
many models it holds. The writer holds an flock on its staging folder for as long as it
lives; only folders whose lock is free are crash debris. The model id is the content
hash, so re-ingesting is a no-op, a crash leaves only staging debris (removed later),
and two processes writing the same model both succeed: the second finds it present.

Nothing committed is modified: a removal or a replacement writes the segments that
change anew (:mod:`roon.store.segments`) and a manifest that no longer names the old
ones, whose files :func:`roon.store.manifest.collect_garbage` deletes once no reader
leases them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from roon.errors import CatalogueError, RoonError, one_line
from roon.mlp import MLP
from roon.schema import table_schema, table_spec
from roon.store import layout
from roon.store.manifest import Segment, TableFile, commit, current_manifest, replaced

__all__ = [
    "Rows",
    "ROW_GROUP",
    "StagedModel",
    "TableWriter",
    "catalogue_lock",
    "fsync_dir",
    "is_disk_full",
    "writing",
    "write_atomic",
    "write_parquet",
    "write_model",
    "commit_models",
    "remove_model",
    "remove_models",
    "replace_model_tables",
    "replace_tables",
    "write_rows",
    "Stage",
    "staging",
    "new_segment_id",
    "install",
    "read_derived",
]

# Rows per Parquet row group. Segment files are sorted by model_id, so a reader of one
# model's rows (a filter on model_id) decodes one or two row groups, not the whole file;
# 2^16 rows keeps DuckDB's scans as fast as with the default 2^20 (measured in
# benchmarks/bench_catalogue.py).
ROW_GROUP = 1 << 16


@contextlib.contextmanager
def catalogue_lock(root: Path) -> Iterator[None]:
    """Exclusive lock over commits to the catalogue (blocks until free).

    A version-1 catalogue is upgraded in place first (:mod:`roon.store.upgrade`), so
    every commit writes version 2.
    """
    from roon.store.upgrade import upgrade

    with writing(layout.lock_path(root)), open(layout.lock_path(root), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            upgrade(root)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or an exhausted quota."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "[Errno 28]" in str(exc) or "No space left on device" in str(exc):
            return True  # Arrow's IO errors carry the errno in their text only
        exc = exc.__cause__  # type: ignore[assignment]
    return False


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` into a CatalogueError naming it."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise CatalogueError(
                f"cannot write {path}: the disk holding the catalogue is full "
                "(No space left on device); free space and run the command again"
            ) from exc
        raise CatalogueError(f"cannot write {path}: {one_line(exc.strerror or exc)}") from exc


_writing = writing


def fsync_dir(path: Path) -> None:
    """Make the entries of a directory (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with writing(path), open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


Rows: TypeAlias = pa.Table | Iterable[pa.RecordBatch | pa.Table]
"""A table's rows: a whole ``pyarrow.Table``, or record batches written as they come
(a generator, a ``pyarrow.RecordBatchReader``) so that a large table is never whole in
memory."""


def _conform(name: str, table: pa.Table) -> pa.Table:
    """Cast ``table`` to the schema of ``name`` (column order and types), or raise."""
    schema = table_schema(name)
    if table.schema.names != schema.names:
        raise CatalogueError(
            f"table {name!r} has columns {table.schema.names}; the schema wants {schema.names}"
        )
    return table.cast(schema)


class TableWriter:
    """One table's Parquet file, written part by part in row groups of :data:`ROW_GROUP`
    rows, conformed to the table's schema; created with its first row, fsynced on close."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, part: pa.Table | pa.RecordBatch) -> None:
        whole = part if isinstance(part, pa.Table) else pa.Table.from_batches([part])
        table = _conform(self.name, whole)
        if table.num_rows == 0:
            return
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        with writing(self.path):
            if self._writer is None:
                schema = table_schema(self.name)
                self._writer = pq.ParquetWriter(self.path, schema, compression="zstd")
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=ROW_GROUP)
        self._buffer, self._buffered = [], 0

    def close(self) -> int:
        """Write what is buffered, close and fsync the file; returns the rows written."""
        self._flush()
        if self._writer is not None:
            with writing(self.path):
                self._writer.close()
                self._writer = None
                with open(self.path, "rb") as handle:
                    os.fsync(handle.fileno())
        return self.rows

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None


def _parts(rows: Rows) -> Iterator[pa.Table | pa.RecordBatch]:
    if isinstance(rows, pa.Table):
        yield rows
    else:
        yield from rows


def write_parquet(name: str, rows: Rows, path: Path) -> int:
    """Write ``rows`` of table ``name`` (cast to its schema) to ``path``, fsynced; no file
    when there are no rows. Returns the number of rows written.

    Raises:
        CatalogueError: rows that do not match the schema, or the file cannot be written.
    """
    writer = TableWriter(name, path)
    try:
        for part in _parts(rows):
            writer.add(part)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file or folder open as ``fd``."""
    try:
        here, there = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _clean_staging(root: Path) -> None:
    """Remove staging folders whose writer is gone (crash debris).

    Liveness is the writer's flock on its folder, never a process id: a process id
    means nothing in another PID namespace (a container sharing the volume), but the
    kernel releases a dead writer's lock wherever it ran. A folder is removed only
    while its lock is held here, so its writer cannot be alive.
    """
    staging_root = layout.staging_dir(root)
    if not staging_root.is_dir():
        return
    for entry in staging_root.iterdir():
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile (committed, or cleaned by another process)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            if not _same_file(entry, fd):
                continue  # renamed away (committed) before we locked it
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        finally:
            os.close(fd)


class Stage:
    """Staging folders of one writer: each locked by it while it lives, removed at the end
    unless it was renamed away (committed).

    Example:
        >>> with Stage(root) as stage:  # doctest: +SKIP
        ...     folder = stage.folder(segment_id)  # .staging/<segment_id>/
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: list[tuple[Path, int]] = []

    def __enter__(self) -> Stage:
        _clean_staging(self.root)
        return self

    def folder(self, name: str | None = None) -> Path:
        """A new folder ``.staging/<name>`` (a random name by default), locked."""
        while True:
            folder = layout.staging_dir(self.root) / (name or uuid.uuid4().hex)
            with writing(folder):
                folder.mkdir(parents=True)
            try:
                fd = os.open(folder, os.O_RDONLY)
            except FileNotFoundError:
                continue  # a cleaner removed it between mkdir and open: make it again
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(folder, fd):
                self._held.append((folder, fd))
                return folder
            os.close(fd)  # a cleaner removed it between open and flock: make it again

    def __exit__(self, *exc: object) -> None:
        for folder, fd in self._held:
            try:
                if _same_file(folder, fd):
                    shutil.rmtree(folder, ignore_errors=True)
            finally:
                os.close(fd)
        self._held.clear()


@contextlib.contextmanager
def staging(root: Path) -> Iterator[Path]:
    """One fresh staging folder, locked while it lives, removed afterwards unless it was
    renamed away."""
    with Stage(root) as stage:
        yield stage.folder()


_staging = staging


def new_segment_id() -> str:
    """A fresh segment id (64 random bits)."""
    return uuid.uuid4().hex[:16]


def install(root: Path, segment: Segment) -> None:
    """Rename a segment staged in ``.staging/<id>`` into ``segments/`` (call under the
    lock, then commit a manifest naming it)."""
    staged = layout.staging_dir(root) / segment.id
    if not staged.exists():  # a segment that reuses the files of another
        return
    target = root / segment.dir
    with writing(target):
        target.parent.mkdir(exist_ok=True)
        os.rename(staged, target)


@dataclass(frozen=True)
class StagedModel:
    """One model of a batch: its weights, its rows, the versions of its derived tables.

    Attributes:
        mlp: the model.
        tables: one entry per model table written (at least ``models``).
        derived: definition version of each derived table in ``tables``.
    """

    mlp: MLP
    tables: Mapping[str, Rows]
    derived: Mapping[str, int] = field(default_factory=dict)


def _check_tables(model: StagedModel) -> None:
    if "models" not in model.tables:
        raise CatalogueError("a model is written with its 'models' row")
    unknown = [t for t in model.tables if t not in layout.MODEL_TABLES]
    if unknown:
        raise CatalogueError(f"cannot write table {unknown[0]!r} for a model")
    for name, rows in model.tables.items():  # whole tables are checked before any write
        if isinstance(rows, pa.Table):
            _conform(name, rows)


def _write_batch(stage: Stage, models: Sequence[StagedModel]) -> Segment:
    """Write models (sorted by id, the same tables and versions each) as one segment,
    staged in ``.staging/<segment id>``."""
    from roon.ingest.loaders.safetensors_io import write_safetensors

    segment_id = new_segment_id()
    rel = f"segments/{segment_id}"
    folder = stage.folder(segment_id)
    pack = folder / layout.PACK_FILE
    sizes = []
    with writing(pack), open(pack, "wb") as handle:
        for model in models:
            try:
                sizes.append(write_safetensors(handle, model.mlp))
            except RoonError as exc:  # the weights could not be written: say so, not "format"
                if not isinstance(exc.__cause__, OSError):
                    raise
                raise exc.__cause__ from None
        handle.flush()
        os.fsync(handle.fileno())
    names = list(models[0].tables)
    tables = {}
    # models last, as version 1 wrote them (a reader of version 1 takes models.parquet as
    # the sign of a committed model)
    for name in sorted(names, key=lambda t: t == "models"):
        rows = write_parquet(
            name, (p for m in models for p in _parts(m.tables[name])), folder / f"{name}.parquet"
        )
        path = f"{rel}/{name}.parquet" if rows else None
        tables[name] = TableFile(path, rows, models[0].derived.get(name))
    fsync_dir(folder)
    ordered = {t: tables[t] for t in layout.MODEL_TABLES if t in tables}
    return Segment(segment_id, rel, tuple(m.mlp.id for m in models), ordered,
                   f"{rel}/{layout.PACK_FILE}", tuple(sizes))  # fmt: skip


def _groups(models: Sequence[StagedModel]) -> list[list[StagedModel]]:
    """Models sorted by id, grouped by their tables and versions (one segment each)."""
    groups: dict[tuple[object, ...], list[StagedModel]] = {}
    for model in sorted(models, key=lambda m: m.mlp.id):
        key = (tuple(sorted(model.tables)), tuple(sorted(model.derived.items())))
        groups.setdefault(key, []).append(model)
    return list(groups.values())


def commit_models(
    root: Path,
    models: Sequence[StagedModel],
    *,
    replace: bool = False,
    rows: Mapping[str, pa.Table] | None = None,
) -> list[bool]:
    """Commit a batch of models (and rows of catalogue tables) atomically, as one
    manifest generation: readers see all of it or none.

    Args:
        root: an opened catalogue.
        models: the models; a model already committed is left as it is (unless
            ``replace``), and so is the second of two with one id.
        replace: replace models already committed (``roon ingest --force``): the segments
            holding them are written anew without them, in the same commit.
        rows: rows of catalogue tables (``lineage``) to add; rows already there are
            skipped (see :func:`write_rows`).

    Returns:
        For each model, whether it was written.

    Raises:
        CatalogueError: a table that is not a model table or does not match its schema,
            or a file that cannot be written (named, with the cause: a full disk, ...).
            Nothing is committed then.
    """
    from roon.store.segments import drop_models

    for model in models:
        _check_tables(model)
    extra = {t: _conform(t, r) for t, r in (rows or {}).items()}
    present = current_manifest(root).by_model if layout.marker_path(root).is_file() else {}
    chosen: dict[str, StagedModel] = {}
    for model in models:
        if model.mlp.id not in chosen and (replace or model.mlp.id not in present):
            chosen[model.mlp.id] = model
    if not chosen and not any(t.num_rows for t in extra.values()):
        return [False] * len(models)
    with Stage(root) as stage:
        segments = [_write_batch(stage, g) for g in _groups(list(chosen.values()))]
        with catalogue_lock(root):
            current = current_manifest(root)
            late = {m for s in segments for m in s.models if m in current.by_model}
            if late and not replace:  # another process committed some of them first
                segments = [
                    drop_models(root, stage, s, late) if late.intersection(s.models) else s
                    for s in segments
                ]
                segments = [s for s in segments if s.models]
                for model_id in late:
                    chosen.pop(model_id, None)
            old: dict[str, tuple[Segment, set[str]]] = {}
            if replace:
                for model_id in chosen:
                    if model_id in current.by_model:
                        segment = current.by_model[model_id]
                        old.setdefault(segment.id, (segment, set()))[1].add(model_id)
            rewritten = [drop_models(root, stage, seg, gone) for seg, gone in old.values()]
            added = [*segments, *(s for s in rewritten if s.models or s.tables)]
            if extra:
                fresh = _fresh_rows(root, current, extra)
                if fresh:
                    added.append(_rows_segment(stage, fresh))
            for segment in added:
                install(root, segment)
            if added:
                fsync_dir(layout.segments_dir(root))
            commit(root, current, replaced(current, old, added))
    return [m.mlp.id in chosen and chosen[m.mlp.id] is m for m in models]


def write_model(
    root: Path,
    mlp: MLP,
    tables: Mapping[str, Rows],
    *,
    derived: Mapping[str, int] | None = None,
    replace: bool = False,
) -> bool:
    """Commit one model atomically. Returns False (and writes nothing) if already present.

    Args:
        root: an opened catalogue (see :func:`~roon.store.layout.open_catalogue`).
        mlp: the model; its weights are stored losslessly beside the tables.
        tables: the model's rows, one entry per model table (at least ``models``), each
            matching its schema file: a ``pyarrow.Table``, or record batches that are
            written as they come (``edges`` of a large model).
        derived: definition version of each derived table written, so that ``roon
            reindex`` can tell which ones a later roon computes differently.
        replace: replace the model if it is present (``roon ingest --force``): readers
            see the old model or the new one, never a mix.

    Raises:
        CatalogueError: a table that is not a model table or does not match its schema,
            or a file that cannot be written (named, with the cause: a full disk, ...).
            Nothing is committed then.
    """
    versions = {t: v for t, v in (derived or {}).items() if t in tables}
    return commit_models(root, [StagedModel(mlp, tables, versions)], replace=replace)[0]


def remove_model(root: Path, model_id: str) -> bool:
    """Remove one committed model atomically. Returns False if it is not present."""
    return bool(_remove(root, [model_id]))


def _remove(root: Path, ids: Sequence[str]) -> list[str]:
    """Remove models in one commit: the segments holding them are written anew without
    them. Returns the ids that were present."""
    from roon.store.segments import drop_models

    with Stage(root) as stage, catalogue_lock(root):
        current = current_manifest(root)
        found = [m for m in dict.fromkeys(ids) if m in current.by_model]
        if not found:
            return []
        old: dict[str, tuple[Segment, set[str]]] = {}
        for model_id in found:
            segment = current.by_model[model_id]
            old.setdefault(segment.id, (segment, set()))[1].add(model_id)
        added = []
        for segment, gone in old.values():
            new = drop_models(root, stage, segment, gone)
            if new.models or new.tables:
                added.append(new)
        for segment in added:
            install(root, segment)
        commit(root, current, replaced(current, old, added))
        return found


def remove_models(catalogue: str | os.PathLike[str], refs: Sequence[str]) -> list[tuple[str, str]]:
    """Remove models by reference (id, id prefix or name): what ``roon rm`` does.

    Every reference is resolved before anything is removed, so one that matches nothing
    (or several models) removes nothing; the models then go in one commit. Lineage rows
    naming them stay: they record how models were derived, and lineage already names
    models that are not stored (the intermediate steps of a normalization), which
    ``roon lineage`` and ``roon show`` mark.

    Returns:
        ``(model_id, name)`` of each model removed, in the order given.

    Raises:
        CatalogueError: no catalogue, or a reference that matches no model or several.
    """
    from roon.store.read import model_names, resolve_model

    root = layout.open_catalogue(catalogue)
    ids = list(dict.fromkeys(resolve_model(root, str(ref)) for ref in refs))
    names = model_names(root)
    gone = set(_remove(root, ids))
    return [(m, names.get(m, "")) for m in ids if m in gone]


def replace_model_tables(
    root: Path, model_id: str, tables: Mapping[str, Rows], derived: Mapping[str, int]
) -> None:
    """Replace derived tables of one committed model (what ``roon reindex`` writes).

    Raises:
        CatalogueError: no such model, or a table that does not match its schema.
    """
    replace_tables(root, {model_id: tables}, derived)


def replace_tables(
    root: Path, new: Mapping[str, Mapping[str, Rows]], derived: Mapping[str, int]
) -> None:
    """Replace derived tables of committed models, in one commit.

    ``new`` maps each model to its new rows of some tables (the same tables for every
    model). The segments holding them are written anew: a segment all of whose models
    are given keeps its other files as they are and gains new files of those tables; a
    segment only some of whose models are given is split, those models going into a new
    segment (so that every file holds rows of one definition version). A crash at any
    point leaves the old generation current, so the next reindex redoes it.

    Raises:
        CatalogueError: no such model, or a table that does not match its schema.
    """
    from roon.store.segments import Source, build_segment, drop_models

    names = {t for tables in new.values() for t in tables}
    for tables in new.values():
        for name, rows in tables.items():
            if name not in layout.MODEL_TABLES or name == "models":
                raise CatalogueError(f"cannot replace table {name!r} of a model")
            if isinstance(rows, pa.Table):
                _conform(name, rows)
    with Stage(root) as stage, catalogue_lock(root):
        current = current_manifest(root)
        groups: dict[str, tuple[Segment, list[str]]] = {}
        for model_id in new:
            segment = current.by_model.get(model_id)
            if segment is None:
                raise CatalogueError(f"no model {model_id} in {root}")
            groups.setdefault(segment.id, (segment, []))[1].append(model_id)
        added: list[Segment] = []
        for segment, ids in groups.values():
            whole = set(ids) == set(segment.models)
            versions = {t: e.version for t, e in segment.tables.items() if t in layout.MODEL_TABLES}
            versions.update({t: derived.get(t) for t in names})
            write = {t: v for t, v in versions.items() if whole is False or t in names}
            keep = {t: e for t, e in segment.tables.items() if t not in write}
            segment_id = new_segment_id()

            def source(model_id: str, segment: Segment = segment) -> Source:
                return Source(segment, tables=new[model_id])

            built = build_segment(
                root,
                stage.folder(segment_id),
                segment_id,
                ids,
                source,
                write,
                keep=keep if whole else None,
                weights_of=segment if whole else None,
            )
            added.append(built)
            if not whole:
                rest = drop_models(root, stage, segment, set(ids))
                if rest.models or rest.tables:
                    added.append(rest)
        for segment in added:
            install(root, segment)
        fsync_dir(layout.segments_dir(root))
        commit(root, current, replaced(current, groups, added))


def read_derived(path: Path) -> dict[str, int]:
    """The ``{table: version}`` map of a version-1 ``derived.json`` ({} when missing or bad)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _row_key(table: str, row: Mapping[str, object]) -> str:
    key = table_spec(table).get("key") or table_schema(table).names
    material = "|".join(str(row[k]) for k in key)
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


# Row keys of each catalogue-table file, by path: a file never changes once committed
# (a new one gets a new segment folder), so a process reads each file's keys once, and
# repeated writes (lineage during an ingest) do not re-read every file.
_KEYS: dict[str, frozenset[str]] = {}


def _present_keys(root: Path, files: Iterable[Path], table: str) -> set[str]:
    """Row keys of the rows already stored in a catalogue table's files."""
    from roon.store.check import damaged_file

    key = table_spec(table).get("key") or table_schema(table).names
    found: set[str] = set()
    for path in files:
        cached = _KEYS.get(str(path))
        if cached is None:
            try:
                rows = pq.read_table(path, columns=list(key)).to_pylist()
            except (OSError, pa.ArrowException) as exc:
                raise damaged_file(root, path, exc) from None
            cached = _KEYS[str(path)] = frozenset(_row_key(table, r) for r in rows)
        found.update(cached)
    return found


def _fresh_rows(root: Path, current: object, rows: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The rows of each catalogue table not stored yet (keys from the table's spec)."""
    fresh = {}
    for table, new in rows.items():
        if table not in layout.CATALOGUE_TABLES:
            raise CatalogueError(f"{table!r} is not a catalogue table")
        files = [root / f for f in current.files(table)]  # type: ignore[attr-defined]
        present = _present_keys(root, files, table)
        keep: dict[str, int] = {}
        for i, k in enumerate(_row_key(table, r) for r in new.to_pylist()):
            if k not in present and k not in keep:
                keep[k] = i
        if keep:
            fresh[table] = new.take(pa.array(list(keep.values()), type=pa.int64()))
    return fresh


def _rows_segment(stage: Stage, rows: Mapping[str, pa.Table]) -> Segment:
    """Rows of catalogue tables as a segment of their own, staged in ``.staging/<id>``."""
    segment_id = new_segment_id()
    rel = f"segments/{segment_id}"
    folder = stage.folder(segment_id)
    tables = {}
    for table, new in rows.items():
        count = write_parquet(table, new, folder / f"{table}.parquet")
        tables[table] = TableFile(f"{rel}/{table}.parquet" if count else None, count)
    fsync_dir(folder)
    return Segment(segment_id, rel, tables=tables)


def write_rows(root: Path, table: str, rows: pa.Table) -> int:
    """Add rows to a catalogue table (``lineage``, ``matches``, ...); rows already there
    are skipped.

    A row's identity is the table's ``key`` columns (its schema file), so writing the
    same rows twice adds nothing. The new rows go into one Parquet file, a segment of
    their own, committed under the lock. Returns the rows added.

    Raises:
        CatalogueError: rows that do not match the schema, a damaged row file, or a file
            that cannot be written (named, with the cause).
    """
    rows = _conform(table, rows)
    if table not in layout.CATALOGUE_TABLES:
        raise CatalogueError(
            f"{table!r} is not a catalogue table ({', '.join(layout.CATALOGUE_TABLES)})"
        )
    with Stage(root) as stage, catalogue_lock(root):
        current = current_manifest(root)
        fresh = _fresh_rows(root, current, {table: rows})
        if not fresh:
            return 0
        segment = _rows_segment(stage, fresh)
        install(root, segment)
        fsync_dir(layout.segments_dir(root))
        commit(root, current, [*current.segments, segment])
        return fresh[table].num_rows
