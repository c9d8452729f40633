"""``roon compare A B``: what two models share, by signature and by embedding.

* **shared neurons**: the signature hashes both models have, with multiplicity (a hash
  three times in A and twice in B shares two neurons);
* **layer containment**, both ways: layer ``i`` of A is *contained* in layer ``j`` of B
  when B's layer holds every signature of A's layer, with multiplicity (the seed's
  pre-filter, necessary for an embedding, with the same fan-in on both sides);
* **embeddings**: for every contained pair, whether A's layer (as a one-layer pattern)
  really embeds in B's layer — the exact matcher and the functional check of
  ``roon where``, first verified embedding — and whether all of A embeds in B.

Models are files or catalogued models; a file's signatures are computed in memory.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from roon.mlp import MLP

__all__ = ["compare"]


def _index(mlp: MLP, root: Any) -> dict[str, Any]:
    """The model's ``layers``, ``signatures`` and ``restricted`` rows (stored, else computed)."""
    from roon.ingest.derived import derived_tables
    from roon.ingest.rows import layer_domains, layers_table
    from roon.store import has_model, read_model_table

    if root is not None and has_model(root, mlp.id):
        return {
            t: read_model_table(root, mlp.id, t) for t in ("layers", "signatures", "restricted")
        }
    domain = str(mlp.metadata.get("input_domain", "binary"))
    domain = domain if domain in ("binary", "signed") else "binary"
    domains = layer_domains(mlp, domain)
    tables = derived_tables(mlp, domains, tables=["signatures", "restricted"], backend="auto")
    return {"layers": layers_table(mlp, domain), **tables}


def _connection(index: dict[str, Any]) -> Any:
    import duckdb

    con = duckdb.connect(":memory:")
    for name, table in index.items():
        con.register(name, table)
    return con


def _layer_hashes(index: dict[str, Any]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {}
    sig = index["signatures"]
    for layer, h, exact in zip(
        sig["layer"].to_pylist(), sig["hash"].to_pylist(), sig["exact"].to_pylist(), strict=True
    ):
        if exact:
            out.setdefault(layer, Counter())[h] += 1
    return out


def _embeds(pattern_mlp: MLP, name: str, target: MLP, index: dict[str, Any]) -> list[int]:
    """Offsets at which ``pattern_mlp`` has a verified embedding in ``target``."""
    from roon.query.match.candidates import could_appear_in
    from roon.query.match.pattern import Pattern
    from roon.query.match.verify import DEFAULT_TOLERANCE
    from roon.query.match.where import match_model

    pattern = Pattern(name, name, pattern_mlp, "compare")
    filtered = could_appear_in(_connection(index), pattern)
    offsets = []
    for placement in filtered.placements:
        # limit counts verified embeddings: the first one settles the offset
        found, _ = match_model(
            pattern, target, placement.offset, placement.domains, placement.candidates, limit=1
        )
        if any(dev <= DEFAULT_TOLERANCE for _, dev in found):
            offsets.append(placement.offset)
    return sorted(set(offsets))


def _one_way(a: MLP, b: MLP, ia: dict[str, Any], ib: dict[str, Any]) -> dict[str, Any]:
    ha, hb = _layer_hashes(ia), _layer_hashes(ib)
    contained = []
    for i, layer in enumerate(a.layers):
        for j, other in enumerate(b.layers):
            if layer.fan_in != other.fan_in or not ha.get(i):
                continue
            if ha[i] <= hb.get(j, Counter()):
                single = MLP([layer], name=f"{a.name}:{i}")
                embeds = j in _embeds(single, single.name or "", b, ib)
                contained.append({"layer": i, "in_layer": j, "embeds": embeds})
    return {"contained": contained, "whole_model_at": _embeds(a, a.name or "", b, ib)}


def compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None,
    *,
    activation: str | None = None,
) -> dict[str, Any]:
    """Compare two models (see the module docstring).

    ``activation`` is the hidden activation of model files that store none.

    Returns:
        ``{"a": {...}, "b": {...}, "shared_neurons", "shared": [{"hash", "a", "b"}],
        "a_in_b": {"contained": [...], "whole_model_at": [...]}, "b_in_a": {...},
        "notes": [...]}`` (notes: e.g. that an activation was assumed).
    """
    from roon.errors import CatalogueError
    from roon.ingest.loaders import load_notes
    from roon.store import load_model_ref, open_catalogue

    root = None
    if catalogue is not None:
        try:
            root = open_catalogue(catalogue)
        except CatalogueError:
            root = None
    ma, mb = (load_model_ref(ref, catalogue, activation=activation) for ref in (a, b))
    ia, ib = _index(ma, root), _index(mb, root)
    ca = sum(_layer_hashes(ia).values(), Counter())
    cb = sum(_layer_hashes(ib).values(), Counter())
    both = ca & cb
    shared = [
        {"hash": h, "a": ca[h], "b": cb[h]} for h in sorted(both, key=lambda h: (-both[h], h))
    ]
    return {
        "notes": [f"{ref}: {n}" for ref, m in ((a, ma), (b, mb)) for n in load_notes(m)],
        "a": {"model_id": ma.id, "name": ma.name, "widths": list(ma.widths)},
        "b": {"model_id": mb.id, "name": mb.name, "widths": list(mb.widths)},
        "shared_neurons": sum(both.values()),
        "shared": shared,
        "a_in_b": _one_way(ma, mb, ia, ib),
        "b_in_a": _one_way(mb, ma, ib, ia),
    }
