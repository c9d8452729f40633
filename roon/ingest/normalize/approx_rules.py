"""Approximate normalizer rules (seed 004): thresholds trade exactness for simplicity.

Each rule returns ``(child, changes)``; the step record measures how much the outputs
moved. Layers are visited input side first. ``dead`` scores every neuron on the original
weights, then removes (seed 004's rule; ``dead_rescore`` re-scores each layer on the
network as already edited instead); ``duplicates`` and ``low-variance`` decide on the
model as already edited, so a hand-built network predicts exactly what is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError, one_line
from roon.ingest.normalize.surgery import Surgery
from roon.mlp import MLP, activate

__all__ = ["dead", "duplicates", "low_variance", "load_sample", "sample_digest"]


# Seed 004's safety factor: a neuron is dead when 1.1 · ‖w_in‖ · ‖w_out‖ is below the
# threshold, i.e. its weight product is below threshold / 1.1.
DEAD_FACTOR = 1.1


def _dead_scores(weight: np.ndarray, next_weight: np.ndarray) -> np.ndarray:
    """``1.1 · ‖w_in‖₂ · ‖w_out‖₂`` per neuron of a layer (incoming norm without the bias)."""
    w_in = np.linalg.norm(np.asarray(weight, dtype=np.float64), axis=1)
    w_out = np.linalg.norm(np.asarray(next_weight, dtype=np.float64), axis=0)
    return DEAD_FACTOR * w_in * w_out


def dead(
    mlp: MLP, *, dead_threshold: float = 0.05, dead_rescore: bool = False
) -> tuple[MLP, dict[str, Any]]:
    """Drop hidden neurons with ``1.1 · ‖w_in‖₂ · ‖w_out‖₂ < dead_threshold``.

    Every neuron is scored on the *original* weights, then the dead ones are removed:
    seed 004's rule, so whether a neuron is dead does not depend on what was removed
    before it. With ``dead_rescore`` each layer is instead scored on the network as
    already edited (the incoming weights from neurons removed in the layer before no
    longer count), which can remove more. The incoming norm excludes the bias; the
    removed neuron's output at zero input, ``act(b)`` (its bias as edited so far), times
    its outgoing column is folded into the next layer's bias.
    """
    original = [
        _dead_scores(mlp.layers[i].weight, mlp.layers[i + 1].weight)
        for i in range(len(mlp.layers) - 1)
    ]
    s = Surgery(mlp)
    for i in s.hidden_layers:
        if s.is_placeholder_only(i):
            continue
        # layer i's rows are untouched until it is visited, so current index = parent index
        score = _dead_scores(s.weights[i], s.weights[i + 1]) if dead_rescore else original[i]
        idx = np.flatnonzero(score < dead_threshold)
        values = activate(s.activations[i], s.biases[i].astype(np.float64)[idx])
        s.remove(i, idx, values)
    return s.to_mlp(), s.changes()


def _first_close_pair(
    rows: np.ndarray, d2: np.ndarray, threshold: float, eps: float
) -> tuple[int, int] | None:
    """First ``(a, b)``, ``a < b`` in row-major order, with ``‖rows[a] - rows[b]‖ <
    threshold`` and ``‖rows[b]‖ > eps``.

    ``d2`` (squared distances, possibly from a Gram matrix) screens with a generous
    rounding slack; each candidate is confirmed in order by the directly computed
    difference norm, which decides.
    """
    sq = np.einsum("ij,ij->i", rows, rows)
    slack = 1e-9 * (sq[:, None] + sq[None, :]) + 1e-300
    screen = np.triu(d2 < threshold * threshold + slack, k=1)
    screen &= (np.sqrt(sq) > eps)[None, :]
    for a, b in np.argwhere(screen):  # row-major: a first, then b
        if np.linalg.norm(rows[a] - rows[b]) < threshold:
            return int(a), int(b)
    return None


def duplicates(
    mlp: MLP, *, duplicate_threshold: float = 0.1, duplicate_eps: float = 0.001
) -> tuple[MLP, dict[str, Any]]:
    """Repeatedly merge the first pair of close neurons (layers in order, pairs ``a < b``).

    Close: ``‖[w_a, b_a] - [w_b, b_b]‖₂ < duplicate_threshold`` and ``‖[w_b, b_b]‖₂ >
    duplicate_eps``. The merged neuron sits at ``a`` with the mean of the two rows and
    the sum of the two outgoing columns; ``b`` is dropped. A merge changes only row
    ``a`` of the layer (and columns of the next layer), so the distance matrix is
    updated in ``O(N n)`` per merge instead of recomputed.
    """
    s = Surgery(mlp)
    for i in s.hidden_layers:
        rows = s.rows(i)  # [N, n+1]
        sq = np.einsum("ij,ij->i", rows, rows)
        d2 = sq[:, None] + sq[None, :] - 2.0 * rows @ rows.T  # [N, N]
        while s.width(i) > 1:
            pair = _first_close_pair(rows, d2, duplicate_threshold, duplicate_eps)
            if pair is None:
                break
            a, b = pair
            out = s.out_columns(i)
            s.merge(i, a, b, (rows[a] + rows[b]) / 2.0, out[:, a] + out[:, b])
            rows = s.rows(i)
            d2 = np.delete(np.delete(d2, b, axis=0), b, axis=1)
            d2[a, :] = d2[:, a] = np.sum((rows - rows[a]) ** 2, axis=1)
    return s.to_mlp(), s.changes()


def load_sample(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an input sample: ``.npy`` (no pickles) or ``.pt`` (``weights_only`` torch load).

    Raises:
        ModelFormatError: unreadable file, unknown suffix, or not a numeric 2-D array.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".pt", ".pth"):
        raise ModelFormatError(f"sample {path} has suffix {suffix!r}; use .npy or .pt")
    # a named pipe would block the read, a device (/dev/urandom) never end or look
    # like a pickle: refuse what is not a regular file before opening it
    from roon.ingest.loaders import special_file_kind

    with contextlib.suppress(OSError):  # a missing file is named by the read below
        kind = special_file_kind(path.stat().st_mode, path)
        if kind is not None:
            raise ModelFormatError(f"sample {path} is {kind}; give a .npy or .pt file")
    if suffix != ".npy":
        from roon.ingest.loaders.state_dict import check_torch_archive

        try:
            check_torch_archive(path)
        except ModelFormatError as exc:
            raise ModelFormatError(f"cannot read sample {path}: {exc}") from None
    try:
        if suffix == ".npy":
            # mapped first, so a header that declares more data than the file holds fails
            # here instead of allocating it; then copied into memory
            with np.errstate(over="ignore"):
                data = np.array(np.load(path, mmap_mode="r", allow_pickle=False))
        else:
            import torch

            data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        message = one_line(exc)[:200]
        raise ModelFormatError(f"cannot read sample {path}: {message}") from None
    if suffix != ".npy":
        import torch

        if not isinstance(data, torch.Tensor):
            raise ModelFormatError(
                f"{path} holds a {type(data).__name__}; save one tensor [N, inputs]"
            )
        data = data.detach().to(torch.float64).numpy()
    return np.asarray(data)


def as_sample(sample: Any, mlp: MLP) -> np.ndarray:
    if sample is None:
        raise InvalidArgumentError(
            "rule 'low-variance' needs an input sample: pass sample=... (--sample)"
        )
    is_file = isinstance(sample, str | os.PathLike)
    x = load_sample(sample) if is_file else np.asarray(sample)
    what = f"sample {os.fspath(sample)}" if is_file else "the sample"
    if not np.issubdtype(x.dtype, np.number):
        raise ModelFormatError(f"{what} has dtype {x.dtype}; expected numbers")
    x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] != mlp.input_width or x.shape[0] < 2:
        raise ModelFormatError(
            f"{what} has shape {x.shape}; expected [N >= 2, {mlp.input_width}] inputs"
        )
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise ModelFormatError(
            f"{what} holds {x[row, col]} at row {row}, input {col} ({len(bad)} non-finite "
            "values); every input must be a finite number"
        )
    return x


def sample_digest(sample: Any, mlp: MLP) -> dict[str, Any]:
    """The recorded form of a sample: its shape and the SHA-256 of its float64 bytes."""
    x = as_sample(sample, mlp)
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype="<f8").tobytes()).hexdigest()
    return {"shape": list(x.shape), "sha256": digest}


def low_variance(
    mlp: MLP, *, sample: Any = None, variance_threshold: float = 1e-6
) -> tuple[MLP, dict[str, Any]]:
    """Drop hidden neurons whose output variance over ``sample`` is below the threshold,
    folding their mean output over the sample into the next layer's bias.

    Args:
        mlp: the model.
        sample: ``[N, inputs]`` array, or a ``.npy`` / ``.pt`` file holding one.
        variance_threshold: population variance below which a neuron is dropped.
    """
    x = as_sample(sample, mlp)
    s = Surgery(mlp)
    for i in s.hidden_layers:
        if s.is_placeholder_only(i):
            continue
        h = s.hidden_outputs(x, i)  # [N, width]
        idx = np.flatnonzero(h.var(axis=0) < variance_threshold)
        s.remove(i, idx, h.mean(axis=0)[idx])
    return s.to_mlp(), s.changes()
