"""The seed's signature computation, re-implemented faithfully as the benchmark baseline.

Seed 000 (``NeuronModel``) sorts the weights, then enumerates every subset with
``itertools.combinations`` and sums floats in Python. Its faults are kept on purpose,
because this file exists to time that code path, not to be right: the full set is
tested against ``Σw > 0`` without the bias, and float rounding decides near ties.
Never use it for signatures; :func:`roon.signatures` is the real thing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = ["SeedNeuron", "seed_excited_states"]


class SeedNeuron:
    """The seed's ``NeuronModel`` minus its global id counter."""

    def __init__(self, weights: Sequence[float], bias: float) -> None:
        self.bias = float(bias)
        self.weights = sorted(float(w) for w in weights)

    def excited_states(self) -> list[list[int]]:
        """Every excited subset of sorted positions, exactly as the seed builds it."""
        states = []
        if sum(self.weights) > 0:  # the seed's bug: the bias is forgotten here
            states.append(list(range(len(self.weights))))
        for i in range(len(self.weights)):
            for state in itertools.combinations(range(len(self.weights)), i):
                total = 0.0
                for w in state:
                    total += float(self.weights[w])
                if total + self.bias > 0:
                    states.append(list(state))
        return states


def seed_excited_states(weights: Sequence[float], bias: float) -> list[list[int]]:
    """The seed's signature of one neuron (list of excited subsets)."""
    return SeedNeuron(weights, bias).excited_states()
