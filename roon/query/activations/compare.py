"""``compare_activations``: two models on the same inputs, neuron by neuron and layer by layer.

One streamed pass captures both models. Then, per pair of corresponding layers, the
Pearson similarity of every neuron of A with every neuron of B, the best one-to-one
matching, and — the agreement of the data view with the weight view — whether each
matched pair's exact weight signatures (:func:`roon.signatures` of the neurons' incoming
weights) are equal; and the linear CKA of every layer of A with every layer of B.

Layers correspond by name when the two models share names (``layer0``, ``layer1``, ...
for two MLPs, module paths for two torch modules of one architecture), else by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.progress import ProgressCallback
from roon.query.activations.capture import DEFAULT_BATCH_SIZE, Capture, capture_many
from roon.query.activations.groups import LayerGroups
from roon.query.activations.similarity import match_neurons

__all__ = ["NeuronPair", "LayerComparison", "ActivationComparison", "compare_activations"]


@dataclass(frozen=True)
class NeuronPair:
    """One matched pair: neuron ``a`` of A's layer and neuron ``b`` of B's.

    Attributes:
        a, b: neuron indices in their layers.
        correlation: their Pearson correlation over the sample.
        signatures_equal: equal weight-signature hashes; None where the layer's incoming
            weights are unknown (a torch module that is not a roon MLP).
        signatures_exact: both signatures exact (an approximate one is a sample).
    """

    a: int
    b: int
    correlation: float
    signatures_equal: bool | None
    signatures_exact: bool | None


@dataclass(frozen=True)
class LayerComparison:
    """A's layer ``layer_a`` against B's layer ``layer_b``.

    Attributes:
        similarity: ``[live_a, live_b]`` Pearson correlations (rows follow ``live_a``).
        live_a, live_b: the neurons that vary over the sample (constant ones have no
            correlation and are listed in ``constant_a``/``constant_b``).
        pairs: the one-to-one matching, in A's neuron order.
        unmatched_a, unmatched_b: live neurons left over when the widths differ.
        correlation_a, correlation_b: each layer's own ``[live, live]`` correlations
            (for the embedding plot).
    """

    layer_a: str
    layer_b: str
    cka: float
    similarity: np.ndarray = field(repr=False)
    live_a: np.ndarray = field(repr=False)
    live_b: np.ndarray = field(repr=False)
    pairs: tuple[NeuronPair, ...]
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]
    constant_a: tuple[int, ...]
    constant_b: tuple[int, ...]
    correlation_a: np.ndarray = field(repr=False)
    correlation_b: np.ndarray = field(repr=False)

    @property
    def mean_correlation(self) -> float:
        """Mean correlation of the matched pairs (0 when nothing could be matched)."""
        return float(np.mean([p.correlation for p in self.pairs])) if self.pairs else 0.0

    @property
    def signature_agreement(self) -> int | None:
        """Matched pairs whose signatures are equal (None where unknown)."""
        known = [p.signatures_equal for p in self.pairs if p.signatures_equal is not None]
        return sum(known) if known else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer_a": self.layer_a,
            "layer_b": self.layer_b,
            "cka": self.cka,
            "mean_correlation": self.mean_correlation,
            "signature_agreement": self.signature_agreement,
            "pairs": [p.__dict__ for p in self.pairs],
            "unmatched_a": list(self.unmatched_a),
            "unmatched_b": list(self.unmatched_b),
            "constant_a": list(self.constant_a),
            "constant_b": list(self.constant_b),
            "live_a": self.live_a.tolist(),
            "live_b": self.live_b.tolist(),
            "similarity": np.round(self.similarity, 6).tolist(),
        }


@dataclass(frozen=True)
class ActivationComparison:
    """The result of :func:`compare_activations`.

    Attributes:
        model_a, model_b: the two models' names; ``id_a``/``id_b`` their ids (MLPs).
        n_samples: samples both models ran on; ``inputs`` how they were given;
            ``inputs_digest`` a hash of their values.
        layers_a, layers_b: the captured layers, the rows and columns of ``cka``.
        cka: ``[len(layers_a), len(layers_b)]`` linear CKA (debiased if ``debiased``).
        layers: the matched layer pairs.
        groups_a, groups_b: co-activation groups of every captured layer.
        capture: the streaming statistics behind it all.
    """

    model_a: str
    model_b: str
    id_a: str | None
    id_b: str | None
    n_samples: int
    inputs: str
    inputs_digest: str
    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    cka: np.ndarray = field(repr=False)
    debiased: bool
    layers: tuple[LayerComparison, ...]
    groups_a: tuple[LayerGroups, ...]
    groups_b: tuple[LayerGroups, ...]
    capture: Capture = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "id_a": self.id_a,
            "id_b": self.id_b,
            "n_samples": self.n_samples,
            "inputs": self.inputs,
            "inputs_digest": self.inputs_digest,
            "debiased": self.debiased,
            "cka": {
                "rows": list(self.layers_a),
                "columns": list(self.layers_b),
                "values": np.round(self.cka, 6).tolist(),
            },
            "layers": [layer.to_dict() for layer in self.layers],
            "groups_a": [g.to_dict() for g in self.groups_a],
            "groups_b": [g.to_dict() for g in self.groups_b],
        }


def _pair_layers(a: Sequence[str], b: Sequence[str], explicit: bool) -> list[tuple[str, str]]:
    common = [name for name in a if name in b]
    if common and not explicit:
        return [(name, name) for name in common]
    if len(a) != len(b):
        raise InvalidArgumentError(
            f"A's layers {list(a)} and B's {list(b)} share no names and differ in number; "
            "name B's layers to pair with A's in order (layers_b)"
        )
    return list(zip(a, b, strict=True))


def _signature_hashes(model: Any, layer: str, input_domain: str, backend: str) -> Any:
    """``(hashes, exact)`` of a roon MLP layer's neurons, or None for other models."""
    from roon.mlp import MLP

    if not isinstance(model, MLP):
        return None
    from roon.ingest.rows import layer_domains
    from roon.kernels import signatures

    i = int(layer[len("layer") :].split(".")[0])
    dense = model.layers[i]
    domain = layer_domains(model, input_domain)[i]
    batch = signatures(dense.weight, dense.bias, domain=domain, backend=backend)
    return batch.hash, batch.exact


