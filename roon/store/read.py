"""Reading the catalogue: tables, one model's rows, stored weights, model references.

:func:`resolve_model` is the one resolver of model references (full id, id prefix of 4+
characters, exact name, and optionally ids known only from lineage rows);
:func:`load_model_ref` adds model files, for every command that takes a MODEL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from roon.errors import CatalogueError, InvalidArgumentError, RoonError, require_reference
from roon.mlp import MLP
from roon.schema import TABLES, table_schema
from roon.store import layout

__all__ = [
    "MIN_PREFIX",
    "has_model",
    "list_models",
    "read_table",
    "read_model_table",
    "model_names",
    "resolve_model",
    "load_catalogued_model",
    "load_model_ref",
]

# Shortest id prefix accepted: 4 hex digits tell ~65k models apart.
MIN_PREFIX = 4


def has_model(root: Path, model_id: str) -> bool:
    """Whether a model is committed in the catalogue (a lookup in the current manifest,
    which is parsed once per generation and process)."""
    from roon.store.manifest import current_manifest

    return model_id in current_manifest(root).by_model


def list_models(root: Path) -> list[str]:
    """Ids of the committed models, sorted."""
    return layout.committed_models(root)


def read_table(catalogue: str | os.PathLike[str], name: str) -> pa.Table:
    """All rows of one table across the catalogue (an empty table when there are none).

    Raises:
        InvalidArgumentError: an unknown table name.
        CatalogueError: no catalogue at ``catalogue``.

    Example:
        >>> roon.read_table("roon-catalogue", "signatures").num_rows  # doctest: +SKIP
    """
    if not isinstance(name, str) or name not in TABLES:
        raise InvalidArgumentError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
    root = layout.open_catalogue(catalogue)
    schema = table_schema(name)
    with layout.snapshot(root) as snap:
        files = snap.files(name)
        if not files:
            return schema.empty_table()
        return pa.concat_tables(_read_file(root, f, schema) for f in files)


def read_model_table(root: Path, model_id: str, name: str) -> pa.Table:
    """One model's rows of one model table (an empty table when it has none).

    Segment files are sorted by model id, so the filter reads only the row groups that
    can hold the model's rows.

    Raises:
        CatalogueError: the file is damaged (the message names the model and the fix).
    """
    schema = table_schema(name)
    with layout.snapshot(root) as snap:
        segment = snap.manifest.by_model.get(model_id)
        entry = segment.tables.get(name) if segment is not None else None
        if segment is None or entry is None or entry.path is None:
            return schema.empty_table()
        path = root / entry.path
        if len(segment.models) == 1:
            return _read_file(root, path, schema)
        return _read_file(root, path, schema, model_id=model_id)


def _read_file(root: Path, path: Path, schema: pa.Schema, model_id: str | None = None) -> pa.Table:
    try:
        if model_id is None:
            return pq.read_table(path, schema=schema)
        return pq.read_table(path, schema=schema, filters=[("model_id", "==", model_id)])
    except FileNotFoundError:
        from roon.store.check import damaged_file

        raise damaged_file(root, path, "missing") from None
    except (OSError, pa.ArrowException) as exc:
        from roon.store.check import damaged_file

        raise damaged_file(root, path, exc) from None


def model_names(root: Path) -> dict[str, str]:
    """Model id → name, for every committed model."""
    rows = read_table(root, "models").select(["model_id", "name"]).to_pylist()
    return {r["model_id"]: r["name"] for r in rows}


def _lineage_ids(root: Path) -> set[str]:
    table = read_table(root, "lineage")
    return set(table.column("parent_id").to_pylist()) | set(table.column("child_id").to_pylist())


def _prefix_hits(ids: list[str] | set[str], ref: str) -> list[str]:
    return sorted(m for m in ids if len(ref) >= MIN_PREFIX and m.startswith(ref.lower()))


def _ambiguous(root: Path, ref: str, hits: list[str]) -> CatalogueError:
    shown = ", ".join(h[:12] for h in hits[:5])
    return CatalogueError(f"model {ref!r} is ambiguous in {root}: {shown}; give more of the id")


def resolve_model(root: Path, ref: str, *, lineage: bool = False) -> str:
    """Model id from a full id, an id prefix (4+ characters) or an exact model name.

    Args:
        root: an opened catalogue.
        ref: the reference as the user gave it.
        lineage: also accept ids (and prefixes) known only from lineage rows, i.e.
            intermediate models of a normalization that were never stored.

    Raises:
        CatalogueError: nothing matches, or the reference is ambiguous.
    """
    ids = list_models(root)
    if ref in ids:
        return ref
    hits = _prefix_hits(ids, ref)
    if not hits:
        hits = sorted(m for m, name in model_names(root).items() if name == ref)
    if not hits and lineage:
        known = _lineage_ids(root)
        hits = [ref] if ref in known else _prefix_hits(known, ref)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise _ambiguous(root, ref, hits)
    if len(ref) < MIN_PREFIX and all(c in "0123456789abcdefABCDEF" for c in ref):
        raise CatalogueError(
            f"no model named {ref!r} in {root}, and an id prefix needs at least "
            f"{MIN_PREFIX} characters; 'roon models' lists them"
        )
    raise CatalogueError(f"no model {ref!r} in {root}; 'roon models' lists them")


def load_catalogued_model(root: Path, model_id: str) -> MLP:
    """Load a committed model's weights back into an :class:`~roon.mlp.MLP`.

    Raises:
        CatalogueError: the weights are missing or do not hash to ``model_id``.
    """
    from roon.ingest.loaders import load_model_bytes
    from roon.store.check import damaged_file
    from roon.store.segments import read_blob

    with layout.snapshot(root) as snap:
        segment = snap.manifest.by_model.get(model_id)
        if segment is None:
            raise CatalogueError(f"no model {model_id} in {root}; 'roon models' lists them")
        path = root / (segment.weights or layout.PACK_FILE)
        data = read_blob(root, segment, model_id)
    try:
        mlp = load_model_bytes(data, path.name)
    except RoonError as exc:
        raise damaged_file(root, path, str(exc).removeprefix(path.name).lstrip(": ")) from None
    finally:
        del data
    if mlp.id != model_id:
        raise damaged_file(root, path, f"the weights hash to {mlp.id[:12]}, not to the model id")
    return mlp


def load_model_ref(
    ref: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None = None,
    *,
    activation: str | None = None,
) -> MLP:
    """A model from a file path, else from the catalogue (id, id prefix or name).

    Args:
        ref: a model file roon can load, or a catalogue reference.
        catalogue: the catalogue to look references up in.
        activation: hidden activation for files that store none (default relu).

    Raises:
        CatalogueError: ``ref`` is neither a file nor a model of the catalogue.
        InvalidArgumentError: ``ref`` is not a str or a path.
        ModelFormatError: the file cannot be loaded.
    """
    from roon.ingest.loaders import load_model

    path = Path(require_reference(ref, "a model reference")).expanduser()
    if path.is_file():
        return load_model(path, activation=activation)
    if catalogue is None:
        raise CatalogueError(f"{str(ref)!r} is not a file, and no catalogue was given")
    try:
        root = layout.open_catalogue(catalogue)
    except CatalogueError:
        raise CatalogueError(
            f"{str(ref)!r} is not a file, and there is no catalogue at {catalogue} to look it up in"
        ) from None
    return load_catalogued_model(root, resolve_model(root, str(ref)))
