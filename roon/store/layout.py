"""Where everything in a catalogue lives; the only module that knows the folder structure.

Layout (format version 2)::

    DIR/
      catalogue.json                  # {"format": "roon-catalogue", "version": 2}
      .lock                           # flock(2) lock taken around commits
      manifests/<generation>.json     # the index: the live segments (the highest is current)
      segments/<segment_id>/          # one batch of models, written whole, never changed
        <table>.parquet               # its rows of each table, sorted by model_id, conformed
        weights.pack                  # its models' safetensors files, end to end, in id order
      .staging/                       # work in progress; never read
      damaged/                        # what `roon check --repair` moved aside; never read
      models/<model_id>/...           # version-1 model folders, read in place (see below)
      <table>/<row-key>.parquet       # version-1 rows of catalogue tables, read in place

**Segments.** An ingest writes one segment per *batch* of models: one Parquet file per
table for the whole batch, and one weights file, ``weights.pack``, in which each model's
weights are a whole safetensors file (the bytes ``roon.save_safetensors`` writes) and the
manifest gives each one's length. A model's rows of every table, and its weights, are in
exactly one segment. Rows of catalogue tables (``lineage``, ``matches``,
``activation_matches``) are segments too (with no models). Files are never modified:
``roon rm``, ``ingest --force``, ``roon reindex`` and ``roon check --repair`` write new
segments (or new files of a segment) and a new manifest that no longer names the old
ones; ``roon compact`` merges many segments into few.

**The manifest** (:mod:`roon.store.manifest`) is the catalogue's index: the segments and
their files, the models of each, the row count and derived-table definition version of
each file. A commit writes the next generation, ``manifests/<n+1>.json``, by one rename
under the lock; readers take the highest generation and hold a shared flock on that file
(a *lease*) while they read its files. Old generations are deleted once no reader leases
them, and only then the files that no remaining generation names.

**Version 1** (one folder per model, one file per keyed row) is read in place: a writer
upgrades it under the lock by writing a manifest that lists each model folder as a
segment of one model (``models/<id>/model.safetensors`` is a weights file of one model),
without rewriting a file; ``roon compact`` then merges them into segments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from roon.errors import CatalogueError, InvalidArgumentError
from roon.schema import TABLES, table_spec

if TYPE_CHECKING:
    from roon.store.manifest import Manifest, Snapshot

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MARKER",
    "WEIGHTS_FILE",
    "PACK_FILE",
    "DERIVED_FILE",
    "MODEL_TABLES",
    "CATALOGUE_TABLES",
    "open_catalogue",
    "catalogue_path",
    "format_version",
    "model_dir",
    "table_path",
    "weights_path",
    "derived_path",
    "rows_dir",
    "staging_dir",
    "lock_path",
    "marker_path",
    "manifests_dir",
    "manifest_path",
    "segments_dir",
    "segment_dir",
    "damaged_dir",
    "committed_models",
    "table_files",
    "snapshot",
    "locate",
    "table_glob",
    "v1_model_dirs",
]

FORMAT_NAME = "roon-catalogue"
# Bump when a reader of this version could not read what a newer writer writes; roon
# refuses catalogues newer than itself. Version 1: one folder per model; version 2:
# segments and a manifest (this module's docstring). Derived tables have their own
# versions (in the manifest), upgraded in place by `roon reindex`.
FORMAT_VERSION = 2
MARKER = "catalogue.json"
PACK_FILE = "weights.pack"
# Version 1 names, read in place by version 2.
WEIGHTS_FILE = "model.safetensors"
DERIVED_FILE = "derived.json"
# Tables stored per model, and catalogue tables whose rows link models (keyed rows), as
# the schema files declare them.
MODEL_TABLES = tuple(t for t in TABLES if table_spec(t).get("scope", "model") == "model")
CATALOGUE_TABLES = tuple(t for t in TABLES if t not in MODEL_TABLES)
TABLES_ORDER = TABLES  # the order of a segment's tables in the manifest


def marker_path(root: Path) -> Path:
    return root / MARKER


def lock_path(root: Path) -> Path:
    return root / ".lock"


def staging_dir(root: Path) -> Path:
    return root / ".staging"


def manifests_dir(root: Path) -> Path:
    return root / "manifests"


def manifest_path(root: Path, generation: int) -> Path:
    """The manifest of one generation (zero-padded, so names sort as numbers)."""
    return manifests_dir(root) / f"{generation:012d}.json"


def segments_dir(root: Path) -> Path:
    return root / "segments"


def segment_dir(root: Path, segment_id: str) -> Path:
    return segments_dir(root) / segment_id


def damaged_dir(root: Path) -> Path:
    """Where ``roon check --repair`` moves damaged models and rows (readers never look)."""
    return root / "damaged"


def rows_dir(root: Path, table: str) -> Path:
    """The version-1 folder of a catalogue table (one Parquet file per keyed row)."""
    if table not in CATALOGUE_TABLES:
        raise CatalogueError(f"{table!r} is not a catalogue table ({', '.join(CATALOGUE_TABLES)})")
    return root / table


def v1_model_dirs(root: Path) -> Path:
    """The folder of version-1 model folders."""
    return root / "models"


def derived_path(root: Path, model_id: str) -> Path:
    """A version-1 model folder's ``derived.json`` (its derived-table versions)."""
    return v1_model_dirs(root) / model_id / DERIVED_FILE


