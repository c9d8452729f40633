"""Derived tables: what roon computes from a model's weights (signatures, tokens, ...).

Structural tables (models, layers, neurons, edges, provenance; :mod:`roon.ingest.rows`)
copy the model; derived tables are computed from it and may change definition between
roon versions. Each has a definition version in :data:`DERIVED_TABLES`: bump it when a
table's rows would come out differently, and ``roon reindex`` recomputes that table for
every stored model from its weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP
from roon.progress import ProgressCallback, shifted

__all__ = [
    "DERIVED_TABLES",
    "ROW_BLOCK",
    "SignatureTally",
    "derived_tables",
    "restricted_batches",
    "restricted_table",
    "signature_batches",
    "signature_table",
]

# table -> definition version (see the module docstring). signatures 2: fire_count and
# chow typed as decimal128(38, 0) integers (were decimal strings), the exact policy.
DERIVED_TABLES: dict[str, int] = {"signatures": 2, "tokens": 1, "restricted": 1, "input_space": 1}


@dataclass
class SignatureTally:
    """What the signatures of one or more models cost and how many were sampled.

    Attributes:
        neurons: neurons given signatures.
        sampled: of them, approximate (method ``sampled``).
        fallbacks: sampled although an exact method reaches them: over the exact budget,
            or ``exact="never"``. ``--exact always`` makes them exact.
        exact_seconds: estimated seconds of beyond-exhaustive exact work
            (:mod:`roon.kernels.plan`).
    """

    neurons: int = 0
    sampled: int = 0
    fallbacks: int = 0
    exact_seconds: float = 0.0


# Weights per block of neurons computed at once: a kernel's temporaries are ~40 bytes per
# weight (float64 copy, sort order, sorted copy, fixed point), 40 MB per block, whatever
# the layer's size.
ROW_BLOCK = 1 << 20


def _blocks(weight: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the row blocks of a layer, about :data:`ROW_BLOCK` weights each."""
    rows = max(1, ROW_BLOCK // weight.shape[1])
    for start in range(0, weight.shape[0], rows):
        yield start, min(start + rows, weight.shape[0])


def signature_batches(
    mlp: MLP,
    domains: Sequence[str],
    *,
    backend: str = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    tally: SignatureTally | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Any]:
    """The ``signatures`` rows of a model as tables of a block of neurons each.

    Every neuron, each layer in its input domain (a ``box`` layer on the corners of its
    input box, propagated from the model's input bounds); ``progress`` receives
    ``neurons`` events counting over the whole model. Neurons are independent, so blocks
    give the rows of one whole-layer call — except for the exact policy: ``exact_budget``
    (``exact="auto"``) is one budget for the whole model, spent block by block, layer by
    layer. ``tally`` (if given) adds up neurons, sampled ones and fallbacks.
    """
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels import signatures
    from roon.kernels.plan import check_policy

    left = check_policy(exact, exact_budget) if exact == "auto" else None
    policy: dict[str, Any] = {"exact": exact, "exact_budget": exact_budget}
    boxes = _boxes(mlp) if "box" in domains else None
    done = 0
    label = mlp.name or mlp.id[:12]
    for i, layer in enumerate(mlp.layers):
        for start, stop in _blocks(layer.weight):
            report = shifted(progress, done + start, mlp.n_neurons, label)
            w, b = layer.weight[start:stop], layer.bias[start:stop]
            if left is not None:
                policy["exact_budget"] = left
            if domains[i] == "box" and boxes is not None:
                from roon.kernels.box import box_signatures

                batch = box_signatures(w, b, *boxes[i], backend=backend, progress=report, **policy)
            else:
                batch = signatures(
                    w, b, domain=domains[i], backend=backend, progress=report, **policy
                )
            if left is not None:
                left = max(0.0, left - batch.exact_seconds)
            if tally is not None:
                tally.neurons += len(batch)
                tally.sampled += int((~batch.exact).sum())
                tally.fallbacks += batch.fallbacks
                tally.exact_seconds += batch.exact_seconds
            table = batch.to_arrow()
            n = stop - start
            head = {
                "neuron_id": neuron_ids(mlp.id, i, range(start, stop)),
                "model_id": pa.array([mlp.id] * n),
                "layer": pa.array([i] * n, type=pa.int32()),
                "neuron": pa.array(range(start, stop), type=pa.int32()),
            }
            for pos, (name, column) in enumerate(head.items()):
                table = table.add_column(pos, name, column)
            yield table
        done += layer.width


def signature_table(
    mlp: MLP,
    domains: Sequence[str],
    *,
    backend: str = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    tally: SignatureTally | None = None,
    progress: ProgressCallback | None = None,
) -> Any:
    """The ``signatures`` rows of a model: every neuron, each layer in its input domain.

    A ``box`` layer is judged on the corners of its input box, propagated from the
    model's (:func:`roon.ingest.normalize.bounds.resolve_input_bounds`).
    ``progress`` receives ``neurons`` events counting over the whole model.
    """
    import pyarrow as pa

    parts = signature_batches(
        mlp,
        domains,
        backend=backend,
        exact=exact,
        exact_budget=exact_budget,
        tally=tally,
        progress=progress,
    )
    return pa.concat_tables(parts)


def restricted_batches(mlp: MLP, domains: Sequence[str]) -> Iterator[Any]:
    """The ``restricted`` rows of a model, one table per block of neurons (in a block, by
    subset size, then neuron: the order of :func:`roon.kernels.restricted.restricted_rows`).

    ``box`` layers get none: the restricted index is defined on the binary and signed
    domains only (a model of box layers only gets one empty table).
    """
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels.restricted import restricted_rows
    from roon.schema import table_schema

    yielded = False
    for i, layer in enumerate(mlp.layers):
        if domains[i] == "box":
            continue
        for start, stop in _blocks(layer.weight):
            rows = restricted_rows(layer.weight[start:stop], layer.bias[start:stop], domains[i])
            n = len(rows.hash)
            neuron = rows.neuron + np.int32(start)
            # the subsets as list<int32> straight from the padded [R, MAX_SUBSET] matrix
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(rows.k, out=offsets[1:])
            inputs = pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(rows.inputs[rows.inputs >= 0].astype(np.int32))
            )
            columns = {
                "neuron_id": neuron_ids(mlp.id, i, neuron),
                "model_id": pa.array([mlp.id] * n),
                "layer": pa.array(np.full(n, i, dtype=np.int32)),
                "neuron": pa.array(neuron),
                "domain": pa.array([domains[i]] * n),
                "k": pa.array(rows.k),
                "inputs": inputs,
                "hash": pa.array(rows.hash, type=pa.string()),
                "fragile": pa.array(rows.fragile),
            }
            yielded = True
            yield pa.table(columns, schema=table_schema("restricted"))
    if not yielded:
        yield table_schema("restricted").empty_table()


