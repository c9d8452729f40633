"""``roon.capture``: run models on inputs and keep streaming statistics of their layers.

Memory is bounded by the layer widths, not by the sample: each batch is folded into
:class:`~roon.query.activations.moments.Moments` and dropped. Raw activations are kept
only for the first ``keep`` samples, when asked.

Example:
    >>> import numpy as np, roon
    >>> mlp = roon.MLP([roon.Layer(np.eye(2), np.zeros(2), "relu")])
    >>> cap = roon.capture(mlp, np.random.default_rng(0).normal(size=(100, 2)))
    >>> cap.layers[0], cap.n_samples
    (('layer0',), 100)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.progress import ProgressCallback, emit
from roon.query.activations.inputs import batches
from roon.query.activations.moments import Moments
from roon.query.activations.runners import runner_for

__all__ = ["Capture", "capture", "capture_many", "DEFAULT_BATCH_SIZE"]

# Rows per forward pass: large enough that BLAS, not Python, dominates the update of the
# cross-products; small enough that a batch of 4096-wide activations is ~8 MB.
DEFAULT_BATCH_SIZE = 256


@dataclass(frozen=True)
class Capture:
    """Streaming statistics of the captured layers of one or more models.

    Attributes:
        models: the models as given (roon MLPs or torch modules), in order.
        labels: a short name per model.
        layers: per model, the captured layer names.
        n_samples: samples seen.
        moments: the streaming sums (see :mod:`roon.query.activations.moments`).
        samples: ``{(model, layer): [keep, width]}`` raw activations of the first
            ``keep`` samples (empty unless asked).
        inputs: how the inputs were given (a file path or ``inputs``).
        inputs_digest: a 128-bit hash of the input samples (their values as float64, in
            order), so a stored result names the data it came from.
    """

    models: tuple[Any, ...]
    labels: tuple[str, ...]
    layers: tuple[tuple[str, ...], ...]
    n_samples: int
    moments: Moments = field(repr=False)
    samples: dict[tuple[int, str], np.ndarray] = field(repr=False, default_factory=dict)
    inputs: str = "inputs"
    inputs_digest: str = ""

    def _block(self, layer: str, model: int) -> int:
        if not 0 <= model < len(self.models):
            raise InvalidArgumentError(f"model {model}; this capture holds {len(self.models)}")
        if layer not in self.layers[model]:
            raise InvalidArgumentError(
                f"layer {layer!r} of {self.labels[model]} was not captured; captured: "
                f"{', '.join(self.layers[model])}"
            )
        return self.moments.block(model, layer)

    def width(self, layer: str, model: int = 0) -> int:
        return self.moments.blocks[self._block(layer, model)].width

    def mean(self, layer: str, model: int = 0) -> np.ndarray:
        """Mean activation per neuron, ``[width]``."""
        return self.moments.mean(self._block(layer, model))

    def covariance(self, layer: str, model: int = 0) -> np.ndarray:
        """Sample covariance of the layer's neurons, ``[width, width]`` (``n - 1`` divisor)."""
        k = self._block(layer, model)
        return self.moments.comoment(k, k) / max(self.n_samples - 1, 1)

    def constant(self, layer: str, model: int = 0) -> np.ndarray:
        """Indices of neurons with zero variance over the sample (dead ones included).

        Exact where it matters: ``min == max`` over the sample; a spread that float64
        cannot resolve (variance sum rounds to 0) counts as constant too.
        """
        k = self._block(layer, model)
        m = self.moments
        flat = (m.minimum(k) == m.maximum(k)) | (m.variance_sums(k) <= 0.0)
        return np.flatnonzero(flat)

    def dead(self, layer: str, model: int = 0) -> np.ndarray:
        """Indices of neurons that output exactly 0 on every sample."""
        k = self._block(layer, model)
        m = self.moments
        return np.flatnonzero((m.minimum(k) == 0.0) & (m.maximum(k) == 0.0))

    def live(self, layer: str, model: int = 0) -> np.ndarray:
        """Indices of neurons that vary over the sample (the ones with a correlation)."""
        return np.setdiff1d(np.arange(self.width(layer, model)), self.constant(layer, model))

    def correlation(
        self, layer: str, other: str | None = None, model: int = 0, other_model: int | None = None
    ) -> np.ndarray:
        """Pearson correlation between the live neurons of two captured layers.

        ``correlation("layer1")`` is the layer's own ``[live, live]`` matrix;
        ``correlation("layer1", "layer1", 0, 1)`` compares model 0's layer with model 1's
        (layers of different models only, or the same layer). Constant neurons have no
        correlation and are left out: rows follow :meth:`live`.
        """
        other = layer if other is None else other
        other_model = model if other_model is None else other_model
        a, b = self._block(layer, model), self._block(other, other_model)
        if a != b and model == other_model:
            raise InvalidArgumentError(
                "correlations between two layers of one model are not kept; compare a "
                "layer with itself or with a layer of another model"
            )
        from roon.query.activations.similarity import pearson

        la, lb = self.live(layer, model), self.live(other, other_model)
        m = self.moments
        return pearson(
            m.comoment(a, b)[np.ix_(la, lb)], m.variance_sums(a)[la], m.variance_sums(b)[lb]
        )

    def groups(
        self, layer: str, model: int = 0, threshold: float = 0.9, method: str = "complete"
    ) -> Any:
        """Groups of co-activating neurons of one layer (see :mod:`.groups`)."""
        from roon.query.activations.groups import coactivation_groups

        return coactivation_groups(self, layer, model, threshold=threshold, method=method)

    def cka(
        self, layer_a: str, layer_b: str, model_a: int = 0, model_b: int = 1, debiased: bool = False
    ) -> float:
        """Linear CKA between two layers (a layer with itself, or layers of two models)."""
        from roon.query.activations.similarity import cka_from_moments

        a, b = self._block(layer_a, model_a), self._block(layer_b, model_b)
        if a != b and model_a == model_b:
            raise InvalidArgumentError("CKA between two layers of one model is not kept")
        return cka_from_moments(self.moments, a, b, debiased=debiased)