def format_version(root: Path) -> int:
    """The format version in the catalogue's marker.

    Raises:
        CatalogueError: no marker, an unreadable one, or a version newer than this roon.
    """
    try:
        found = json.loads(marker_path(root).read_text())
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"catalogue {root}: unreadable {MARKER} ({exc})") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT_NAME:
        raise CatalogueError(f"catalogue {root}: {MARKER} is not a roon catalogue marker")
    version = found.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CatalogueError(f"catalogue {root}: {MARKER} has no valid format version")
    if version > FORMAT_VERSION:
        raise CatalogueError(
            f"catalogue {root} has format version {version}, newer than this roon reads "
            f"({FORMAT_VERSION}); upgrade roon (pip install -U roon)"
        )
    return version


def snapshot(root: Path) -> Snapshot:
    """The catalogue at one moment, leased: its manifest, and its files kept while it lives.

    A query that reads two tables (or one table twice) through one snapshot sees the
    same set of models in both, however many writers commit meanwhile; the files it
    names are not deleted until the snapshot is closed (or garbage collected).
    """
    from roon.store.manifest import take_snapshot

    return take_snapshot(root)


def _current(root: Path) -> Manifest:
    """The current manifest, without a lease (for lookups that read no file)."""
    from roon.store.manifest import current_manifest

    return current_manifest(root)


def committed_models(root: Path) -> list[str]:
    """Ids of the committed models, sorted."""
    return sorted(_current(root).by_model)


def table_files(root: Path, table: str, *, models: Sequence[str] | None = None) -> list[Path]:
    """The files that hold a table's rows now (a snapshot: later commits are not in it).

    Args:
        root: an opened catalogue.
        table: a table name (``schema/tables/``).
        models: only the files holding these models' rows (default: all).
    """
    if table not in TABLES:
        raise CatalogueError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")
    return [root / f for f in _current(root).files(table, models=models)]


def model_dir(root: Path, model_id: str) -> Path:
    """The folder of the segment holding a model (a path that does not exist when the
    model is not committed)."""
    segment = _current(root).by_model.get(model_id)
    return root / segment.dir if segment is not None else v1_model_dirs(root) / model_id


def table_path(root: Path, model_id: str, table: str) -> Path:
    """The file holding one model's rows of a model table (with those of the other models
    of its segment); a path that does not exist when it has none."""
    segment = _current(root).by_model.get(model_id)
    if segment is None:
        return v1_model_dirs(root) / model_id / f"{table}.parquet"
    entry = segment.tables.get(table)
    if entry is None or entry.path is None:
        return root / segment.dir / f"{table}.parquet"
    return root / entry.path


