"""The figure of a comparison: similarity heat maps and a 2-D embedding of the neurons.

One row per matched layer pair:

* left, the Pearson similarity of A's neurons (rows) with B's (columns), both put in the
  order of the matching, best pair first, so matched pairs lie on the diagonal; a colour
  bar.
* right, the neurons of both layers as points, coloured by model, matched pairs joined.
  Each neuron is its z-scored activation profile over the sample; the embedding is
  scikit-learn's ``KernelPCA`` on the joint correlation matrix of both layers, which *is*
  PCA of those profiles (their Gram matrix is ``(n-1)·R``), computed from the streamed
  statistics without keeping any sample. Constant neurons have no profile to place.

Drawn with matplotlib's Agg canvas on a private ``Figure`` (no pyplot, no global backend
switch), at a fixed size: ``width_px x rows·row_px``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, one_line

__all__ = ["plot_comparison", "neuron_embedding", "FIGURE_WIDTH_IN", "ROW_HEIGHT_IN"]

FIGURE_WIDTH_IN = 13.0  # two panels side by side, each wide enough for a 64-neuron map
ROW_HEIGHT_IN = 5.0
_TICK_LIMIT = 24  # label every neuron up to this width; beyond, the labels would overlap


def neuron_embedding(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of neurons from their joint correlation matrix, and the share of
    the variance each axis explains.

    ``KernelPCA(kernel="precomputed")`` centres the matrix and takes its top two
    eigenvectors: the same coordinates (up to sign) as PCA of the neurons' z-scored
    activation profiles.
    """
    from sklearn.decomposition import KernelPCA

    k = min(2, joint.shape[0] - 1)
    kpca = KernelPCA(n_components=k, kernel="precomputed", eigen_solver="dense")
    coords = kpca.fit_transform(joint)
    total = float(np.trace(joint) - joint.sum() / joint.shape[0])  # trace of the centred matrix
    share = kpca.eigenvalues_ / total if total > 0 else np.zeros(k)
    if k < 2:  # two neurons: one axis
        coords = np.column_stack([coords, np.zeros(len(coords))])
        share = np.append(share, 0.0)
    return coords, share


def _order(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Row and column orders (positions in live_a/live_b) that put matches on the diagonal,
    the best-correlated pair first; unmatched neurons last."""
    pos_a = {int(v): k for k, v in enumerate(layer.live_a)}
    pos_b = {int(v): k for k, v in enumerate(layer.live_b)}
    ranked = sorted(layer.pairs, key=lambda p: (-p.correlation, p.a))
    rows = [pos_a[p.a] for p in ranked]
    cols = [pos_b[p.b] for p in ranked]
    rows += [k for k in range(len(layer.live_a)) if k not in set(rows)]
    cols += [k for k in range(len(layer.live_b)) if k not in set(cols)]
    return np.array(rows, dtype=int), np.array(cols, dtype=int)


def _ticks(ax: Any, axis: str, labels: np.ndarray) -> None:
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    if len(labels) <= _TICK_LIMIT:
        setter(range(len(labels)), [str(int(v)) for v in labels], fontsize=7)
    else:
        setter([])


def _heat_map(fig: Any, ax: Any, result: Any, layer: Any) -> None:
    rows, cols = _order(layer)
    if layer.similarity.size == 0:
        ax.text(0.5, 0.5, "no varying neurons to compare", ha="center", va="center")
        ax.set_axis_off()
        return
    image = ax.imshow(
        layer.similarity[np.ix_(rows, cols)],
        cmap="RdBu_r",
        vmin=-1.0,
        vmax=1.0,
        aspect="auto",
        interpolation="nearest",
    )
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("Pearson correlation")
    _ticks(ax, "y", layer.live_a[rows])
    _ticks(ax, "x", layer.live_b[cols])
    ax.set_ylabel(f"{result.model_a} {layer.layer_a} neuron (best match first)")
    ax.set_xlabel(f"{result.model_b} {layer.layer_b} neuron (its match)")
    kind = "debiased CKA" if result.debiased else "CKA"
    ax.set_title(
        f"{layer.layer_a} vs {layer.layer_b}: {kind} {layer.cka:.3f}, "
        f"mean matched r {layer.mean_correlation:.3f}",
        fontsize=10,
    )


def _embedding(ax: Any, result: Any, layer: Any) -> None:
    na, nb = len(layer.live_a), len(layer.live_b)
    if na + nb < 3:
        ax.text(0.5, 0.5, "too few varying neurons to embed", ha="center", va="center")
        ax.set_axis_off()
        return
    joint = np.block(
        [[layer.correlation_a, layer.similarity], [layer.similarity.T, layer.correlation_b]]
    )
    coords, share = neuron_embedding(joint)
    pos_a = {int(v): k for k, v in enumerate(layer.live_a)}
    pos_b = {int(v): k for k, v in enumerate(layer.live_b)}
    for pair in layer.pairs:
        ia, ib = pos_a[pair.a], na + pos_b[pair.b]
        ax.plot(coords[[ia, ib], 0], coords[[ia, ib], 1], color="0.75", lw=0.7, zorder=1)
    ax.scatter(
        coords[:na, 0],
        coords[:na, 1],
        s=28,
        c="C0",
        marker="o",
        zorder=2,
        label=f"{result.model_a} {layer.layer_a} ({na})",
    )
    ax.scatter(
        coords[na:, 0],
        coords[na:, 1],
        s=28,
        c="C1",
        marker="^",
        zorder=3,
        label=f"{result.model_b} {layer.layer_b} ({nb})",
    )
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(f"PC 1 ({100 * share[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * share[1]:.0f}% of variance)")
    ax.set_title("neurons of both models: PCA of activation profiles (matches joined)", fontsize=10)


def plot_comparison(
    result: Any,
    path: str | os.PathLike[str],
    *,
    layers: Sequence[str] | None = None,
    dpi: int = 100,
) -> Path:
    """Write the figure of an :class:`~.compare.ActivationComparison` to ``path``.

    Args:
        result: what :func:`~.compare.compare_activations` returned.
        path: the image file; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).
        layers: A's layers whose pairs to draw (default all matched pairs).
        dpi: pixels per inch: a PNG is ``13·dpi`` wide and ``5·dpi`` high per row.

    Raises:
        InvalidArgumentError: an unknown layer, a folder that cannot be created (a
            missing one is), a format matplotlib cannot write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chosen = list(result.layers)
    if layers is not None:
        known = {c.layer_a: c for c in result.layers}
        missing = [name for name in layers if name not in known]
        if missing:
            raise InvalidArgumentError(
                f"no matched layer pair starts at {missing[0]!r}; pairs start at {', '.join(known)}"
            )
        chosen = [known[name] for name in layers]
    if not chosen:
        raise InvalidArgumentError("the comparison has no matched layer pairs to plot")
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, no permission
        raise InvalidArgumentError(
            f"{target}: cannot create its folder {target.parent} ({one_line(exc)})"
        ) from None
    fig = Figure(
        figsize=(FIGURE_WIDTH_IN, ROW_HEIGHT_IN * len(chosen)), dpi=dpi, layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(chosen), 2, squeeze=False)
    for row, layer in zip(axes, chosen, strict=True):
        _heat_map(fig, row[0], result, layer)
        _embedding(row[1], result, layer)
    fig.suptitle(f"{result.model_a} vs {result.model_b}: activations on {result.n_samples} samples")
    try:
        fig.savefig(target, dpi=dpi)
    except (ValueError, OSError) as exc:
        raise InvalidArgumentError(f"{target}: cannot write the figure ({one_line(exc)})") from exc
    return target