def capture(
    model: Any,
    inputs: Any,
    layers: Sequence[str] | str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep: int = 0,
    progress: ProgressCallback | None = None,
) -> Capture:
    """Run ``model`` on ``inputs`` and return streaming statistics of its layers.

    Args:
        model: a :class:`roon.MLP`, a ``torch.nn.Module`` or a model file.
        inputs: an array or tensor ``[samples, ...]``, an ``.npy``/``.pt`` file, or an
            iterable of batches (e.g. a ``DataLoader``); see :mod:`.inputs`.
        layers: names to capture (a list or comma-separated): ``layer{i}`` /
            ``layer{i}.pre`` for an MLP, module paths for a torch module; default every
            MLP layer's output / every leaf module.
        batch_size: samples per forward pass.
        keep: keep the raw activations of the first ``keep`` samples (0: none).
        progress: receives ``samples`` events.

    Returns:
        A :class:`Capture` (``capture.correlation(layer)``, ``.groups(layer)``, ...).

    Raises:
        InvalidArgumentError: an unknown layer name (the message lists the valid ones),
            inputs of the wrong width, shape or type, a forward pass that fails.
    """
    return capture_many(
        [model], inputs, [layers], batch_size=batch_size, keep=keep, progress=progress
    )


def capture_many(
    models: Sequence[Any],
    inputs: Any,
    layers: Sequence[Sequence[str] | str | None] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep: int = 0,
    progress: ProgressCallback | None = None,
) -> Capture:
    """Like :func:`capture` for several models on the same batches, in one pass.

    Also keeps the cross-products between the layers of different models, so their
    similarity and CKA need no second pass. ``layers`` has one entry per model.
    """
    if not models:
        raise InvalidArgumentError("no models to capture")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InvalidArgumentError(f"keep {keep!r}; expected a non-negative integer")
    chosen = list(layers) if layers is not None else [None] * len(models)
    if len(chosen) != len(models):
        raise InvalidArgumentError(f"{len(chosen)} layer lists for {len(models)} models")
    runners = [runner_for(m, names) for m, names in zip(models, chosen, strict=True)]
    stream = batches(inputs, batch_size)
    label = ", ".join(r.label for r in runners)
    moments: Moments | None = None
    kept: dict[tuple[int, str], list[np.ndarray]] = {}
    done = 0
    digest = hashlib.blake2b(b"roon-inputs-v1", digest_size=16)
    emit(progress, "samples", 0, stream.total, label)
    with ExitStack() as stack:
        for runner in runners:
            stack.enter_context(runner)
        for batch in stream:
            digest.update(_sample_bytes(batch))
            outputs = [runner.run(batch) for runner in runners]
            if moments is None:
                moments = Moments(
                    [r.names for r in runners],
                    [
                        [out[name].shape[1] for name in r.names]
                        for r, out in zip(runners, outputs, strict=True)
                    ],
                )
            rows = [
                np.concatenate([out[n] for n in r.names], axis=1)
                for r, out in zip(runners, outputs, strict=True)
            ]
            _check_finite(rows, runners, done)
            _check_widths(rows, runners, moments)
            moments.update(rows)
            if done < keep:
                for m, (r, out) in enumerate(zip(runners, outputs, strict=True)):
                    for name in r.names:
                        kept.setdefault((m, name), []).append(out[name][: keep - done])
            done += rows[0].shape[0]
            emit(progress, "samples", done, stream.total, label)
    if moments is None or moments.n < 2:
        raise InvalidArgumentError(
            f"{stream.label}: {0 if moments is None else moments.n} samples; statistics "
            "need at least 2"
        )
    return Capture(
        models=tuple(r.model for r in runners),
        labels=tuple(r.label for r in runners),
        layers=tuple(r.names for r in runners),
        n_samples=moments.n,
        moments=moments,
        samples={key: np.concatenate(parts) for key, parts in kept.items()},
        inputs=stream.label,
        inputs_digest=digest.hexdigest(),
    )


def _check_finite(rows: list[np.ndarray], runners: list[Any], done: int) -> None:
    for row, runner in zip(rows, runners, strict=True):
        if not np.all(np.isfinite(row)):
            raise InvalidArgumentError(
                f"{runner.label} produced NaN or infinite activations on samples "
                f"{done}..{done + row.shape[0] - 1}; check the inputs"
            )


def _check_widths(rows: list[np.ndarray], runners: list[Any], moments: Moments) -> None:
    for row, runner, width in zip(rows, runners, moments.features, strict=True):
        if row.shape[1] != width:
            raise InvalidArgumentError(
                f"{runner.label}'s layers gave {row.shape[1]} features on this batch but "
                f"{width} on the first; all batches must have one shape"
            )


def _sample_bytes(batch: Any) -> bytes:
    """The batch's values as little-endian float64 rows: equal data, equal bytes, whatever
    the batching or the container (array, tensor, file)."""
    if hasattr(batch, "detach"):
        batch = batch.detach().cpu().double().numpy()
    return np.ascontiguousarray(batch, dtype="<f8").tobytes()
