"""The catalogue on disk: a directory of Parquet files, one folder per model.

Layout::

    DIR/
      catalogue.json                 # {"format": "roon-catalogue", "version": 1}
      .lock                          # flock(2) lock taken around commits
      models/<model_id>/             # appears atomically, complete or not at all
        model.safetensors            # the weights, lossless (activations in its metadata)
        models.parquet layers.parquet neurons.parquet edges.parquet
        provenance.parquet signatures.parquet tokens.parquet
      lineage/<record-key>.parquet   # one normalization step each, idempotent
      .staging/                      # work in progress; never read

A model is written into ``.staging/`` (every file fsynced), then committed by renaming
its folder to ``models/<model_id>`` under the lock. The model id is the content hash, so
re-ingesting is a no-op, a crash leaves only staging debris (removed later), and two
processes ingesting the same model both succeed: the second finds it present.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from roon.errors import CatalogueError
from roon.mlp import MLP
from roon.schema import TABLES, table_schema

__all__ = [
    "MODEL_TABLES",
    "open_catalogue",
    "catalogue_lock",
    "has_model",
    "list_models",
    "model_dir",
    "write_model",
    "write_lineage",
    "read_table",
    "read_model_table",
    "resolve_model",
    "load_catalogued_model",
]

FORMAT = {"format": "roon-catalogue", "version": 1}
MARKER = "catalogue.json"
WEIGHTS_FILE = "model.safetensors"
# Tables stored per model folder; lineage lives beside them (it links two models).
MODEL_TABLES = tuple(t for t in TABLES if t != "lineage")


def open_catalogue(path: str | os.PathLike[str], *, create: bool = False) -> Path:
    """Check that ``path`` is a roon catalogue (creating it when asked) and return it.

    Raises:
        CatalogueError: missing (and ``create`` is False), not a directory, or a non-empty
            directory that is not a roon catalogue.
    """
    root = Path(path).expanduser().resolve()
    marker = root / MARKER
    if root.exists() and not root.is_dir():
        raise CatalogueError(f"catalogue {root} is a file, not a directory")
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise CatalogueError(f"catalogue {root}: unreadable {MARKER} ({exc})") from None
        if found.get("format") != FORMAT["format"] or found.get("version") != FORMAT["version"]:
            raise CatalogueError(f"catalogue {root}: unsupported format {found}")
        return root
    if not create:
        raise CatalogueError(
            f"no roon catalogue at {root}; run 'roon ingest MODEL... --catalogue {root}' first"
        )
    if root.exists() and any(root.iterdir()):
        raise CatalogueError(
            f"{root} is a non-empty directory that is not a roon catalogue; choose another"
        )
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "lineage").mkdir(exist_ok=True)
    _write_atomic(marker, json.dumps(FORMAT).encode())
    return root


@contextlib.contextmanager
def catalogue_lock(root: Path) -> Iterator[None]:
    """Exclusive lock over commits to the catalogue (blocks until free)."""
    with open(root / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def model_dir(root: Path, model_id: str) -> Path:
    return root / "models" / model_id


def has_model(root: Path, model_id: str) -> bool:
    return (model_dir(root, model_id) / "models.parquet").is_file()


def list_models(root: Path) -> list[str]:
    """Ids of the committed models, sorted."""
    models = root / "models"
    if not models.is_dir():
        return []
    return sorted(p.name for p in models.iterdir() if (p / "models.parquet").is_file())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
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
    staging = root / ".staging"
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


def write_model(
    root: Path,
    mlp: MLP,
    *,
    min_weight: float = 0.0,
    input_domain: str = "binary",
    extra_tables: Mapping[str, pa.Table] | None = None,
) -> bool:
    """Write one model atomically. Returns False (and writes nothing) if already present.

    Args:
        root: an opened catalogue (see :func:`open_catalogue`).
        mlp: the model.
        min_weight: store only edges with ``|w| >= min_weight`` (0 stores all).
        input_domain: signature domain of the model inputs (recorded per layer).
        extra_tables: further per-model tables (``signatures``, ``tokens``) matching
            their schemas.
    """
    from roon.ingest.loaders import save_safetensors
    from roon.ingest.rows import model_tables

    if has_model(root, mlp.id):
        return False
    tables = model_tables(mlp, min_weight=min_weight, input_domain=input_domain)
    for name, table in (extra_tables or {}).items():
        if name not in MODEL_TABLES or name in tables:
            raise CatalogueError(f"cannot write extra table {name!r} for a model")
        tables[name] = table
    _clean_staging(root)
    staging = root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        save_safetensors(mlp, staging / WEIGHTS_FILE)
        # models.parquet last: its presence is what has_model() checks
        for name in sorted(tables, key=lambda t: t == "models"):
            _write_parquet(_conform(name, tables[name]), staging / f"{name}.parquet")
        _fsync_dir(staging)
        target = model_dir(root, mlp.id)
        with catalogue_lock(root):
            if target.exists():
                return False  # another process committed the same model first
            os.rename(staging, target)
            _fsync_dir(target.parent)
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _lineage_key(row: Mapping[str, object]) -> str:
    material = "|".join(str(row[k]) for k in ("parent_id", "child_id", "rule", "params"))
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


def write_lineage(root: Path, table: pa.Table) -> int:
    """Store normalization steps; rows already present are skipped. Returns rows added."""
    table = _conform("lineage", table)
    folder = root / "lineage"
    folder.mkdir(exist_ok=True)
    added = 0
    with catalogue_lock(root):
        for i, row in enumerate(table.to_pylist()):
            path = folder / f"{_lineage_key(row)}.parquet"
            if path.exists():
                continue
            tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
            _write_parquet(table.slice(i, 1), tmp)
            os.replace(tmp, path)
            added += 1
        _fsync_dir(folder)
    return added


def _table_files(root: Path, name: str) -> list[Path]:
    if name == "lineage":
        return sorted((root / "lineage").glob("*.parquet"))
    return [model_dir(root, m) / f"{name}.parquet" for m in list_models(root)]


def read_table(catalogue: str | os.PathLike[str], name: str) -> pa.Table:
    """All rows of one table across the catalogue (an empty table when there are none).

    Example:
        >>> roon.read_table("roon-catalogue", "signatures").num_rows  # doctest: +SKIP
    """
    if name not in TABLES:
        raise CatalogueError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
    root = open_catalogue(catalogue)
    files = [f for f in _table_files(root, name) if f.is_file()]
    schema = table_schema(name)
    if not files:
        return schema.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=schema) for f in files)


def read_model_table(root: Path, model_id: str, name: str) -> pa.Table:
    """One model's rows of one table (an empty table when it has none)."""
    path = model_dir(root, model_id) / f"{name}.parquet"
    schema = table_schema(name)
    return pq.read_table(path, schema=schema) if path.is_file() else schema.empty_table()