def restricted_table(mlp: MLP, domains: Sequence[str]) -> Any:
    """The ``restricted`` rows of a model (:mod:`roon.kernels.restricted`), every layer."""
    import pyarrow as pa

    return pa.concat_tables(restricted_batches(mlp, domains))


def _boxes(mlp: MLP) -> list[Any]:
    from roon.ingest.normalize.bounds import finite_input_bounds
    from roon.kernels.box import layer_boxes

    return layer_boxes(mlp, *finite_input_bounds(mlp, what="the box domain"))


def derived_tables(
    mlp: MLP,
    domains: Sequence[str],
    *,
    tables: Iterable[str] | None = None,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    input_space: Any = "auto",
    stream: bool = False,
    exact: str = "auto",
    exact_budget: float | None = None,
    tally: SignatureTally | None = None,
) -> dict[str, Any]:
    """Compute derived tables of a model (all of :data:`DERIVED_TABLES` by default).

    Args:
        mlp: the model.
        domains: the signature domain of each layer's inputs
            (:func:`roon.ingest.rows.layer_domains`, or a stored ``layers`` table).
        tables: which derived tables to compute.
        backend: signature backend.
        progress: ``neurons`` events while signatures are computed.
        input_space: the space of the ``input_space`` table: what
            :func:`roon.ingest.spaces.resolve_space` takes (``auto`` follows ``domains[0]``).
        stream: return one-pass iterators of record batches (or small tables), computed
            as :func:`roon.store.write_model` writes them, instead of whole tables.
        exact: exact policy of wide neurons, ``auto``, ``always`` or ``never``
            (:mod:`roon.kernels.plan`).
        exact_budget: estimated seconds of exact work per model under ``auto``.
        tally: adds up the signatures' neurons, sampled ones and fallbacks (as the
            signature rows are computed: after the stream is consumed, with ``stream``).

    Raises:
        InvalidArgumentError: an unknown table name, or one domain per layer missing.
    """
    import pyarrow as pa

    from roon.ingest.tokenize import tokens_batches

    wanted = list(DERIVED_TABLES if tables is None else tables)
    unknown = [t for t in wanted if t not in DERIVED_TABLES]
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]!r} is not a derived table; they are {', '.join(DERIVED_TABLES)}"
        )
    from roon.kernels.plan import check_policy

    check_policy(exact, exact_budget)  # a bad policy fails before any work
    if len(domains) != len(mlp.layers):
        raise InvalidArgumentError(
            f"{len(domains)} input domains for {len(mlp.layers)} layers; give one per layer"
        )
    out: dict[str, Any] = {}
    if "signatures" in wanted:
        out["signatures"] = signature_batches(
            mlp,
            domains,
            backend=backend,
            exact=exact,
            exact_budget=exact_budget,
            tally=tally,
            progress=progress,
        )
    if "tokens" in wanted:
        out["tokens"] = tokens_batches(mlp)
    if "restricted" in wanted:
        out["restricted"] = restricted_batches(mlp, domains)
    if "input_space" in wanted:
        from roon.ingest.spaces import input_space_table, resolve_space

        space = resolve_space(mlp, input_space, input_domain=domains[0])
        out["input_space"] = input_space_table(mlp, space)
    if not stream:
        out = {
            name: parts if isinstance(parts, pa.Table) else pa.concat_tables(_tables(parts))
            for name, parts in out.items()
        }
    return out


def _tables(parts: Iterable[Any]) -> Iterator[Any]:
    import pyarrow as pa

    for part in parts:
        yield part if isinstance(part, pa.Table) else pa.Table.from_batches([part])
