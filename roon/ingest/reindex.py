"""``roon reindex``: recompute derived tables of stored models from their weights.

A catalogue written by an older roon lacks tables, or holds tables of an older
definition (:data:`roon.ingest.derived.DERIVED_TABLES`); reindexing recomputes exactly
those, per model, from ``model.safetensors`` — the original model files are not needed.
The input space of the ``input_space`` table is the one recorded in its rows (a probe
set's file must still be where it was; a damaged table is rebuilt on ``auto``); the box
of the ``box`` domain is the one in the model's metadata.
Each model is upgraded atomically (:func:`roon.store.write.replace_model_tables`), so a
reindex can be interrupted at any point and run again: it resumes with the models still
out of date.
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
    from roon.store import layout
    from roon.store.read import read_model_table

    if not layout.table_path(root, model_id, "input_space").is_file():
        return "auto"
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


def reindex_model(
    root: Path,
    model_id: str,
    tables: Sequence[str],
    *,
    backend: str = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    progress: ProgressCallback | None = None,
) -> None:
    """Recompute the given derived tables of one stored model from its weights, atomically.

    ``exact`` and ``exact_budget``: the exact policy of wide neurons, as for ingest.

    Raises:
        CatalogueError: damaged weights or ``layers`` table (named, with the fix).
    """
    from roon.ingest.derived import DERIVED_TABLES, derived_tables
    from roon.store import load_catalogued_model
    from roon.store.read import read_model_table
    from roon.store.write import replace_model_tables

    mlp = load_catalogued_model(root, model_id)
    layers = read_model_table(root, model_id, "layers").sort_by("layer")
    domains = layers.column("input_domain").to_pylist()
    computed = derived_tables(
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
    replace_model_tables(root, model_id, computed, {t: DERIVED_TABLES[t] for t in tables})


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
    from roon.store.migrate import stale_tables
    from roon.store.read import model_names

    check_policy(exact, exact_budget)
    if isinstance(models, str | os.PathLike):
        models = [models]  # one reference, not its characters
    refs = [] if models is None else _references(models)
    root = open_catalogue(catalogue)
    ids = sorted({resolve_model(root, str(r)) for r in refs}) if refs else list_models(root)
    names = model_names(root)
    results = []
    for number, model_id in enumerate(ids):
        name = names.get(model_id, model_id[:12])
        emit(progress, "models", number, len(ids), name)
        todo = sorted(DERIVED_TABLES) if force else stale_tables(root, model_id, DERIVED_TABLES)
        result = ReindexResult(model_id, name, "current")
        if todo:
            try:
                reindex_model(
                    root,
                    model_id,
                    todo,
                    backend=backend,
                    exact=exact,
                    exact_budget=exact_budget,
                    progress=progress,
                )
                result = ReindexResult(model_id, name, "reindexed", tuple(todo))
            except RoonError as exc:
                result = ReindexResult(model_id, name, "failed", tuple(todo), one_line(exc))
        results.append(result)
        emit(progress, "models", number + 1, len(ids), name)
    return results
