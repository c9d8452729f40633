"""Atomic, idempotent writes: whole models, rows of catalogue tables, derived tables.

A model is written into a staging folder (every file fsynced, large tables batch by
batch) and committed by renaming the folder to ``models/<model_id>`` under the catalogue
lock. The writer holds an flock on its staging folder for as long as it lives; only
folders whose lock is free are crash debris. The model id is the content
hash, so re-ingesting is a no-op, a crash leaves only staging debris (removed later), and
two processes writing the same model both succeed: the second finds it present.
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
from pathlib import Path
from typing import TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from roon.errors import CatalogueError, RoonError, one_line
from roon.mlp import MLP
from roon.schema import table_schema, table_spec
from roon.store import layout

__all__ = [
    "Rows",
    "catalogue_lock",
    "fsync_dir",
    "is_disk_full",
    "write_atomic",
    "write_model",
    "remove_model",
    "remove_models",
    "write_rows",
    "replace_model_tables",
    "read_derived",
]


@contextlib.contextmanager
def catalogue_lock(root: Path) -> Iterator[None]:
    """Exclusive lock over commits to the catalogue (blocks until free)."""
    with _writing(layout.lock_path(root)), open(layout.lock_path(root), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
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
def _writing(path: Path) -> Iterator[None]:
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
        with _writing(path), open(tmp, "wb") as handle:
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


def _write_parquet(name: str, rows: Rows, path: Path) -> int:
    """Write ``rows`` of table ``name`` (cast to its schema) to ``path``, fsynced.

    Returns the number of rows written.

    Raises:
        CatalogueError: rows that do not match the schema, or the file cannot be written.
    """
    schema = table_schema(name)
    written = 0
    with _writing(path):
        if isinstance(rows, pa.Table):
            table = _conform(name, rows)
            pq.write_table(table, path, compression="zstd")
            written = table.num_rows
        else:
            with pq.ParquetWriter(path, schema, compression="zstd") as writer:
                for batch in rows:  # record batches, or tables of a few rows
                    whole = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
                    part = _conform(name, whole)
                    writer.write_table(part)
                    written += part.num_rows
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    return written


def _conform(name: str, table: pa.Table) -> pa.Table:
    """Cast ``table`` to the schema of ``name`` (column order and types), or raise."""
    schema = table_schema(name)
    if table.schema.names != schema.names:
        raise CatalogueError(
            f"table {name!r} has columns {table.schema.names}; the schema wants {schema.names}"
        )
    return table.cast(schema)


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
    staging = layout.staging_dir(root)
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
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
                continue  # renamed into models/ (committed) before we locked it
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A fresh staging folder, locked by this writer while it lives, removed afterwards
    unless it was renamed away."""
    _clean_staging(root)
    while True:
        folder = layout.staging_dir(root) / uuid.uuid4().hex
        with _writing(folder):
            folder.mkdir(parents=True)
        try:
            fd = os.open(folder, os.O_RDONLY)
        except FileNotFoundError:
            continue  # a cleaner removed it between mkdir and open: take another
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(folder, fd):
            break
        os.close(fd)  # a cleaner removed it between open and flock: take another
    try:
        yield folder
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


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
        derived: definition version of each derived table written (``derived.json``), so
            that ``roon reindex`` can tell which ones a later roon computes differently.
        replace: replace the model if it is present (``roon ingest --force``): the new
            folder is staged whole, then the old one is renamed away and the new one into
            place under the lock, so a commit is never mixed; a crash between the two
            renames leaves the model absent (the next ingest stores it again).

    Raises:
        CatalogueError: a table that is not a model table or does not match its schema,
            or a file that cannot be written (named, with the cause: a full disk, ...).
            Nothing is committed then.
    """
    from roon.ingest.loaders import save_safetensors

    if "models" not in tables:
        raise CatalogueError("a model is written with its 'models' row")
    unknown = [t for t in tables if t not in layout.MODEL_TABLES]
    if unknown:
        raise CatalogueError(f"cannot write table {unknown[0]!r} for a model")
    if _has_model(root, mlp.id) and not replace:
        return False
    for name, rows in tables.items():  # whole tables are checked before anything is written
        if isinstance(rows, pa.Table):
            _conform(name, rows)
    with _staging(root) as staging:
        try:
            save_safetensors(mlp, staging / layout.WEIGHTS_FILE)
        except RoonError as exc:  # the weights file could not be written: say so, not "format"
            if not isinstance(exc.__cause__, OSError):
                raise
            with _writing(staging / layout.WEIGHTS_FILE):
                raise exc.__cause__ from None
        _write_derived(staging / layout.DERIVED_FILE, derived or {})
        # models.parquet last: its presence is what makes the folder a committed model
        for name in sorted(tables, key=lambda t: t == "models"):
            _write_parquet(name, tables[name], staging / f"{name}.parquet")
        fsync_dir(staging)
        target = layout.model_dir(root, mlp.id)
        old = None
        with catalogue_lock(root):
            if target.exists() and not replace:
                return False  # another process committed the same model first
            if target.exists():
                old = _set_aside(root, target)
            with _writing(target):
                os.rename(staging, target)
            fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return True


def _set_aside(root: Path, folder: Path) -> Path:
    """Rename a committed model folder into staging (call under the lock): from here on it
    is not in the catalogue; the caller deletes it (or crash cleanup does)."""
    aside = layout.staging_dir(root) / f"removed-{uuid.uuid4().hex}"  # no lock: debris
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, aside)
    fsync_dir(folder.parent)
    return aside


def remove_model(root: Path, model_id: str) -> bool:
    """Remove one committed model atomically. Returns False if it is not present.

    The folder leaves ``models/`` in one rename under the lock (readers see the model or
    nothing) and is deleted afterwards. Lineage rows naming the model stay: they record
    how models were derived, and lineage already names models that are not stored (the
    intermediate steps of a normalization), which ``roon lineage`` and ``roon show`` mark.
    """
    target = layout.model_dir(root, model_id)
    with catalogue_lock(root):
        if not _has_model(root, model_id):
            return False
        aside = _set_aside(root, target)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def remove_models(catalogue: str | os.PathLike[str], refs: Sequence[str]) -> list[tuple[str, str]]:
    """Remove models by reference (id, id prefix or name): what ``roon rm`` does.

    Every reference is resolved before anything is removed, so one that matches nothing
    (or several models) removes nothing.

    Returns:
        ``(model_id, name)`` of each model removed, in the order given.

    Raises:
        CatalogueError: no catalogue, or a reference that matches no model or several.
    """
    from roon.store.read import model_names, resolve_model

    root = layout.open_catalogue(catalogue)
    ids = list(dict.fromkeys(resolve_model(root, str(ref)) for ref in refs))
    names = model_names(root)
    return [(m, names.get(m, "")) for m in ids if remove_model(root, m)]


def _has_model(root: Path, model_id: str) -> bool:
    return layout.table_path(root, model_id, "models").is_file()


def _write_derived(path: Path, versions: Mapping[str, int]) -> None:
    with _writing(path), open(path, "wb") as handle:
        handle.write(json.dumps(dict(sorted(versions.items()))).encode())
        handle.flush()
        os.fsync(handle.fileno())


def replace_model_tables(
    root: Path, model_id: str, tables: Mapping[str, Rows], derived: Mapping[str, int]
) -> None:
    """Replace derived tables of a committed model (what ``roon reindex`` writes).

    Each file is replaced atomically, then ``derived.json`` records the new versions: a
    crash in between leaves every file whole, and the model still marked out of date, so
    the next reindex redoes it.

    Raises:
        CatalogueError: no such model, or a table that does not match its schema.
    """
    if not _has_model(root, model_id):
        raise CatalogueError(f"no model {model_id} in {root}")
    folder = layout.model_dir(root, model_id)
    for name, rows in tables.items():
        if name not in layout.MODEL_TABLES or name == "models":
            raise CatalogueError(f"cannot replace table {name!r} of a model")
        if isinstance(rows, pa.Table):
            _conform(name, rows)
    with catalogue_lock(root):
        for name, rows in tables.items():
            tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                _write_parquet(name, rows, tmp)
                with _writing(layout.table_path(root, model_id, name)):
                    os.replace(tmp, layout.table_path(root, model_id, name))
            finally:
                tmp.unlink(missing_ok=True)
        current = read_derived(layout.derived_path(root, model_id))
        current.update(derived)
        write_atomic(layout.derived_path(root, model_id), json.dumps(current).encode())


def read_derived(path: Path) -> dict[str, int]:
    """The ``{table: version}`` map of a ``derived.json`` file ({} when missing or bad)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _row_key(table: str, row: Mapping[str, object]) -> str:
    key = table_spec(table).get("key") or table_schema(table).names
    material = "|".join(str(row[k]) for k in key)
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


