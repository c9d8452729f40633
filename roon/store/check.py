"""Finding damage in a catalogue, and moving damaged models out of readers' sight.

A catalogue is damaged when a file was truncated, overwritten or lost behind roon's back
(a disk error, a hand edit, a restore gone wrong). :func:`check_model` verifies one model:
every file decodes, the row counts agree with its ``models`` row, and the stored weights
hash to the model id. What can be rebuilt is told apart from what cannot:

* a damaged **derived** table (signatures, tokens) is recomputed from the weights by
  ``roon reindex`` (:func:`roon.ingest.reindex.reindex_catalogue`);
* damaged **weights** or a damaged **structural** table (models, layers, neurons, edges,
  provenance) cannot be trusted to rebuild the rest: the model is moved aside
  (:func:`move_aside`, to ``DIR/damaged/``, which no reader looks at) and its source file
  re-ingested.

:func:`damage_error` turns a reader's error about a catalogue file into one line naming
the model and the fix.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from roon.errors import CatalogueError, RoonError, one_line
from roon.store import layout

__all__ = [
    "STRUCTURAL_TABLES",
    "ModelCheck",
    "RowsCheck",
    "check_model",
    "check_rows",
    "move_aside",
    "damage_error",
    "damaged_file",
]

# Tables copied from the model at ingest; with the weights, what the model *is*.
STRUCTURAL_TABLES = ("models", "layers", "neurons", "edges", "provenance")


@dataclass(frozen=True)
class ModelCheck:
    """What :func:`check_model` found about one model.

    Attributes:
        model_id: the model (its folder name).
        name: its name, when the ``models`` row could be read.
        problems: one line per problem found; empty when the model is sound.
        rebuild: derived tables that are damaged and ``roon reindex`` can recompute.
        move: True when the weights or a structural table is damaged: the model cannot
            be repaired in place and is moved aside by ``roon check --repair``.
        source: the file it was ingested from (from its provenance), to re-ingest.
    """

    model_id: str
    name: str | None
    problems: tuple[str, ...] = ()
    rebuild: tuple[str, ...] = ()
    move: bool = False
    source: str | None = None

    @property
    def damaged(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class RowsCheck:
    """A damaged row file of a catalogue table (lineage, ...)."""

    table: str
    path: Path
    problem: str


def _read(path: Path, table: str) -> tuple[int, list[dict[str, object]]]:
    """Decode a whole Parquet file batch by batch: (rows, first rows as dicts).

    Raises:
        CatalogueError: the file is missing, does not decode, or lacks the schema's columns.
    """
    import pyarrow.parquet as pq

    from roon.schema import table_schema

    schema = table_schema(table)
    try:
        handle = pq.ParquetFile(path)
        missing = [n for n in schema.names if n not in handle.schema_arrow.names]
        if missing:
            raise CatalogueError(f"{path.name} lacks column {missing[0]!r}")
        rows = 0
        head: list[dict[str, object]] = []
        for batch in handle.iter_batches(batch_size=65_536, columns=schema.names):
            if not head:
                head = batch.slice(0, 2).to_pylist()
            rows += batch.num_rows
        return rows, head
    except CatalogueError:
        raise
    except (OSError, ValueError, Exception) as exc:  # ArrowInvalid, OSError, ...
        raise CatalogueError(f"{path.name} cannot be read ({_short(exc)})") from None


# Arrow's words for the usual damage, and shorter ones for a one-line message.
_PLAINER = {
    "Parquet magic bytes not found in footer. Either the file is corrupted or this is not "
    "a parquet file": "not a whole Parquet file: truncated or overwritten",
}


def _short(exc: object, width: int = 120) -> str:
    text = one_line(exc)
    for long, short in _PLAINER.items():
        text = text.replace(long, short)
    return text if len(text) <= width else text[: width - 1] + "…"


def _expected_rows(row: dict[str, object], min_weight: float | None) -> dict[str, tuple[str, int]]:
    """Table → (relation, count) its row count must satisfy, from the ``models`` row."""
    n_layers, n_neurons = int(row["n_layers"]), int(row["n_neurons"])  # type: ignore[call-overload]
    edges = int(row["n_params"]) - n_neurons  # type: ignore[call-overload]
    return {
        "layers": ("==", n_layers),
        "neurons": ("==", n_neurons),
        "provenance": ("==", 1),
        "edges": ("==" if min_weight == 0 else "<=", edges),
        "signatures": ("==", n_neurons),
        "tokens": (">=", n_layers + n_neurons),
    }


def check_model(root: Path, model_id: str, *, weights: bool = True) -> ModelCheck:
    """Verify one committed model: files readable, row counts consistent, weights intact.

    Args:
        root: an opened catalogue.
        model_id: a committed model.
        weights: also load the weights and check that they hash to ``model_id``.
    """
    problems: list[str] = []
    rebuild: list[str] = []
    move = False
    name = source = None
    counts: dict[str, int] = {}
    heads: dict[str, list[dict[str, object]]] = {}
    for table in layout.MODEL_TABLES:
        path = layout.table_path(root, model_id, table)
        structural = table in STRUCTURAL_TABLES
        if not path.is_file():
            if structural:
                problems.append(f"{path.name} is missing")
                move = True
            continue  # a derived table not computed yet is `roon reindex`'s job, not damage
        try:
            counts[table], heads[table] = _read(path, table)
        except CatalogueError as exc:
            problems.append(str(exc))
            if structural:
                move = True
            else:
                rebuild.append(table)
    row = heads.get("models", [None])[0] if heads.get("models") else None
    if "models" in counts and (counts["models"] != 1 or row is None):
        problems.append(f"models.parquet holds {counts['models']} rows, not 1")
        move, row = True, None
    if row is not None:
        name = str(row["name"])
        if row["model_id"] != model_id:
            problems.append(f"models.parquet describes model {row['model_id']}, not {model_id}")
            move = True
    prov = heads.get("provenance") or [{}]
    source = prov[0].get("source") if prov else None  # type: ignore[assignment]
    if row is not None:
        min_weight = prov[0].get("min_weight") if prov else None
        for table, (relation, expected) in _expected_rows(row, min_weight).items():  # type: ignore[arg-type]
            got = counts.get(table)
            if got is None:
                continue
            ok = {"==": got == expected, "<=": got <= expected, ">=": got >= expected}[relation]
            if not ok:
                problems.append(
                    f"{table}.parquet holds {got} rows; the models row says {relation} {expected}"
                )
                if table in STRUCTURAL_TABLES:
                    move = True
                else:
                    rebuild.append(table)
    if weights:
        problem = _check_weights(root, model_id, row)
        if problem:
            problems.append(problem)
            move = True
    return ModelCheck(
        model_id,
        name,
        tuple(problems),
        tuple(sorted(set(rebuild))),
        move,
        str(source) if source else None,
    )


def _check_weights(root: Path, model_id: str, row: dict[str, object] | None) -> str | None:
    from roon.ingest.loaders import load_model

    path = layout.weights_path(root, model_id)
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        mlp = load_model(path)
    except RoonError as exc:
        why = _short(str(exc).removeprefix(str(path)).lstrip(": "))
        return f"{path.name} cannot be read ({why})"
    if mlp.id != model_id:
        return f"{path.name} hashes to {mlp.id[:12]}, not to the model id: the weights changed"
    if row is not None:
        widths = "-".join(str(w) for w in mlp.widths)
        if widths != row["widths"]:
            return f"{layout.WEIGHTS_FILE} has widths {widths}; the models row says {row['widths']}"
    return None


def check_rows(root: Path) -> list[RowsCheck]:
    """The row files of catalogue tables (lineage, ...) that do not decode."""
    found = []
    for table in layout.CATALOGUE_TABLES:
        for path in layout.table_files(root, table):
            try:
                _read(path, table)
            except CatalogueError as exc:
                found.append(RowsCheck(table, path, str(exc)))
    return found


def _aside(root: Path, name: str) -> Path:
    target = layout.damaged_dir(root) / name
    if target.exists():  # damaged before: keep both
        target = target.with_name(f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    return target


def move_aside(root: Path, model_id: str | None = None, *, path: Path | None = None) -> Path:
    """Move a damaged model folder (or one row file) into ``DIR/damaged/``, atomically.

    Readers never look there, so the catalogue is consistent again, and re-ingesting the
    model's source file restores it. Returns where it went.

    Raises:
        CatalogueError: no such model or file.
    """
    from roon.store.write import catalogue_lock, fsync_dir

    source = layout.model_dir(root, model_id) if model_id is not None else path
    if source is None or not source.exists():
        raise CatalogueError(f"nothing to move aside: {source} does not exist")
    with catalogue_lock(root):
        if model_id is not None:
            target = _aside(root, model_id)
        else:
            target = _aside(root, f"{source.parent.name}-{source.name}")
        try:
            target.parent.mkdir(exist_ok=True)
            os.rename(source, target)
            fsync_dir(source.parent)
            fsync_dir(target.parent)
        except OSError as exc:
            raise CatalogueError(
                f"cannot move {source} to {target}: {exc.strerror or exc}"
            ) from None
    return target


def _mentioned(root: Path, message: str) -> Iterator[Path]:
    for match in re.finditer(re.escape(str(root)) + r"/[^\s'\"]+", message):
        yield Path(match.group(0).rstrip(".,:;)"))


def damaged_file(root: Path, path: Path, cause: object) -> CatalogueError:
    """The one-line error for a catalogue file that cannot be read: its model, the fix."""
    why = _short(one_line(cause).replace(str(path), "").strip(" '\":."), 100) or "unreadable"
    fix = f"run 'roon check --repair --catalogue {root}'"
    model_id, table = layout.locate(root, path)
    if model_id is None:
        return CatalogueError(
            f"catalogue {root}: a row file of table {table!r} is damaged "
            f"({path.name}: {why}); {fix}"
        )
    return CatalogueError(
        f"catalogue {root}: model {model_id[:12]} is damaged ({path.name}: {why}); {fix}"
    )


def damage_error(
    root: Path, message: str, files: Collection[Path] | None = None
) -> CatalogueError | None:
    """A one-line error naming the damaged model and the fix, when ``message`` (a
    reader's error) is about a file of the catalogue (one of ``files``, when given);
    else None."""
    for path in _mentioned(root, message):
        if files is not None and path not in files:
            continue
        if layout.locate(root, path)[1] is not None:
            cause = message.split(str(path), 1)[-1]
            return damaged_file(root, path, cause)
    return None
