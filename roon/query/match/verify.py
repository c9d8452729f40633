"""The exact checks that confirm a candidate, and the functional check of an embedding.

* :class:`SubnetworkCheck` — the exact positional check of each mapped neuron (see
  there): excited exactly where the pattern neuron is, over the pattern's input domain,
  ties and fragile inputs being don't-cares.
* :func:`embedding_deviation` — evaluates the pattern and the embedded target
  sub-network (mapped inputs only, the rest at 0) on the evaluation points and returns
  the largest deviation after the best positive scale per output neuron (ReLU networks
  are positively homogeneous: a circuit may appear as ``c·f`` with ``c > 0``), relative
  to the pattern's largest output. This one is numerical (float64) by nature; an
  embedding is *verified* when it is within :data:`DEFAULT_TOLERANCE`.

Evaluation points: the whole domain cube ``{0,1}^m`` or ``{−1,0,1}^m`` when it has at
most :data:`MAX_CUBE_POINTS` points (else that many seeded cube points), plus, for the
signed domain, :data:`REAL_SAMPLES` seeded uniform points of ``[−1, 1]^m`` — the signed
circuits (identity, abs, min …) are functions of real inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from roon.kernels.result import FRAGILE_MARGIN
from roon.mlp import activate

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_CUBE_POINTS",
    "REAL_SAMPLES",
    "SubnetworkCheck",
    "evaluation_points",
    "embedding_deviation",
    "silent_outputs",
]

# Relative deviation an embedding may have and still count as the circuit. 0.1 admits a
# circuit trained from scratch to an MSE of ~1e-3 (errors of a few percent of the output
# range) and a copy perturbed by 1e-3 relative; it refuses a different function, which
# deviates by ~50 % or more on some input of the cube (e.g. x1 in place of x1 AND x2).
DEFAULT_TOLERANCE = 0.1
MAX_CUBE_POINTS = 4096
REAL_SAMPLES = 512
_SEED = 20240917


# int64 arithmetic is used while every magnitude provably stays below 2^62; beyond, the
# same operations run on Python integers (object arrays), which never overflow.
_INT64_BITS = 62


def _bits(a: np.ndarray) -> int:
    """Bit length of the largest ``|a|`` (int64 or object array)."""
    if a.size == 0:
        return 0
    if a.dtype == object:
        return max(abs(int(v)).bit_length() for v in a.reshape(-1))
    return int(np.abs(a).max()).bit_length()


def _shifted(odd: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``odd << shift`` elementwise, exact: int64 when it fits, Python integers otherwise."""
    if odd.size == 0 or int(shift.max()) + 53 <= _INT64_BITS:
        return odd << shift
    out = np.empty(odd.shape, dtype=object)
    out.reshape(-1)[:] = [
        o << k for o, k in zip(odd.reshape(-1).tolist(), shift.reshape(-1).tolist(), strict=True)
    ]
    return out


def _scaled(a: np.ndarray, shift: int) -> np.ndarray:
    """``a · 2^shift`` (shift >= 0), promoted to Python integers if int64 could overflow."""
    if shift == 0:
        return a
    if a.dtype != object and _bits(a) + shift > _INT64_BITS:
        a = a.astype(object)
    return a * (1 << shift) if a.dtype == object else a << np.int64(shift)


