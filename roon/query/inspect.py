"""Describe one catalogued model: the data behind ``roon show``."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

__all__ = ["describe_model"]


def _summary(signatures: list[dict[str, Any]]) -> str:
    """E.g. ``50 exact (exhaustive 50), 2 fragile`` or ``30 approximate (sampled)``."""
    if not signatures:
        return "-"
    methods = Counter(s["method"] for s in signatures)
    exact = sum(s["exact"] for s in signatures)
    fragile = sum(s["fragile"] for s in signatures)
    parts = []
    if exact:
        detail = ", ".join(f"{m} {c}" for m, c in sorted(methods.items()) if m != "sampled")
        parts.append(f"{exact} exact ({detail})")
    if len(signatures) - exact:
        parts.append(f"{len(signatures) - exact} approximate (sampled)")
    if fragile:
        parts.append(f"{fragile} fragile")
    return ", ".join(parts)


def describe_model(catalogue: str | os.PathLike[str], ref: str) -> dict[str, Any]:
    """Everything ``roon show`` prints about one model, as plain data.

    Args:
        catalogue: the catalogue directory.
        ref: model id, id prefix (4+ characters) or exact name.

    Returns:
        ``{"model", "provenance", "layers", "derived_from", "derived_into", "origins"}``;
        each layer carries a ``signature_summary`` string, each lineage row ``stored``
        (whether the model at its other end is in the catalogue: the intermediate steps
        of a normalization, and models removed by ``roon rm``, are not); ``origins`` are
        the nearest stored ancestors, ``{"model_id", "name", "rules"}`` with the rules
        applied since, oldest first.
    """
    from roon.store import has_model, open_catalogue, read_model_table, read_table, resolve_model

    root = open_catalogue(catalogue)
    model_id = resolve_model(root, ref)
    model = read_model_table(root, model_id, "models").to_pylist()[0]
    model["metadata"] = json.loads(model["metadata"])
    provenance = read_model_table(root, model_id, "provenance").to_pylist()[0]
    signatures = read_model_table(root, model_id, "signatures").to_pylist()
    layers = read_model_table(root, model_id, "layers").to_pylist()
    for layer in layers:
        layer["signature_summary"] = _summary(
            [s for s in signatures if s["layer"] == layer["layer"]]
        )
    lineage = read_table(root, "lineage").to_pylist()
    derived_from = [r for r in lineage if r["child_id"] == model_id]
    derived_into = [r for r in lineage if r["parent_id"] == model_id]
    for row in derived_from:
        row["stored"] = has_model(root, row["parent_id"])
    for row in derived_into:
        row["stored"] = has_model(root, row["child_id"])
    return {
        "model": model,
        "provenance": provenance,
        "layers": layers,
        "derived_from": derived_from,
        "derived_into": derived_into,
        "origins": _stored_origins(root, lineage, model_id),
    }


def _stored_origins(
    root: Any, lineage: list[dict[str, Any]], model_id: str
) -> list[dict[str, Any]]:
    """The nearest stored ancestors of a model, through unstored intermediate models."""
    from roon.store import has_model
    from roon.store.read import model_names

    parents: dict[str, list[dict[str, Any]]] = {}
    for row in lineage:
        if row["parent_id"] != row["child_id"]:
            parents.setdefault(row["child_id"], []).append(row)
    names = model_names(root)
    found: list[dict[str, Any]] = []
    stack: list[tuple[str, list[str]]] = [(model_id, [])]
    seen = {model_id}
    while stack:
        node, rules = stack.pop()
        for row in sorted(parents.get(node, []), key=lambda r: r["parent_id"]):
            chain, parent = [row["rule"], *rules], row["parent_id"]
            if has_model(root, parent):
                found.append({"model_id": parent, "name": names.get(parent), "rules": chain})
            elif parent not in seen:
                seen.add(parent)
                stack.append((parent, chain))
    return found
