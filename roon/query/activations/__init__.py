"""Compare models by their activations: capture, co-activation groups, matching, CKA, plots.

* :func:`capture` — run a roon MLP or a torch module on inputs (array, ``.npy``/``.pt``
  file, DataLoader) and keep streaming statistics of the named layers.
* :meth:`Capture.groups` — neurons of a layer that fire together; dead and constant
  neurons apart.
* :func:`compare_activations` — two models on the same inputs: per layer pair the Pearson
  similarity matrix, the best one-to-one neuron matching and whether matched neurons have
  equal exact weight signatures; linear (or debiased) CKA between all layer pairs.
* :func:`plot_comparison` — the similarity heat maps and a 2-D embedding of the neurons.

This package imports NumPy only at the top; scipy, scikit-learn, matplotlib and torch
load inside the functions that use them.
"""

from __future__ import annotations

from roon.query.activations.capture import Capture, capture, capture_many
from roon.query.activations.compare import (
    ActivationComparison,
    LayerComparison,
    NeuronPair,
    compare_activations,
)
from roon.query.activations.groups import LayerGroups, coactivation_groups
from roon.query.activations.plot import plot_comparison
from roon.query.activations.similarity import linear_cka, match_neurons

__all__ = [
    "ActivationComparison",
    "Capture",
    "LayerComparison",
    "LayerGroups",
    "NeuronPair",
    "capture",
    "capture_many",
    "coactivation_groups",
    "compare_activations",
    "linear_cka",
    "match_neurons",
    "plot_comparison",
]