def _dyadic(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Floats as exact integers at one power-of-two scale: ``values = ints · 2^e``."""
    from roon.kernels.exact import decompose

    return _dyadic_parts(*decompose(np.asarray(values, dtype=np.float64)))


def _dyadic_parts(odd: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`_dyadic` of values already split into ``odd · 2^k``."""
    nz = odd != 0
    e = int(k[nz].min()) if nz.any() else 0
    return _shifted(odd, np.where(nz, k - e, 0)), e


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ``a @ b`` (int64 when the sums provably fit)."""
    inner = a.shape[1] if a.ndim == 2 else 1
    small = a.dtype != object and b.dtype != object
    if small and _bits(a) + _bits(b) + max(inner, 1).bit_length() <= _INT64_BITS:
        return a @ b
    return a.astype(object).dot(b.astype(object))


def _affine(
    w: np.ndarray, b: np.ndarray, values: np.ndarray, e_values: int
) -> tuple[np.ndarray, int]:
    """Exact ``w @ values + b`` for integer ``values · 2^e_values``: ``(ints, e)``."""
    return _affine_dyadic(_dyadic(w), _dyadic(b), values, e_values)


def _affine_dyadic(
    w: tuple[np.ndarray, int], b: tuple[np.ndarray, int], values: np.ndarray, e_values: int
) -> tuple[np.ndarray, int]:
    """:func:`_affine` of weights and biases already in ``(ints, exponent)`` form."""
    (wi, ew), (bi, eb) = w, b
    e = min(ew + e_values, eb)
    if wi.size:
        prod = _matmul(wi, values)
    else:
        prod = np.zeros((wi.shape[0], values.shape[1]), dtype=np.int64)
    left = _scaled(prod, ew + e_values - e)
    right = _scaled(bi[:, None], eb - e)
    if (left.dtype == object) != (right.dtype == object) or max(
        _bits(left), _bits(right)
    ) >= _INT64_BITS:
        left, right = left.astype(object), right.astype(object)
    return left + right, e


EXACT_ACTIVATIONS = ("relu", "linear")


def _activate_exact(name: str, z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, 0) if name == "relu" else z


class SubnetworkCheck:
    """The exact positional check of every neuron of an embedding, as it is built.

    A pattern neuron ``p`` of layer ``j`` and its image ``t`` agree when, over every point
    of the pattern's input domain, ``t`` (in the embedded target sub-network: mapped
    inputs only, every other input at 0) is excited exactly where ``p`` is (in the
    pattern) — except where ``p``'s pre-activation is exactly 0 (don't care) or ``t``'s
    is within the fragility tolerance (``FRAGILE_MARGIN`` of the magnitude of its terms).
    At the first layer this is the positional threshold function of ``t`` restricted to
    the mapped inputs; deeper down it is the function of the pattern's inputs that the
    mapped neurons compute together, so a mapped hidden unit that is a positive multiple
    of its pattern neuron (a symmetry of ReLU networks) changes nothing.

    Exact for ReLU and linear layers (integer arithmetic on the stored dyadic values);
    other activations are evaluated in float64 and the check says so (``exact``).
    """

    def __init__(
        self,
        pattern: Sequence[tuple[np.ndarray, np.ndarray, str]],
        target: Sequence[tuple[np.ndarray, np.ndarray, str]],
        domain: str,
    ) -> None:
        from roon.kernels.tables import MAX_TABLE_FAN_IN, points

        m = np.asarray(pattern[0][0]).shape[1]
        digits = [0, 1] if domain == "binary" else [-1, 0, 1]
        if m <= MAX_TABLE_FAN_IN[domain] and len(digits) ** m <= MAX_CUBE_POINTS:
            x = points(domain, m)
            self.sampled = False
        else:
            rng = np.random.default_rng(_SEED + m)
            x = rng.choice(np.array(digits), size=(MAX_CUBE_POINTS, m))
            self.sampled = True
        self.exact = all(a in EXACT_ACTIVATIONS for _, _, a in [*pattern, *target])
        self.target = target
        if self.exact:  # split every target weight into odd · 2^k once
            from roon.kernels.exact import decompose

            self._split = [
                (decompose(np.asarray(w, np.float64)), decompose(np.asarray(b, np.float64)))
                for w, b, _ in target
            ]
        self.x = x  # [P, m]
        self._inputs = self._values(x.T)
        # the pattern's pre-activation signs, layer by layer: [n_j, P]
        self.pattern_signs: list[np.ndarray] = []
        values = self._inputs
        for w, b, act in pattern:
            z = self._pre(np.asarray(w), np.asarray(b), values)
            self.pattern_signs.append(self._signs(z))
            values = self._act(act, z)
        self._hidden: dict[tuple[tuple[int, ...], ...], tuple[np.ndarray, int]] = {}

    # values are (integers, exponent) when exact, (float64 array, 0) otherwise
    def _values(self, v: np.ndarray) -> tuple[np.ndarray, int]:
        if self.exact:
            return v.astype(np.int64), 0
        return v.astype(np.float64), 0

    def _pre(
        self, w: np.ndarray, b: np.ndarray, values: tuple[np.ndarray, int]
    ) -> tuple[np.ndarray, int]:
        if self.exact:
            return _affine(w, b, values[0], values[1])
        return np.asarray(w, np.float64) @ values[0] + np.asarray(b, np.float64)[:, None], 0

    def _act(self, name: str, z: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
        if self.exact:
            return _activate_exact(name, z[0]), z[1]
        return activate(name, z[0]), 0

    def _target_pre(
        self, j: int, rows: list[int], cols: list[int], values: tuple[np.ndarray, int]
    ) -> tuple[np.ndarray, int]:
        """Pre-activations of target rows of layer ``j``, restricted to ``cols``."""
        if not self.exact:
            w, b, _ = self.target[j]
            sub = np.asarray(w, np.float64)[np.ix_(rows, cols)]
            return self._pre(sub, np.asarray(b, np.float64)[rows], values)
        (odd_w, k_w), (odd_b, k_b) = self._split[j]
        ix = np.ix_(rows, cols)
        w = _dyadic_parts(odd_w[ix], k_w[ix])
        b = _dyadic_parts(odd_b[rows], k_b[rows])
        return _affine_dyadic(w, b, values[0], values[1])

    @staticmethod
    def _signs(z: tuple[np.ndarray, int]) -> np.ndarray:
        a = z[0]
        return ((a > 0).astype(np.int8) - (a < 0).astype(np.int8)).astype(np.int8)

    def _layer_values(self, prefix: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, int]:
        """Outputs of the mapped neurons of the last layer ``prefix`` maps (pattern order).

        ``prefix`` is ``(input map, map of layer 0, ..., map of layer j-1)``.
        """
        if len(prefix) == 1:
            return self._inputs
        if prefix not in self._hidden:
            below = self._layer_values(prefix[:-1])
            j = len(prefix) - 2
            rows = list(prefix[-1])
            cols = list(prefix[-2])
            z = self._target_pre(j, rows, cols, below)
            act = self.target[j][2]
            self._hidden[prefix] = self._act(act, z)
        return self._hidden[prefix]

    def __call__(self, j: int, p: int, t: int, prefix: tuple[tuple[int, ...], ...]) -> bool:
        """Whether target neuron ``t`` of layer ``j`` computes pattern neuron ``p``."""
        values = self._layer_values(prefix)
        w, b, _ = self.target[j]
        cols = list(prefix[-1])
        row = np.asarray(w, np.float64)[t, cols][None, :]
        bias = np.asarray(b, np.float64)[t : t + 1]
        z = self._target_pre(j, [t], cols, values)
        mine = self._signs(z)[0]
        theirs = self.pattern_signs[j][p]
        care = theirs != 0
        if np.array_equal((mine > 0)[care], (theirs > 0)[care]):
            return True
        # a disagreement counts unless t is within its fragility tolerance there
        v = values[0].astype(np.float64) * 2.0 ** values[1]
        pre = (row @ v + bias[:, None])[0]
        size = np.abs(row) @ np.abs(v) + abs(float(bias[0]))
        fragile = np.abs(pre) <= FRAGILE_MARGIN * size[0]
        bad = care & ((mine > 0) != (theirs > 0))
        return bool(np.all(fragile[bad]))


@cache
def evaluation_points(domain: str, m: int) -> np.ndarray:
    """``[N, m]`` float64: the points both networks are evaluated on (module docstring)."""
    from roon.kernels.tables import MAX_TABLE_FAN_IN, points

    rng = np.random.default_rng(_SEED + m)
    digits = np.array([0.0, 1.0] if domain == "binary" else [-1.0, 0.0, 1.0])
    if m <= MAX_TABLE_FAN_IN[domain] and len(digits) ** m <= MAX_CUBE_POINTS:
        cube = points(domain, m).astype(np.float64)
    else:
        cube = rng.choice(digits, size=(MAX_CUBE_POINTS, m))
    if domain == "signed":
        cube = np.concatenate([cube, rng.uniform(-1.0, 1.0, size=(REAL_SAMPLES, m))])
    cube.flags.writeable = False  # shared by every call (cached)
    return cube


def _forward(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], x: np.ndarray) -> np.ndarray:
    h = x
    # huge weights overflow to inf (and inf - inf to nan): the deviation then says "no fit"
    with np.errstate(over="ignore", invalid="ignore"):
        for w, b, act in layers:
            h = activate(act, h @ np.asarray(w, np.float64).T + np.asarray(b, np.float64))
    return h


def silent_outputs(
    pattern_layers: Sequence[tuple[np.ndarray, np.ndarray, str]], domain: str
) -> list[int]:
    """Outputs of the pattern that are 0 on every evaluation point of ``domain``: no
    embedding can be verified there (:func:`embedding_deviation` is ``inf``)."""
    m = np.asarray(pattern_layers[0][0]).shape[1]
    p = _forward(pattern_layers, evaluation_points(domain, m))
    return [int(o) for o in np.flatnonzero(~np.any(p != 0, axis=0))]


def embedding_deviation(
    pattern_layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    target_layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    domain: str,
) -> float:
    """Largest relative deviation of the embedded target from the pattern (module docstring).

    Args:
        pattern_layers: ``(weight, bias, activation)`` per pattern layer.
        target_layers: the embedded sub-network, layer by layer: the mapped target rows,
            restricted to the mapped columns, in pattern order.
        domain: the input domain of the first layer.

    Returns:
        ``max_o max_x |c_o·P_o(x) − T_o(x)| / max_x |c_o·P_o(x)|`` with
        ``c_o = max(0, <P_o, T_o> / <P_o, P_o>)``; ``inf`` when an output of the pattern
        is 0 on every point (nothing to compare) or no positive scale fits.
    """
    m = np.asarray(pattern_layers[0][0]).shape[1]
    x = evaluation_points(domain, m)
    p = _forward(pattern_layers, x)  # [N, outputs]
    t = _forward(target_layers, x)
    worst = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for o in range(p.shape[1]):
            po, to = p[:, o], t[:, o]
            norm = float(po @ po)
            c = float(po @ to) / norm if norm > 0 else 0.0
            scale = float(np.abs(c * po).max()) if c > 0 else 0.0
            if not 0.0 < scale < np.inf:
                return float("inf")
            worst = max(worst, float(np.abs(c * po - to).max()) / scale)
    return worst if np.isfinite(worst) else float("inf")
