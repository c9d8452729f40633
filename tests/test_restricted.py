"""The restricted-signature index (roon/kernels/restricted.py) against the kernels:
every row is the signature :func:`roon.kernels.signatures` gives the neuron with its
other inputs removed, over exactly the subsets the README documents."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.kernels.restricted import MAX_SUBSET, TOP_INPUTS, restricted_rows, strongest_inputs
from roon.kernels.signatures import signatures


def _rows_by_neuron(rows) -> dict[int, dict[tuple[int, ...], tuple[str, bool]]]:
    out: dict[int, dict[tuple[int, ...], tuple[str, bool]]] = {}
    for neuron, inputs, h, fragile in zip(
        rows.neuron.tolist(), rows.input_lists(), rows.hash, rows.fragile.tolist(), strict=True
    ):
        subsets = out.setdefault(neuron, {})
        assert tuple(inputs) not in subsets  # each subset once
        subsets[tuple(inputs)] = (h, fragile)
    return out


@settings(max_examples=25, deadline=None)
@given(
    fan_in=st.integers(1, 14),
    width=st.integers(1, 3),
    domain=st.sampled_from(["binary", "signed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_row_is_the_signature_of_the_neuron_restricted_to_its_inputs(
    fan_in: int, width: int, domain: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    # small integers: exact ties in |w| and restrictions that sit on their threshold
    w = rng.integers(-3, 4, size=(width, fan_in)).astype(np.float64)
    b = rng.integers(-3, 4, size=width).astype(np.float64)
    rows = restricted_rows(w, b, domain)
    m = min(TOP_INPUTS, fan_in)
    per_neuron = sum(comb(m, k) for k in range(1, min(MAX_SUBSET, m) + 1))
    assert len(rows.hash) == width * per_neuron
    if fan_in >= TOP_INPUTS:
        assert per_neuron == 8 + 28 + 56 == 92
    by_neuron = _rows_by_neuron(rows)
    for neuron in range(width):
        # the strongest inputs by |w|, ties to the lower index: an independent sort
        order = sorted(range(fan_in), key=lambda i: (-abs(w[neuron, i]), i))[:m]
        want = {s for k in range(1, min(MAX_SUBSET, m) + 1) for s in combinations(sorted(order), k)}
        assert set(by_neuron[neuron]) == want
        for subset, (h, fragile) in by_neuron[neuron].items():
            [sig] = list(signatures(w[[neuron]][:, list(subset)], b[[neuron]], domain, "ref"))
            assert (h, fragile) == (sig.hash, sig.fragile), (neuron, subset)


def test_ties_in_weight_go_to_the_lower_input_index() -> None:
    w = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 2.0]])
    assert strongest_inputs(w).tolist() == [[10, 0, 1, 2, 3, 4, 5, 6]]


def test_a_restriction_on_its_threshold_is_fragile() -> None:
    # AND = relu(x0 + x1 − 1) restricted to {x0}: x0 − 1 is exactly 0 at x0 = 1
    rows = restricted_rows(np.array([[1.0, 1.0]]), np.array([-1.0]), "binary")
    by_subset = dict(zip(map(tuple, rows.input_lists()), rows.fragile.tolist(), strict=True))
    assert by_subset == {(0,): True, (1,): True, (0, 1): True}
    # relu(x0 + x1 − 0.5): no restriction's pre-activation is within the tolerance of 0
    rows = restricted_rows(np.array([[1.0, 1.0]]), np.array([-0.5]), "binary")
    assert not rows.fragile.any()


def test_an_empty_layer_has_no_rows() -> None:
    rows = restricted_rows(np.zeros((0, 4)), np.zeros(0), "binary")
    assert len(rows.hash) == 0 and rows.inputs.shape == (0, MAX_SUBSET)