def _present_keys(root: Path, folder: Path, table: str) -> set[str]:
    """Row keys of the rows already stored in a catalogue table's folder."""
    from roon.store.check import damaged_file

    key = table_spec(table).get("key") or table_schema(table).names
    found: set[str] = set()
    for path in sorted(folder.glob("*.parquet")):
        try:
            rows = pq.read_table(path, columns=list(key)).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise damaged_file(root, path, exc) from None
        found.update(_row_key(table, r) for r in rows)
    return found


def write_rows(root: Path, table: str, rows: pa.Table) -> int:
    """Add rows to a catalogue table (``lineage``, ``matches``, ...); rows already there
    are skipped.

    A row's identity is the table's ``key`` columns (its schema file), so writing the
    same rows twice adds nothing. The new rows go into one Parquet file (named by their
    keys), written aside and renamed into place under the lock. Returns the rows added.

    Raises:
        CatalogueError: rows that do not match the schema, a damaged row file, or a file
            that cannot be written (named, with the cause).
    """
    rows = _conform(table, rows)
    folder = layout.rows_dir(root, table)
    with _writing(folder):
        folder.mkdir(exist_ok=True)
    with catalogue_lock(root):
        present = _present_keys(root, folder, table)
        keys = [_row_key(table, r) for r in rows.to_pylist()]
        fresh: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in present and k not in fresh:
                fresh[k] = i
        if not fresh:
            return 0
        new = rows.take(pa.array(list(fresh.values()), type=pa.int64()))
        name = hashlib.blake2b("|".join(sorted(fresh)).encode(), digest_size=16).hexdigest()
        path = folder / f"{name}.parquet"
        tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            _write_parquet(table, new, tmp)
            with _writing(path):
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(folder)
    return len(fresh)