def _compare_layers(
    cap: Capture, la: str, lb: str, cka: float, sigs: tuple[Any, Any]
) -> LayerComparison:
    similarity = cap.correlation(la, lb, 0, 1)
    live_a, live_b = cap.live(la, 0), cap.live(lb, 1)
    rows, cols = match_neurons(similarity)
    pairs = []
    for r, c in zip(rows, cols, strict=True):
        i, j = int(live_a[r]), int(live_b[c])
        equal = exact = None
        if sigs[0] is not None and sigs[1] is not None:
            equal = sigs[0][0][i] == sigs[1][0][j]
            exact = bool(sigs[0][1][i] and sigs[1][1][j])
        pairs.append(NeuronPair(i, j, float(similarity[r, c]), equal, exact))
    return LayerComparison(
        layer_a=la,
        layer_b=lb,
        cka=cka,
        similarity=similarity,
        live_a=live_a,
        live_b=live_b,
        pairs=tuple(pairs),
        unmatched_a=tuple(int(i) for i in np.setdiff1d(live_a, live_a[rows])),
        unmatched_b=tuple(int(j) for j in np.setdiff1d(live_b, live_b[cols])),
        constant_a=tuple(int(i) for i in cap.constant(la, 0)),
        constant_b=tuple(int(j) for j in cap.constant(lb, 1)),
        correlation_a=cap.correlation(la, model=0),
        correlation_b=cap.correlation(lb, model=1),
    )


def compare_activations(
    a: Any,
    b: Any,
    inputs: Any,
    *,
    layers: Sequence[str] | str | None = None,
    layers_b: Sequence[str] | str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    debiased: bool = False,
    threshold: float = 0.9,
    group_method: str = "complete",
    signatures: bool = True,
    input_domain: str = "binary",
    backend: str = "auto",
    progress: ProgressCallback | None = None,
) -> ActivationComparison:
    """Compare two models by their activations on the same inputs.

    Args:
        a, b: roon MLPs, torch modules or model files.
        inputs: what both models run on (see :func:`roon.capture`).
        layers: layers to capture in both models (default: every MLP layer output, every
            leaf module).
        layers_b: B's layers when they are named differently; paired with ``layers``
            by position.
        batch_size: samples per forward pass.
        debiased: report debiased CKA (unbiased HSIC) instead of plain linear CKA.
        threshold: correlation threshold of the co-activation groups.
        group_method: ``complete`` or ``components`` (see :mod:`.groups`).
        signatures: compare the matched neurons' exact weight signatures (MLPs only).
        input_domain: signature domain of layer 0 (``binary`` or ``signed``); later
            layers follow the previous activation, as in the catalogue.
        backend: signature backend (``auto``, ``ref``, ``cpu``, ``triton``).
        progress: receives ``samples`` events while capturing.

    Raises:
        InvalidArgumentError: unknown layers, layers that cannot be paired, bad inputs.
    """
    from roon.ingest.rows import INPUT_DOMAINS
    from roon.mlp import MLP
    from roon.query.activations.groups import check_grouping

    check_grouping(threshold, group_method)
    if input_domain not in INPUT_DOMAINS:
        raise InvalidArgumentError(
            f"input domain {input_domain!r}; choose one of {', '.join(INPUT_DOMAINS)}"
        )
    names_b = layers if layers_b is None else layers_b
    cap = capture_many([a, b], inputs, [layers, names_b], batch_size=batch_size, progress=progress)
    layers_a, layers_b_ = cap.layers
    pairs = _pair_layers(layers_a, layers_b_, explicit=layers_b is not None)
    cka = np.array([[cap.cka(x, y, 0, 1, debiased=debiased) for y in layers_b_] for x in layers_a])
    compared = []
    for la, lb in pairs:
        sigs: tuple[Any, Any] = (None, None)
        if signatures:
            sigs = (
                _signature_hashes(cap.models[0], la, input_domain, backend),
                _signature_hashes(cap.models[1], lb, input_domain, backend),
            )
        value = float(cka[layers_a.index(la), layers_b_.index(lb)])
        compared.append(_compare_layers(cap, la, lb, value, sigs))
    ids = [m.id if isinstance(m, MLP) else None for m in cap.models]
    labels = list(cap.labels)
    if labels[0] == labels[1]:  # two models of one name: say which is which
        labels = [f"{labels[0]} (A)", f"{labels[1]} (B)"]
    return ActivationComparison(
        model_a=labels[0],
        model_b=labels[1],
        id_a=ids[0],
        id_b=ids[1],
        n_samples=cap.n_samples,
        inputs=cap.inputs,
        inputs_digest=cap.inputs_digest,
        layers_a=layers_a,
        layers_b=layers_b_,
        cka=cka,
        debiased=debiased,
        layers=tuple(compared),
        groups_a=tuple(cap.groups(n, 0, threshold, group_method) for n in layers_a),
        groups_b=tuple(cap.groups(n, 1, threshold, group_method) for n in layers_b_),
        capture=cap,
    )
