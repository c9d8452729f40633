"""Patterns: what ``roon where`` looks for, and the signature keys each pattern neuron accepts.

A pattern is any small network: a library circuit (``and``, ``xor``, ``min`` …), a circuit
JSON file, a model file roon can load, or a catalogued model. Its neurons are judged in
the input domain of the target layer they are placed at, so its keys are computed per
domain.

**Ties are don't-cares.** A hand-written circuit sits exactly on its threshold at some
inputs (``relu(x1 + x2 − 1)`` at (1, 0)); a ReLU outputs 0 there either way, and trained
weights land on either side by noise. A pattern neuron therefore accepts every threshold
function that agrees with it off its tie inputs: :func:`neuron_keys` enumerates the
``2^t`` completions of its ``t`` ties and hashes each truth table
(:func:`roon.kernels.tables.table_hashes`; a completion that is no threshold function has a
hash no target neuron has). The exact check decides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roon.errors import CatalogueError, InvalidArgumentError
from roon.mlp import MLP

__all__ = ["MAX_TIES", "Pattern", "NeuronKeys", "load_pattern", "neuron_keys", "layer_keys"]

# Completions enumerated per pattern neuron: 2^12 tables at most. A neuron with more exact
# ties (or a fan-in beyond the table limit) is matched without the hash filter.
MAX_TIES = 12


@dataclass(frozen=True)
class Pattern:
    """A network to look for.

    Attributes:
        name: circuit name, or the model's name.
        description: what it computes (a circuit's ``computes``; a model's widths).
        mlp: the network.
        source: ``library:<name>``, a file path, or ``catalogue:<model id>``.
        input_domain: the domain a circuit declares (informational: a placed pattern is
            judged in the target layer's domain), None for models.
    """

    name: str
    description: str
    mlp: MLP
    source: str
    input_domain: str | None = None

    @property
    def id(self) -> str:
        """The pattern network's content hash."""
        return self.mlp.id

    @property
    def depth(self) -> int:
        return len(self.mlp.layers)


@dataclass(frozen=True)
class NeuronKeys:
    """What one pattern neuron accepts in one domain.

    Attributes:
        hashes: signature hashes of every completion of its ties, or None when the neuron
            is matched without the hash filter (too many ties, or fan-in too large).
        informative: False when the neuron is never excited off its ties on the domain
            (its only key is the all-zero table: it matches every dead neuron). Where a
            whole output of the circuit is 0 on a domain, ``where`` does not judge
            placements there (:func:`~roon.query.match.verify.silent_outputs`).
    """

    hashes: frozenset[str] | None
    informative: bool = True
    ties: int = 0
    notes: tuple[str, ...] = field(default=())


def _model_pattern(mlp: MLP, source: str) -> Pattern:
    widths = "-".join(str(w) for w in mlp.widths)
    return Pattern(mlp.name or mlp.id[:12], f"a {widths} network", mlp, source)


def load_pattern(
    ref: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None = None,
    *,
    activation: str | None = None,
) -> Pattern:
    """The pattern ``ref`` names: a library circuit, a circuit JSON, a model file, or a
    catalogued model (id, id prefix or name), tried in that order. ``activation`` is the
    hidden activation of a model file that stores none (default relu, noted as assumed).

    Raises:
        InvalidArgumentError: nothing of that name; the message lists the library.
        ModelFormatError: a file that cannot be read.
    """
    from roon.ingest.loaders import load_model
    from roon.ingest.loaders.circuit import circuit_names, load_circuit

    path = Path(ref).expanduser()
    text = os.fspath(ref)
    if path.is_file():
        if path.suffix.lower() == ".json":
            c = load_circuit(path)
            return Pattern(c.name, c.computes, c.mlp, str(path), c.input_domain)
        return _model_pattern(load_model(path, activation=activation), str(path))
    if text.lower() in circuit_names():
        c = load_circuit(text)
        return Pattern(c.name, c.computes, c.mlp, f"library:{c.name}", c.input_domain)
    if catalogue is not None:
        from roon.store import load_catalogued_model, open_catalogue, resolve_model

        try:
            root = open_catalogue(catalogue)
            model_id = resolve_model(root, text)
        except CatalogueError:
            pass
        else:
            return _model_pattern(load_catalogued_model(root, model_id), f"catalogue:{model_id}")
    if path.suffix or os.sep in text or path.exists():
        what = "is not a file" if path.exists() else "no such file"
        raise InvalidArgumentError(
            f"{text}: {what}, and no library circuit or catalogued model of that name"
        )
    names = ", ".join(circuit_names())
    raise InvalidArgumentError(
        f"unknown circuit {text!r}: not a library circuit ({names}), a file, "
        "or a model of the catalogue"
    )


def neuron_keys(weight: np.ndarray, bias: np.ndarray, domain: str) -> list[NeuronKeys]:
    """The keys each neuron of a pattern layer accepts in ``domain`` (module docstring)."""
    from roon.kernels.tables import MAX_TABLE_FAN_IN, preactivation_signs, table_hashes

    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    k = w.shape[1]
    if k > MAX_TABLE_FAN_IN[domain]:
        note = f"fan-in {k} beyond the {domain} table limit: no hash filter"
        return [NeuronKeys(None, True, 0, (note,)) for _ in range(w.shape[0])]
    signs, _ = preactivation_signs(w, b, domain)
    out = []
    for row in signs:
        ties = np.flatnonzero(row == 0)
        informative = bool((row > 0).any())
        if len(ties) > MAX_TIES:
            out.append(NeuronKeys(None, informative, len(ties), ("too many exact ties",)))
            continue
        base = row > 0
        combos = np.arange(1 << len(ties))
        tables = np.repeat(base[None, :], len(combos), axis=0)
        if len(ties):
            tables[:, ties] = ((combos[:, None] >> np.arange(len(ties))) & 1).astype(bool)
        out.append(NeuronKeys(frozenset(table_hashes(domain, k, tables)), informative, len(ties)))
    return out


def layer_keys(pattern: Pattern, domains: tuple[str, ...]) -> list[list[NeuronKeys]]:
    """:func:`neuron_keys` of every pattern layer, layer ``j`` judged in ``domains[j]``."""
    return [
        neuron_keys(layer.weight, layer.bias, domain)
        for layer, domain in zip(pattern.mlp.layers, domains, strict=True)
    ]