def weights_path(root: Path, model_id: str) -> Path:
    """The weights file of a model's segment (a path that does not exist when none)."""
    segment = _current(root).by_model.get(model_id)
    if segment is None or segment.weights is None:
        return v1_model_dirs(root) / model_id / WEIGHTS_FILE
    return root / segment.weights


def locate(root: Path, path: str | os.PathLike[str]) -> tuple[list[str], str | None]:
    """``(model ids, table)`` of a file of the catalogue, for turning a reader's error
    about a file into the models it damages; ``([], None)`` for parts that name neither.

    The models are those of the segment holding the file (none for a catalogue table).
    """
    try:
        rel = str(Path(path).resolve().relative_to(root))
    except ValueError:
        return [], None
    for segment in _current(root).segments:
        if segment.weights == rel:
            return list(segment.models), "weights"
        for table, entry in segment.tables.items():
            if entry.path == rel:
                return ([] if table in CATALOGUE_TABLES else list(segment.models)), table
    return [], None


def table_glob(root: Path, table: str) -> str:
    """A glob pattern matching every segment file of ``table`` written by this version."""
    if table not in TABLES:
        raise CatalogueError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")
    return str(segments_dir(root) / "*" / f"{table}.parquet")


def catalogue_path(path: str | os.PathLike[str]) -> Path:
    """The absolute path a catalogue argument names (nothing is read or created).

    Raises:
        InvalidArgumentError: ``path`` is not a string or path.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(
            f"catalogue is a {type(path).__name__}; give a directory path such as 'roon-catalogue'"
        )
    return Path(path).expanduser().resolve()


def open_catalogue(path: str | os.PathLike[str], *, create: bool = False) -> Path:
    """Check that ``path`` is a roon catalogue this roon can read (creating it when asked).

    A version-1 catalogue opens as it is (readers read it in place; the first write
    upgrades it).

    Returns:
        The catalogue's absolute path.

    Raises:
        CatalogueError: missing (and ``create`` is False), not a directory, a non-empty
            directory that is not a roon catalogue, or a format newer than this roon.
    """
    root = catalogue_path(path)
    if root.exists() and not root.is_dir():
        raise CatalogueError(f"catalogue {root} is a file, not a directory")
    if marker_path(root).is_file():
        format_version(root)
        return root
    if not create:
        raise CatalogueError(
            f"no roon catalogue at {root}; run 'roon ingest MODEL... --catalogue {root}' first"
        )
    _create(root)
    return root


def _skeleton_names() -> set[str]:
    return {".lock", ".staging", "damaged", "manifests", "segments"}


def _create(root: Path) -> None:
    """Create the catalogue skeleton, race-free: under an flock on the directory itself.

    Two processes creating one catalogue serialize here; the second finds the marker.
    A folder holding only skeleton entries (a creation killed before its marker was
    written) is completed rather than refused. The empty manifest (generation 1) is
    written before the marker, which is written last.
    """
    import fcntl

    from roon.store.manifest import Manifest, write_manifest
    from roon.store.write import write_atomic

    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        raise CatalogueError(f"cannot create catalogue {root}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if marker_path(root).is_file():
            format_version(root)
            return
        foreign = [
            p.name
            for p in root.iterdir()
            if p.name not in _skeleton_names() and not p.name.startswith(f".{MARKER}.")
        ]
        if foreign:
            raise CatalogueError(
                f"{root} is a non-empty directory that is not a roon catalogue; choose another"
            )
        manifests_dir(root).mkdir(exist_ok=True)
        segments_dir(root).mkdir(exist_ok=True)
        if not any(manifests_dir(root).glob("*.json")):
            write_manifest(root, Manifest(generation=1, segments=()))
        marker = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        write_atomic(marker_path(root), json.dumps(marker).encode())
    finally:
        os.close(fd)  # releases the lock
