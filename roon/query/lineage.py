"""The derivation trees that lineage rows describe.

A lineage row links a parent model to the child a rule derived from it. Rows form a
forest (a DAG when two parents normalize to one child, e.g. two permutations of one
network under ``canonical``). :func:`lineage_tree` returns, for one model, the trees
rooted at its earliest ancestors, as nested dicts that the CLI draws and ``--json``
prints; :func:`lineage_of` answers it for a model of a catalogue.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["lineage_tree", "lineage_of"]


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def lineage_tree(
    rows: Iterable[Mapping[str, Any]], focus: str, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Derivation trees containing ``focus``, from lineage rows.

    Args:
        rows: lineage rows (``parent_id``, ``child_id``, ``rule``, ``params``,
            ``changes``, ``max_output_change``, ``created_at``).
        focus: the model id asked about.
        names: model id → name, for models stored in the catalogue.

    Returns:
        One node per root ancestor: ``{"model_id", "name", "focus", "children": [edge]}``
        where an edge is ``{"rule", "params", "changes", "max_output_change",
        "created_at", "model": node}``. A model reached a second time is a node with
        ``"repeat": True`` and no children, so every tree is finite.
    """
    names = names or {}
    children: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    parents: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["parent_id"] == row["child_id"]:
            continue
        children[row["parent_id"]].append(row)
        parents[row["child_id"]].add(row["parent_id"])
    roots, seen, stack = [], set(), [focus]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if parents.get(node):
            stack.extend(sorted(parents[node]))
        else:
            roots.append(node)
    expanded: set[str] = set()

    def build(model_id: str) -> dict[str, Any]:
        node: dict[str, Any] = {
            "model_id": model_id,
            "name": names.get(model_id),
            "focus": model_id == focus,
            "children": [],
        }
        if model_id in expanded:
            node["repeat"] = True
            return node
        expanded.add(model_id)
        edges = sorted(
            children.get(model_id, []),
            key=lambda r: (str(r["created_at"]), r["rule"], r["child_id"]),
        )
        for row in edges:
            node["children"].append(
                {
                    "rule": row["rule"],
                    "params": _json(row["params"]),
                    "changes": _json(row["changes"]),
                    "max_output_change": row["max_output_change"],
                    "created_at": row["created_at"],
                    "model": build(row["child_id"]),
                }
            )
        return node

    return [build(r) for r in sorted(roots) or [focus]]


def lineage_of(catalogue: str | os.PathLike[str], ref: str) -> tuple[str, list[dict[str, Any]]]:
    """The derivation trees of one model of a catalogue (what ``roon lineage`` prints).

    Args:
        catalogue: the catalogue directory.
        ref: a model id, id prefix or name; intermediate models known only from lineage
            rows are accepted too.

    Returns:
        ``(model_id, trees)`` as :func:`lineage_tree` builds them.

    Raises:
        CatalogueError: no catalogue, or ``ref`` matches no model (or several).
    """
    from roon.store import open_catalogue, read_table, resolve_model
    from roon.store.read import model_names

    root = open_catalogue(catalogue)
    focus = resolve_model(root, ref, lineage=True)
    trees = lineage_tree(read_table(root, "lineage").to_pylist(), focus, model_names(root))
    return focus, trees