def resolve_model(root: Path, ref: str) -> str:
    """Model id from a full id, an id prefix (4+ characters) or an exact model name.

    Raises:
        CatalogueError: nothing matches, or the reference is ambiguous.
    """
    ids = list_models(root)
    if ref in ids:
        return ref
    hits = [m for m in ids if len(ref) >= 4 and m.startswith(ref.lower())]
    if not hits:
        names = read_table(root, "models").select(["model_id", "name"]).to_pylist()
        hits = sorted({r["model_id"] for r in names if r["name"] == ref})
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise CatalogueError(f"no model {ref!r} in {root}; 'roon models' lists them")
    shown = ", ".join(h[:12] for h in hits[:5])
    raise CatalogueError(f"model {ref!r} is ambiguous in {root}: {shown}; give more of the id")


def load_catalogued_model(root: Path, model_id: str) -> MLP:
    """Load a committed model's weights back into an :class:`MLP`."""
    from roon.ingest.loaders import load_model

    path = model_dir(root, model_id) / WEIGHTS_FILE
    if not path.is_file():
        raise CatalogueError(f"model {model_id} has no stored weights ({path} is missing)")
    mlp = load_model(path)
    if mlp.id != model_id:
        raise CatalogueError(f"{path}: stored weights hash to {mlp.id}, not {model_id}")
    return mlp
