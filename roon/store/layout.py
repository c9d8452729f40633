"""Where everything in a catalogue lives; the only module that knows the folder structure.

Layout (format version 1)::

    DIR/
      catalogue.json                 # {"format": "roon-catalogue", "version": 1}
      .lock                          # flock(2) lock taken around commits
      models/<model_id>/             # appears atomically, complete or not at all
        model.safetensors            # the weights, lossless (activations in its metadata)
        derived.json                 # {table: definition version} of its derived tables
        <table>.parquet              # one file per model table (schema/tables/)
      <table>/<row-key>.parquet      # catalogue tables (lineage, ...): one keyed row each
      .staging/                      # work in progress; never read
      damaged/                       # models and rows `roon check --repair` moved aside; never read

A model is written into ``.staging/`` (every file fsynced), then committed by renaming its
folder to ``models/<model_id>`` under the lock. ``models.parquet`` is what makes a model
folder count as committed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from roon.errors import CatalogueError, InvalidArgumentError
from roon.schema import TABLES, table_spec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MARKER",
    "WEIGHTS_FILE",
    "DERIVED_FILE",
    "MODEL_TABLES",
    "CATALOGUE_TABLES",
    "open_catalogue",
    "catalogue_path",
    "model_dir",
    "table_path",
    "weights_path",
    "derived_path",
    "rows_dir",
    "staging_dir",
    "lock_path",
    "marker_path",
    "damaged_dir",
    "committed_models",
    "table_files",
    "snapshot",
    "locate",
    "table_glob",
]

FORMAT_NAME = "roon-catalogue"
# Bump when a reader of this version could not read what a newer writer writes; roon
# refuses catalogues newer than itself. Derived tables have their own versions
# (derived.json), upgraded in place by `roon reindex`.
FORMAT_VERSION = 1
MARKER = "catalogue.json"
WEIGHTS_FILE = "model.safetensors"
DERIVED_FILE = "derived.json"
# Tables stored per model folder, and catalogue tables whose rows link models (one file
# per keyed row), as the schema files declare them.
MODEL_TABLES = tuple(t for t in TABLES if table_spec(t).get("scope", "model") == "model")
CATALOGUE_TABLES = tuple(t for t in TABLES if t not in MODEL_TABLES)


def marker_path(root: Path) -> Path:
    return root / MARKER


def lock_path(root: Path) -> Path:
    return root / ".lock"


def staging_dir(root: Path) -> Path:
    return root / ".staging"


def model_dir(root: Path, model_id: str) -> Path:
    return root / "models" / model_id


def table_path(root: Path, model_id: str, table: str) -> Path:
    """The file holding one model's rows of a model table."""
    return model_dir(root, model_id) / f"{table}.parquet"


def weights_path(root: Path, model_id: str) -> Path:
    return model_dir(root, model_id) / WEIGHTS_FILE


def derived_path(root: Path, model_id: str) -> Path:
    return model_dir(root, model_id) / DERIVED_FILE


def damaged_dir(root: Path) -> Path:
    """Where ``roon check --repair`` moves damaged models and rows (readers never look)."""
    return root / "damaged"


def rows_dir(root: Path, table: str) -> Path:
    """The folder of a catalogue table (one Parquet file per keyed row)."""
    if table not in CATALOGUE_TABLES:
        raise CatalogueError(f"{table!r} is not a catalogue table ({', '.join(CATALOGUE_TABLES)})")
    return root / table


def committed_models(root: Path) -> list[str]:
    """Ids of the committed models, sorted."""
    models = root / "models"
    if not models.is_dir():
        return []
    return sorted(p.name for p in models.iterdir() if (p / "models.parquet").is_file())


def table_files(root: Path, table: str, *, models: Sequence[str] | None = None) -> list[Path]:
    """The files that hold a table's rows now (a snapshot: later commits are not in it).

    Args:
        root: an opened catalogue.
        table: a table name (``schema/tables/``).
        models: the committed models to take a model table's files from (default: those
            committed now); :func:`snapshot` passes one list to every table.
    """
    if table in CATALOGUE_TABLES:
        return sorted(rows_dir(root, table).glob("*.parquet"))
    if table not in MODEL_TABLES:
        raise CatalogueError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")
    ids = committed_models(root) if models is None else models
    files = (table_path(root, m, table) for m in ids)
    return [f for f in files if f.is_file()]


def snapshot(root: Path) -> dict[str, list[Path]]:
    """Every table's files at one moment: the committed models are listed once for all.

    A query that reads two tables (or one table twice) through one snapshot sees the
    same set of models in both, however many writers commit meanwhile: a model appears
    by one rename, whole, and its files are named from the one list.
    """
    models = committed_models(root)
    return {t: table_files(root, t, models=models) for t in TABLES}


def locate(root: Path, path: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """``(model_id, table)`` of a file of the catalogue; None for parts that name neither.

    The inverse of :func:`table_path`, :func:`weights_path` and :func:`rows_dir`, for
    turning a reader's error about a file into the model and table it belongs to.
    """
    try:
        rel = Path(path).resolve().relative_to(root)
    except ValueError:
        return None, None
    parts = rel.parts
    if len(parts) == 3 and parts[0] == "models":
        stem = parts[2].removesuffix(".parquet")
        return parts[1], stem if stem in MODEL_TABLES else parts[2]
    if len(parts) == 2 and parts[0] in CATALOGUE_TABLES:
        return None, parts[0]
    return None, None


def table_glob(root: Path, table: str) -> str:
    """A glob pattern matching every file of ``table`` (what DuckDB views read)."""
    if table in CATALOGUE_TABLES:
        return str(rows_dir(root, table) / "*.parquet")
    return str(root / "models" / "*" / f"{table}.parquet")


def _check_marker(root: Path) -> None:
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
        _check_marker(root)
        return root
    if not create:
        raise CatalogueError(
            f"no roon catalogue at {root}; run 'roon ingest MODEL... --catalogue {root}' first"
        )
    _create(root)
    return root


def _skeleton_names() -> set[str]:
    return {"models", ".lock", ".staging", "damaged", *CATALOGUE_TABLES}


def _create(root: Path) -> None:
    """Create the catalogue skeleton, race-free: under an flock on the directory itself.

    Two processes creating one catalogue serialize here; the second finds the marker.
    A folder holding only skeleton entries (a creation killed before its marker was
    written) is completed rather than refused. The marker is written last.
    """
    import fcntl

    from roon.store.write import write_atomic

    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        raise CatalogueError(f"cannot create catalogue {root}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if marker_path(root).is_file():
            _check_marker(root)
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
        (root / "models").mkdir(exist_ok=True)
        for table in CATALOGUE_TABLES:
            rows_dir(root, table).mkdir(exist_ok=True)
        marker = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        write_atomic(marker_path(root), json.dumps(marker).encode())
    finally:
        os.close(fd)  # releases the lock
