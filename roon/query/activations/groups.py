"""Groups of neurons of one layer that fire together, and the neurons that never vary.

Two neurons *co-activate* when their Pearson correlation over the sample is at least
``threshold``. Groups come from the ``[live, live]`` correlation matrix by one of

* ``complete`` (default): complete-linkage hierarchical clustering (scipy) on the
  distance ``1 - r``, cut at ``1 - threshold``. A cluster's complete-linkage height is
  its largest pairwise distance, so **every pair inside a group correlates at
  ≥ threshold**: a group is a claim about all its members. This is the default because
  it is the reading "these neurons fire together" asks for.
* ``components``: connected components of the graph ``r ≥ threshold`` (single
  linkage). Cheaper to state but it chains: a~b and b~c put a and c together even when
  they are uncorrelated. Useful to see everything a neuron is linked to.

Both are matrix operations (scipy), with no Python loop over pairs. Constant neurons
(zero variance: their correlation is undefined) are reported apart, as ``dead`` (exactly
0 on every sample) and ``constant`` (one other value on every sample), never as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = ["LayerGroups", "coactivation_groups", "group_indices", "check_grouping", "METHODS"]

METHODS = ("complete", "components")


@dataclass(frozen=True)
class LayerGroups:
    """The co-activation groups of one layer.

    Attributes:
        layer: the layer name.
        groups: groups of two or more neurons (indices into the layer), largest first.
        singletons: live neurons in no group.
        dead: neurons that output exactly 0 on every sample.
        constant: other neurons with one value on every sample.
        constant_values: that value, per ``constant`` neuron.
        threshold: the correlation threshold.
        method: ``complete`` or ``components``.
    """

    layer: str
    groups: tuple[tuple[int, ...], ...]
    singletons: tuple[int, ...]
    dead: tuple[int, ...]
    constant: tuple[int, ...]
    constant_values: tuple[float, ...]
    threshold: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "method": self.method,
            "threshold": self.threshold,
            "groups": [list(g) for g in self.groups],
            "singletons": list(self.singletons),
            "dead": list(self.dead),
            "constant": list(self.constant),
            "constant_values": list(self.constant_values),
        }


def check_grouping(threshold: float, method: str) -> None:
    """Raise InvalidArgumentError for an unknown method or a threshold outside [-1, 1]."""
    if method not in METHODS:
        raise InvalidArgumentError(f"grouping method {method!r}; choose one of {METHODS}")
    if not isinstance(threshold, (int, float)) or not -1.0 <= float(threshold) <= 1.0:
        raise InvalidArgumentError(f"threshold {threshold!r}; expected a correlation in [-1, 1]")


def group_indices(correlation: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """A group label per row of a correlation matrix (labels are arbitrary integers)."""
    check_grouping(threshold, method)
    n = correlation.shape[0]
    if n < 2:
        return np.arange(n)
    if method == "components":
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        linked = correlation >= threshold
        np.fill_diagonal(linked, False)
        return connected_components(csr_matrix(linked), directed=False)[1]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = 1.0 - np.clip(correlation, -1.0, 1.0)
    distance = (distance + distance.T) / 2.0  # exactly symmetric for squareform
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="complete")
    return fcluster(tree, t=1.0 - threshold, criterion="distance")


def coactivation_groups(
    capture: Any, layer: str, model: int = 0, threshold: float = 0.9, method: str = "complete"
) -> LayerGroups:
    """Co-activation groups, dead and constant neurons of one captured layer.

    Args:
        capture: a :class:`~roon.query.activations.capture.Capture`.
        layer: the layer name.
        model: which model of the capture.
        threshold: the correlation at or above which two neurons co-activate.
        method: ``complete`` (every pair in a group ≥ threshold) or ``components``.

    Raises:
        InvalidArgumentError: an unknown method, a threshold outside [-1, 1], a layer
            that was not captured.
    """
    check_grouping(threshold, method)
    live = capture.live(layer, model)
    labels = group_indices(capture.correlation(layer, model=model), float(threshold), method)
    # groups as sorted index tuples, by a stable sort over labels (no loop over pairs)
    order = np.lexsort((live, labels))
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    parts = (
        [tuple(int(i) for i in live[chunk]) for chunk in np.split(order, cuts)] if len(live) else []
    )
    groups = sorted((p for p in parts if len(p) > 1), key=lambda g: (-len(g), g[0]))
    singletons = sorted(p[0] for p in parts if len(p) == 1)
    dead = capture.dead(layer, model)
    constant = np.setdiff1d(capture.constant(layer, model), dead)
    values = capture.moments.minimum(capture.moments.block(model, layer))[constant]
    return LayerGroups(
        layer=layer,
        groups=tuple(groups),
        singletons=tuple(singletons),
        dead=tuple(int(i) for i in dead),
        constant=tuple(int(i) for i in constant),
        constant_values=tuple(float(v) for v in values),
        threshold=float(threshold),
        method=method,
    )
