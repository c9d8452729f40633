"""``roon reindex``: recompute derived tables of stored models from their weights.

A catalogue written by an older roon lacks tables, or holds tables of an older
definition (:data:`roon.ingest.derived.DERIVED_TABLES`); reindexing recomputes exactly
those, per model, from its stored weights — the original model files are not needed.
The input space of the ``input_space`` table is the one recorded in its rows (a probe
set's file must still be where it was; a damaged table is rebuilt on ``auto``); the box
of the ``box`` domain is the one in the model's metadata.
The models of a segment are upgraded together, atomically
(:func:`roon.store.write.replace_tables`), so a reindex can be interrupted at any point
and run again: it resumes with the models still out of date.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roon.errors import RoonError, one_line
from roon.progress import ProgressCallback, emit

__all__ = ["ReindexResult", "reindex_catalogue", "reindex_model"]


@dataclass(frozen=True)
class ReindexResult:
    """What reindexing did to one model.

    Attributes:
        model_id: the model.
        name: its name.
        status: ``reindexed``, ``current`` (nothing to do) or ``failed``.
        tables: the derived tables recomputed (or that would have been).
        reason: the one-line error when ``status == "failed"``.
    """

    model_id: str
    name: str
    status: str
    tables: tuple[str, ...] = ()
    reason: str | None = None


def _recorded_space(root: Path, model_id: str) -> Any:
    """The input space a model's ``input_space`` rows were computed on: its stored spec,
    ``none`` when the table is there without rows, ``auto`` when it was never computed.

    A damaged file holds no readable spec, and the spec is recorded nowhere else: the
    table is then rebuilt on ``auto`` (what the model's metadata and layer-0 domain give),
    so that ``roon check --repair`` can mend it.
    """
    from roon.errors import CatalogueError
    from roon.ingest.spaces import stored_space
    from roon.store.manifest import current_manifest
    from roon.store.read import read_model_table

    segment = current_manifest(root).by_model.get(model_id)
    entry = segment.tables.get("input_space") if segment is not None else None
    if entry is None:
        return "auto"
    if entry.path is None:
        return "none"
    try:
        return stored_space(read_model_table(root, model_id, "input_space")) or "none"
    except CatalogueError:  # damaged: the recorded space is lost with it
        return "auto"


def _references(models: Any) -> list[str | os.PathLike[str]]:
    from roon.errors import InvalidArgumentError, require_reference

    try:
        items = list(models)
    except TypeError:
        raise InvalidArgumentError(
            f"models must be a model reference or a list of them, not {type(models).__name__}"
        ) from None
    return [require_reference(r, "a model reference") for r in items]


def _computed(
    root: Path,
    model_id: str,
    tables: Sequence[str],
    backend: str,
    progress: ProgressCallback | None,
    exact: str = "auto",
    exact_budget: float | None = None,
) -> dict[str, Any]:
    """One stored model's derived tables, recomputed from its weights (rows streamed)."""
    from roon.ingest.derived import derived_tables
    from roon.store import load_catalogued_model
    from roon.store.read import read_model_table

    mlp = load_catalogued_model(root, model_id)
    layers = read_model_table(root, model_id, "layers").sort_by("layer")
    domains = layers.column("input_domain").to_pylist()
    return derived_tables(
        mlp,
        domains,
        tables=tables,
        backend=backend,
        progress=progress,
        input_space=_recorded_space(root, model_id),
        stream=True,
        exact=exact,
        exact_budget=exact_budget,
    )


def reindex_model(
    root: Path,
    model_id: str,
    tables: Sequence[str],
    *,
    backend: str = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Recompute the given derived tables of one stored model from its weights, atomically.

    ``exact`` and ``exact_budget``: the exact policy of wide neurons, as for ingest.
    When a file of those tables in the model's segment does not decode, the rows of the
    other models of the segment are lost with it: their tables are recomputed too.

    Returns:
        The models whose tables were recomputed (``model_id`` first).

    Raises:
        CatalogueError: damaged weights or ``layers`` table (named, with the fix).
    """
    from roon.ingest.derived import DERIVED_TABLES
    from roon.store.manifest import current_manifest
    from roon.store.migrate import readable
    from roon.store.write import replace_tables

    segment = current_manifest(root).by_model.get(model_id)
    ids = [model_id]
    if segment is not None and len(segment.models) > 1:
        files = [e.path for t in tables if (e := segment.tables.get(t)) and e.path]
        if not all(readable(root / f) for f in files):
            ids += [m for m in segment.models if m != model_id]
    new = {m: _computed(root, m, tables, backend, progress, exact, exact_budget) for m in ids}
    replace_tables(root, new, {t: DERIVED_TABLES[t] for t in tables})
    return ids


def reindex_catalogue(
    catalogue: str | os.PathLike[str],
    *,
    models: str | Sequence[str] | None = None,
    force: bool = False,
    backend: str = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    progress: ProgressCallback | None = None,
) -> list[ReindexResult]:
    """Recompute the out-of-date derived tables of every (or the given) stored model.

    Args:
        catalogue: the catalogue directory.
        models: model references (id, id prefix or name), or one; default every model.
        force: recompute every derived table, out of date or not.
        backend: signature backend.
        exact: exact policy of wide neurons (``auto``, ``always``, ``never``).
        exact_budget: estimated seconds of exact work per model under ``auto``.
        progress: ``models`` events, and ``neurons`` events within a model.

    Returns:
        One :class:`ReindexResult` per model, in id order. A model that fails (damaged
        weights, say) is reported and the others go on.

    Raises:
        CatalogueError: no catalogue, or a reference that matches no model.
    """
    from roon.ingest.derived import DERIVED_TABLES
    from roon.kernels.plan import check_policy
    from roon.store import list_models, open_catalogue, resolve_model
    from roon.store.manifest import current_manifest
    from roon.store.migrate import stale_models
    from roon.store.read import model_names
    from roon.store.write import replace_tables

    check_policy(exact, exact_budget)
    if isinstance(models, str | os.PathLike):
        models = [models]  # one reference, not its characters
    refs = [] if models is None else _references(models)
    root = open_catalogue(catalogue)
    ids = sorted({resolve_model(root, str(r)) for r in refs}) if refs else list_models(root)
    names = model_names(root)
    manifest = current_manifest(root)
    stale = {} if force else stale_models(root, ids, DERIVED_TABLES, manifest=manifest)
    # one rewrite per segment (and set of stale tables), not one per model
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for model_id in ids:
        todo = tuple(sorted(DERIVED_TABLES)) if force else tuple(stale.get(model_id, []))
        segment = manifest.by_model[model_id]
        groups.setdefault((segment.id, todo), []).append(model_id)
    results: dict[str, ReindexResult] = {}
    number = 0
    for (_, todo), group in groups.items():
        new = {}
        for model_id in group:
            name = names.get(model_id, model_id[:12])
            emit(progress, "models", number, len(ids), name)
            results[model_id] = ReindexResult(model_id, name, "current")
            if todo:
                try:
                    new[model_id] = _computed(
                        root, model_id, todo, backend, progress, exact, exact_budget
                    )
                except RoonError as exc:
                    results[model_id] = ReindexResult(model_id, name, "failed", todo, one_line(exc))
            number += 1
            emit(progress, "models", number, len(ids), name)
        if not new:
            continue
        try:
            replace_tables(root, new, {t: DERIVED_TABLES[t] for t in todo})
            for model_id in new:
                results[model_id] = ReindexResult(
                    model_id, results[model_id].name, "reindexed", todo
                )
        except RoonError as exc:
            for model_id in new:
                results[model_id] = ReindexResult(
                    model_id, results[model_id].name, "failed", todo, one_line(exc)
                )
    return [results[m] for m in ids]
