"""Step records: what one rule did, as data, report and catalogue rows.

Every step names its parent and child models (content ids), the parameters used, the
neurons removed, merged or reordered per layer, and the largest output change on a
fixed, seeded sample of the input box (:func:`~roon.ingest.normalize.bounds.domain_sample`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from roon.ingest.normalize.bounds import compact_bounds, domain_sample, resolve_input_bounds
from roon.mlp import MLP

__all__ = ["Step", "finish_step", "output_change", "lineage_table", "normalization_report"]


@dataclass(frozen=True)
class Step:
    """One applied rule.

    Attributes:
        rule: rule name.
        params: the parameters used, JSON-ready (defaults included).
        parent_id: id of the model the rule was applied to.
        child_id: id of the model it produced (equal to ``parent_id`` for a no-op).
        changes: neurons removed, merged or reordered per layer, by parent index.
        max_output_change: largest ``|child(x) - parent(x)|`` over the fixed sample.
        exact: whether the rule preserves the function by construction.
        created_at: when the step ran (UTC).
    """

    rule: str
    params: dict[str, Any]
    parent_id: str
    child_id: str
    changes: dict[str, Any]
    max_output_change: float
    exact: bool
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def is_noop(self) -> bool:
        return self.parent_id == self.child_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as stored in ``MLP.provenance`` and in reports)."""
        return {
            "step": "normalize",
            "rule": self.rule,
            "params": self.params,
            "parent_id": self.parent_id,
            "child_id": self.child_id,
            "changes": self.changes,
            "max_output_change": self.max_output_change,
            "exact": self.exact,
            "created_at": self.created_at.isoformat(),
        }


def finish_step(
    parent: MLP,
    child: MLP,
    name: str,
    params: dict[str, Any],
    changes: dict[str, Any],
    exact: bool,
    input_bounds: Any,
) -> tuple[MLP, Step]:
    delta = output_change(parent, child, input_bounds)
    step = Step(name, params, parent.id, child.id, changes, delta, exact)
    return child.replace(provenance=[*parent.provenance, step.to_dict()]), step


def output_change(parent: MLP, child: MLP, input_bounds: Any = None) -> float:
    """Largest ``|child(x) - parent(x)|`` over the fixed sample of ``parent``'s input box."""
    lo, hi = resolve_input_bounds(parent, input_bounds)
    x = domain_sample(lo, hi)
    return float(np.max(np.abs(child.forward(x) - parent.forward(x)), initial=0.0))


def lineage_table(steps: Sequence[Step], *, include_noops: bool = False) -> Any:
    """Steps as a ``pyarrow.Table`` of the catalogue's ``lineage`` schema.

    No-op steps (child == parent) are left out unless ``include_noops``: the table is the
    tree of *derived* models, and a self-loop derives nothing.
    """
    import pyarrow as pa

    from roon.schema import table_schema

    kept = [s for s in steps if include_noops or not s.is_noop]

    def dump(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))

    columns = {
        "parent_id": [s.parent_id for s in kept],
        "child_id": [s.child_id for s in kept],
        "rule": [s.rule for s in kept],
        "params": [dump(s.params) for s in kept],
        "changes": [dump(s.changes) for s in kept],
        "max_output_change": [s.max_output_change for s in kept],
        "created_at": [s.created_at for s in kept],
    }
    return pa.table(columns, schema=table_schema("lineage"))


def normalization_report(
    parent: MLP, child: MLP, steps: Sequence[Step], *, input_bounds: Any = None
) -> dict[str, Any]:
    """JSON-ready summary of a pipeline run (what ``roon normalize`` writes beside OUT).

    ``max_output_change`` is measured from ``parent`` to ``child`` directly, on the same
    fixed sample of the input box as every step.
    """
    lo, hi = resolve_input_bounds(parent, input_bounds)
    return {
        "name": parent.name,
        "parent_id": parent.id,
        "child_id": child.id,
        "widths_before": list(parent.widths),
        "widths_after": list(child.widths),
        "rules": [s.rule for s in steps],
        "max_output_change": output_change(parent, child, input_bounds),
        "input_bounds": compact_bounds(lo, hi),
        "steps": [s.to_dict() for s in steps],
    }
