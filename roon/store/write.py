"""Atomic, idempotent writes: whole models, rows of catalogue tables, derived tables.

A model is written into a staging folder (every file fsynced) and committed by renaming
the folder to ``models/<model_id>`` under the catalogue lock. The model id is the content
hash, so re-ingesting is a no-op, a crash leaves only staging debris (removed later), and
two processes writing the same model both succeed: the second finds it present.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from roon.errors import CatalogueError
from roon.mlp import MLP
from roon.schema import table_schema, table_spec
from roon.store import layout

__all__ = [
    "catalogue_lock",
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
    with open(layout.lock_path(root), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _conform(name: str, table: pa.Table) -> pa.Table:
    """Cast ``table`` to the schema of ``name`` (column order and types), or raise."""
    schema = table_schema(name)
    if table.schema.names != schema.names:
        raise CatalogueError(
            f"table {name!r} has columns {table.schema.names}; the schema wants {schema.names}"
        )
    return table.cast(schema)


def _clean_staging(root: Path) -> None:
    """Remove staging folders left by processes that no longer run (crash debris)."""
    staging = layout.staging_dir(root)
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A fresh staging folder, removed afterwards unless it was renamed away."""
    _clean_staging(root)
    staging = layout.staging_dir(root) / f"{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_model(
    root: Path,
    mlp: MLP,
    tables: Mapping[str, pa.Table],
    *,
    derived: Mapping[str, int] | None = None,
    replace: bool = False,
) -> bool:
    """Commit one model atomically. Returns False (and writes nothing) if already present.

    Args:
        root: an opened catalogue (see :func:`~roon.store.layout.open_catalogue`).
        mlp: the model; its weights are stored losslessly beside the tables.
        tables: the model's rows, one Arrow table per model table (at least ``models``),
            each matching its schema file.
        derived: definition version of each derived table written (``derived.json``), so
            that ``roon reindex`` can tell which ones a later roon computes differently.
        replace: replace the model if it is present (``roon ingest --force``): the new
            folder is staged whole, then the old one is renamed away and the new one into
            place under the lock, so a commit is never mixed; a crash between the two
            renames leaves the model absent (the next ingest stores it again).

    Raises:
        CatalogueError: a table that is not a model table or does not match its schema.
    """
    from roon.ingest.loaders import save_safetensors

    if "models" not in tables:
        raise CatalogueError("a model is written with its 'models' row")
    unknown = [t for t in tables if t not in layout.MODEL_TABLES]
    if unknown:
        raise CatalogueError(f"cannot write table {unknown[0]!r} for a model")
    if _has_model(root, mlp.id) and not replace:
        return False
    conformed = {name: _conform(name, table) for name, table in tables.items()}
    with _staging(root) as staging:
        save_safetensors(mlp, staging / layout.WEIGHTS_FILE)
        _write_derived(staging / layout.DERIVED_FILE, derived or {})
        # models.parquet last: its presence is what makes the folder a committed model
        for name in sorted(conformed, key=lambda t: t == "models"):
            _write_parquet(conformed[name], staging / f"{name}.parquet")
        _fsync_dir(staging)
        target = layout.model_dir(root, mlp.id)
        old = None
        with catalogue_lock(root):
            if target.exists() and not replace:
                return False  # another process committed the same model first
            if target.exists():
                old = _set_aside(root, target)
            os.rename(staging, target)
            _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return True


def _set_aside(root: Path, folder: Path) -> Path:
    """Rename a committed model folder into staging (call under the lock): from here on it
    is not in the catalogue; the caller deletes it (or crash cleanup does)."""
    aside = layout.staging_dir(root) / f"{os.getpid()}-removed-{uuid.uuid4().hex}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, aside)
    _fsync_dir(folder.parent)
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
    with open(path, "wb") as handle:
        handle.write(json.dumps(dict(sorted(versions.items()))).encode())
        handle.flush()
        os.fsync(handle.fileno())


def replace_model_tables(
    root: Path, model_id: str, tables: Mapping[str, pa.Table], derived: Mapping[str, int]
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
    conformed = {name: _conform(name, table) for name, table in tables.items()}
    with catalogue_lock(root):
        for name, table in conformed.items():
            if name not in layout.MODEL_TABLES or name == "models":
                raise CatalogueError(f"cannot replace table {name!r} of a model")
            tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                _write_parquet(table, tmp)
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


def _present_keys(folder: Path, table: str) -> set[str]:
    """Row keys of the rows already stored in a catalogue table's folder."""
    key = table_spec(table).get("key") or table_schema(table).names
    found: set[str] = set()
    for path in sorted(folder.glob("*.parquet")):
        rows = pq.read_table(path, columns=list(key)).to_pylist()
        found.update(_row_key(table, r) for r in rows)
    return found


def write_rows(root: Path, table: str, rows: pa.Table) -> int:
    """Add rows to a catalogue table (``lineage``, ``matches``, ...); rows already there
    are skipped.

    A row's identity is the table's ``key`` columns (its schema file), so writing the
    same rows twice adds nothing. The new rows go into one Parquet file (named by their
    keys), written aside and renamed into place under the lock. Returns the rows added.
    """
    rows = _conform(table, rows)
    folder = layout.rows_dir(root, table)
    folder.mkdir(exist_ok=True)
    with catalogue_lock(root):
        present = _present_keys(folder, table)
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
            _write_parquet(new, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
    return len(fresh)
