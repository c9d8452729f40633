"""``roon check``: find damaged models (and row files) in a catalogue, and mend them.

Checking reads every file of every model (:func:`roon.store.check.check_model`). With
``repair``:

* damaged derived tables (signatures, tokens) are recomputed from the stored weights, as
  ``roon reindex`` does;
* a model whose weights or structural tables are damaged is moved to ``DIR/damaged/``
  (outside what readers see) and reported with the file it was ingested from, to
  re-ingest;
* a damaged row file of a catalogue table (lineage) is moved there too.

Afterwards every query works again; nothing is deleted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roon.errors import RoonError, one_line
from roon.progress import ProgressCallback, emit

__all__ = ["Finding", "CheckReport", "check_catalogue"]


@dataclass(frozen=True)
class Finding:
    """One damaged model (or row file) and what was (or would be) done about it.

    Attributes:
        model_id: the model, or None for a row file of a catalogue table.
        table: the catalogue table of a row file (``lineage``), else None.
        name: the model's name, when its ``models`` row could be read.
        problem: what is wrong, one line.
        action: what ``--repair`` did (``reindexed signatures``, ``moved to DIR/...``) or
            would do (``would reindex ...``, ``would move aside``).
        source: the file the model was ingested from, to re-ingest after a move.
        repaired: whether the repair was done and succeeded.
    """

    model_id: str | None
    table: str | None
    name: str | None
    problem: str
    action: str
    source: str | None = None
    repaired: bool = False


@dataclass
class CheckReport:
    """The outcome of :func:`check_catalogue`.

    Attributes:
        catalogue: the catalogue checked.
        models: how many models were checked.
        findings: one per damaged model or row file.
        repair: whether repairs were asked for.
    """

    catalogue: str
    models: int = 0
    findings: list[Finding] = field(default_factory=list)
    repair: bool = False

    @property
    def repaired(self) -> bool:
        """Whether every finding was repaired (vacuously true when there were none)."""
        return all(f.repaired for f in self.findings)

    def summary(self) -> str:
        """One line: what was checked, found and done."""
        if not self.findings:
            return f"checked {self.models} models in {self.catalogue}: no damage found"
        found = f"checked {self.models} models in {self.catalogue}: {len(self.findings)} damaged"
        if not self.repair:
            return f"{found}; run 'roon check --repair --catalogue {self.catalogue}' to mend them"
        moved = [f for f in self.findings if f.action.startswith("moved")]
        failed = [f for f in self.findings if not f.repaired]
        text = f"{found}, {len(self.findings) - len(failed)} repaired"
        if moved:
            text += f" ({len(moved)} moved aside: re-ingest their source files to restore them)"
        if failed:
            text += f", {len(failed)} could not be repaired"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalogue": self.catalogue,
            "models": self.models,
            "repair": self.repair,
            "repaired": self.repaired,
            "findings": [asdict(f) for f in self.findings],
        }


def check_catalogue(
    catalogue: str | os.PathLike[str],
    *,
    repair: bool = False,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
) -> CheckReport:
    """Verify every model of a catalogue, and with ``repair`` mend what is damaged.

    Args:
        catalogue: the catalogue directory.
        repair: recompute damaged derived tables; move models with damaged weights or
            structural tables (and damaged row files) to ``DIR/damaged/``.
        backend: signature backend for recomputed signatures.
        progress: ``models`` events.

    Raises:
        CatalogueError: no catalogue at ``catalogue``.
    """
    from roon.ingest.reindex import reindex_model
    from roon.store import open_catalogue
    from roon.store.check import check_rows, check_segment, move_aside, move_models_aside
    from roon.store.manifest import current_manifest

    root = open_catalogue(catalogue)
    manifest = current_manifest(root)
    total = len(manifest.by_model)
    report = CheckReport(str(root), total, repair=repair)
    number = 0
    for segment in manifest.segments:
        if not segment.models:
            continue
        found_all = check_segment(root, segment)
        moved: dict[str, Path] = {}  # model → where a repair moved it (with others of its segment)
        rebuilt: set[str] = set()  # models whose tables a repair recomputed (the whole segment)
        for found in found_all:
            emit(progress, "models", number, total, found.model_id[:12])
            number += 1
            emit(progress, "models", number, total, found.model_id[:12])
            if not found.damaged:
                continue
            model_id = found.model_id
            problem = "; ".join(found.problems)
            base = {"model_id": model_id, "table": None, "name": found.name, "problem": problem}
            if found.move:
                action, ok = "would move aside (weights or structural tables damaged)", False
                if repair:
                    try:
                        if model_id not in moved:
                            moved.update(move_models_aside(root, model_id))
                        target = moved[model_id]
                        again = f"; re-ingest {found.source}" if found.source else ""
                        action, ok = f"moved to {target}{again}", True
                    except RoonError as exc:
                        action = f"could not move aside: {one_line(exc)}"
            else:
                tables = ", ".join(found.rebuild)
                action, ok = f"would reindex {tables}", False
                if repair:
                    try:
                        if model_id not in rebuilt:
                            rebuilt.update(
                                reindex_model(root, model_id, found.rebuild, backend=backend)
                            )
                        action, ok = f"reindexed {tables}", True
                    except RoonError as exc:
                        action = f"reindex failed: {one_line(exc)}"
            report.findings.append(Finding(**base, action=action, source=found.source, repaired=ok))
    for bad in check_rows(root):
        action, ok = "would move aside", False
        if repair:
            try:
                action, ok = f"moved to {move_aside(root, path=bad.path)}", True
            except RoonError as exc:
                action = f"could not move aside: {one_line(exc)}"
        report.findings.append(Finding(None, bad.table, None, bad.problem, action, repaired=ok))
    return report
