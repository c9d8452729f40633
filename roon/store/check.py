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
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from roon.errors import CatalogueError, RoonError, one_line
from roon.store import layout
from roon.store.manifest import Segment

__all__ = [
    "STRUCTURAL_TABLES",
    "ModelCheck",
    "RowsCheck",
    "check_model",
    "check_segment",
    "check_rows",
    "move_aside",
    "move_models_aside",
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


def _read(path: Path, table: str) -> dict[str, tuple[int, list[dict[str, object]]]]:
    """Decode a whole Parquet file batch by batch: per model id, (rows, first rows).

    Raises:
        CatalogueError: the file is missing, does not decode, or lacks the schema's columns.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from roon.schema import table_schema

    schema = table_schema(table)
    if not path.is_file():
        raise CatalogueError(f"{path.name} is missing")
    try:
        handle = pq.ParquetFile(path)
        missing = [n for n in schema.names if n not in handle.schema_arrow.names]
        if missing:
            raise CatalogueError(f"{path.name} lacks column {missing[0]!r}")
        found: dict[str, tuple[int, list[dict[str, object]]]] = {}
        keyed = "model_id" in schema.names
        for batch in handle.iter_batches(batch_size=65_536, columns=schema.names):
            if not batch.num_rows:
                continue
            if not keyed:
                rows, head = found.get("", (0, []))
                found[""] = (rows + batch.num_rows, head)
                continue
            runs = pc.run_end_encode(batch.column("model_id"))
            start = 0
            for model_id, end in zip(
                runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True
            ):
                rows, head = found.get(model_id, (0, []))
                if len(head) < 2:
                    head = head + batch.slice(start, min(end - start, 2 - len(head))).to_pylist()
                found[model_id] = (rows + end - start, head)
                start = end
        return found
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
    from roon.store.manifest import current_manifest

    segment = current_manifest(root).by_model.get(model_id)
    if segment is None:
        raise CatalogueError(f"no model {model_id} in {root}; 'roon models' lists them")
    return check_segment(root, segment, weights=weights, models=[model_id])[0]


def check_segment(
    root: Path, segment: Segment, *, weights: bool = True, models: Sequence[str] | None = None
) -> list[ModelCheck]:
    """Verify the models of one segment (each of its files is decoded once)."""
    decoded: dict[str, dict[str, tuple[int, list[dict[str, object]]]]] = {}
    failed: dict[str, str] = {}
    for table in layout.MODEL_TABLES:
        entry = segment.tables.get(table)
        if entry is None or entry.path is None:
            continue
        try:
            decoded[table] = _read(root / entry.path, table)
        except CatalogueError as exc:
            failed[table] = str(exc)
    return [
        _check_one(root, segment, m, decoded, failed, weights)
        for m in (models if models is not None else segment.models)
    ]


def _check_one(
    root: Path,
    segment: Segment,
    model_id: str,
    decoded: dict[str, dict[str, tuple[int, list[dict[str, object]]]]],
    failed: dict[str, str],
    weights: bool,
) -> ModelCheck:
    problems: list[str] = []
    rebuild: list[str] = []
    move = False
    name = source = None
    counts: dict[str, int] = {}
    heads: dict[str, list[dict[str, object]]] = {}
    for table in layout.MODEL_TABLES:
        structural = table in STRUCTURAL_TABLES
        entry = segment.tables.get(table)
        if entry is None:
            if structural:
                problems.append(f"{table}.parquet is missing")
                move = True
            continue  # a derived table not computed yet is `roon reindex`'s job, not damage
        if table in failed:
            problems.append(failed[table])
            if structural:
                move = True
            else:
                rebuild.append(table)
            continue
        counts[table], heads[table] = decoded.get(table, {}).get(model_id, (0, []))
    row = heads.get("models", [None])[0] if heads.get("models") else None
    if "models" in counts and (counts["models"] != 1 or row is None):
        problems.append(f"models.parquet holds {counts['models']} rows, not 1")
        move, row = True, None
    if row is not None:
        name = str(row["name"])
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
        problem = _check_weights(root, segment, model_id, row)
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


def _check_weights(
    root: Path, segment: Segment, model_id: str, row: dict[str, object] | None
) -> str | None:
    from roon.ingest.loaders import load_model_bytes
    from roon.store.segments import read_range

    if segment.weights is None:
        return f"{layout.PACK_FILE} is missing"
    path = root / segment.weights
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        data = read_range(path, *segment.blob(model_id))
        mlp = load_model_bytes(data, path.name)
    except (OSError, ValueError) as exc:
        return f"{path.name} cannot be read ({_short(exc)})"
    except RoonError as exc:
        why = _short(str(exc).removeprefix(path.name).lstrip(": "))
        return f"{path.name} cannot be read ({why})"
    if mlp.id != model_id:
        return f"{path.name} hashes to {mlp.id[:12]}, not to the model id: the weights changed"
    if row is not None:
        widths = "-".join(str(w) for w in mlp.widths)
        if widths != row["widths"]:
            return f"{path.name} has widths {widths}; the models row says {row['widths']}"
    return None


def check_rows(root: Path) -> list[RowsCheck]:
    """The files of catalogue tables (lineage, ...) that do not decode."""
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
        while target.exists():
            target = target.with_name(f"{target.name}-{uuid.uuid4().hex[:6]}")
    return target


def _copy_model(root: Path, segment: Segment, model_id: str, target: Path) -> None:
    """What can be read of one model, copied into ``target``: each table's file (its own
    rows where they can be read alone, else the whole file) and its weights."""
    import shutil

    import pyarrow.parquet as pq

    from roon.store.segments import read_range

    target.mkdir(parents=True)
    alone = len(segment.models) == 1
    for table, entry in segment.tables.items():
        if entry.path is None or not (root / entry.path).is_file():
            continue
        source = root / entry.path
        dest = target / f"{table}.parquet"
        if alone or table in layout.CATALOGUE_TABLES:
            shutil.copyfile(source, dest)
            continue
        try:
            rows = pq.read_table(source, filters=[("model_id", "==", model_id)])
            pq.write_table(rows, dest)
        except Exception:  # unreadable: keep the whole damaged file
            shutil.copyfile(source, dest)
    if segment.weights and (root / segment.weights).is_file():
        try:
            data = read_range(root / segment.weights, *segment.blob(model_id))
            (target / layout.WEIGHTS_FILE).write_bytes(data)
        except (OSError, ValueError):
            shutil.copyfile(root / segment.weights, target / Path(segment.weights).name)


def move_models_aside(root: Path, model_id: str) -> dict[str, Path]:
    """:func:`move_aside` of a model: where each model moved went (the model, and the
    others of its segment when its files cannot be read)."""
    return _move(root, model_id, None)  # type: ignore[return-value]


def move_aside(root: Path, model_id: str | None = None, *, path: Path | None = None) -> Path:
    """Take a damaged model (or one file of a catalogue table) out of the catalogue,
    keeping a copy of it in ``DIR/damaged/``.

    The model leaves the manifest in one commit (the other models of its segment are
    written anew without it; when its segment's files cannot be read, every model of
    the segment must go, and they are moved together: give any of them). Readers never
    look in ``damaged/``, so the catalogue is consistent again, and re-ingesting the
    model's source file restores it. Returns where the copy went.

    Raises:
        CatalogueError: no such model or file, or the others of its segment cannot be
            read to be kept.
    """
    if model_id is not None:
        return _move(root, model_id, None)[model_id]  # type: ignore[index]
    return _move(root, None, path)  # type: ignore[return-value]


def _move(root: Path, model_id: str | None, path: Path | None) -> dict[str, Path] | Path:
    from roon.store.manifest import commit, current_manifest, replaced, without_tables
    from roon.store.segments import drop_models
    from roon.store.write import Stage, catalogue_lock, install

    with Stage(root) as stage, catalogue_lock(root):
        current = current_manifest(root)
        if model_id is not None:
            segment = current.by_model.get(model_id)
            if segment is None:
                raise CatalogueError(f"nothing to move aside: no model {model_id} in {root}")
            target = _aside(root, model_id)
            damaged = {model_id}
            if len(segment.models) > 1 and not _all_readable(root, segment):
                damaged = set(segment.models)
            targets = {m: target if m == model_id else _aside(root, m) for m in sorted(damaged)}
            for m, where in targets.items():
                _copy_model(root, segment, m, where)
            new = drop_models(root, stage, segment, damaged)
            added = [new] if new.models or new.tables else []
            for s in added:
                install(root, s)
            commit(root, current, replaced(current, [segment.id], added))
            return targets
        found = None
        for segment in current.segments:
            for table, entry in segment.tables.items():
                if entry.path is not None and path is not None and root / entry.path == path:
                    found = (segment, table)
        if found is None or path is None:
            raise CatalogueError(f"nothing to move aside: {path} is not a file of {root}")
        segment, table = found
        target = _aside(root, f"{path.parent.name}-{path.name}")
        import shutil

        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, target)
        rest = without_tables(segment, [table])
        added = [rest] if rest.models or rest.tables else []
        commit(root, current, replaced(current, [segment.id], added))
        return target


def _all_readable(root: Path, segment: Segment) -> bool:
    """Whether every file of a segment decodes (its models can be written anew)."""
    for table, entry in segment.tables.items():
        if entry.path is None:
            continue
        try:
            _read(root / entry.path, table)
        except CatalogueError:
            return False
    return True


def _mentioned(root: Path, message: str) -> Iterator[Path]:
    for match in re.finditer(re.escape(str(root)) + r"/[^\s'\"]+", message):
        yield Path(match.group(0).rstrip(".,:;)"))


def damaged_file(root: Path, path: Path, cause: object) -> CatalogueError:
    """The one-line error for a catalogue file that cannot be read: its models, the fix."""
    why = _short(one_line(cause).replace(str(path), "").strip(" '\":."), 100) or "unreadable"
    fix = f"run 'roon check --repair --catalogue {root}'"
    models, table = layout.locate(root, path)
    if not models:
        return CatalogueError(
            f"catalogue {root}: a file of table {table!r} is damaged ({path.name}: {why}); {fix}"
        )
    if len(models) == 1:
        who = f"model {models[0][:12]} is"
    else:
        shown = ", ".join(m[:12] for m in models[:3])
        more = f" and {len(models) - 3} more" if len(models) > 3 else ""
        who = f"models {shown}{more} (one segment) are"
    return CatalogueError(f"catalogue {root}: {who} damaged ({path.name}: {why}); {fix}")


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
