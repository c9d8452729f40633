"""Linear and debiased CKA (raw and streamed) against Gram-matrix brute force; their
invariances; the one-to-one matching against trying every permutation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.errors import InvalidArgumentError
from roon.query.activations.moments import Moments
from roon.query.activations.similarity import cka_from_moments, linear_cka, match_neurons


def _gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Brute force: HSIC with linear kernels, tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, ell = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return hsic(k, ell) / np.sqrt(hsic(k, k) * hsic(ell, ell))


def _u_centred(k: np.ndarray) -> np.ndarray:
    """Székely–Rizzo U-centring, element by element (i != j), zero diagonal."""
    n = len(k)
    k = k.copy()
    np.fill_diagonal(k, 0.0)
    out = np.zeros_like(k)
    total = k.sum()
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = (
                    k[i, j]
                    - k[i].sum() / (n - 2)
                    - k[:, j].sum() / (n - 2)
                    + total / ((n - 1) * (n - 2))
                )
    return out


def _gram_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Brute force: unbiased HSIC = <Ũ_K, Ũ_L> / (n(n-3)), normalised."""
    ku, lu = _u_centred(x @ x.T), _u_centred(y @ y.T)

    def hsic(a, b):
        return float(np.sum(a * b))

    return hsic(ku, lu) / np.sqrt(hsic(ku, ku) * hsic(lu, lu))


def _streamed(x: np.ndarray, y: np.ndarray, debiased: bool, batch: int = 5) -> float:
    moments = Moments([["x"], ["y"]], [[x.shape[1]], [y.shape[1]]])
    for start in range(0, len(x), batch):
        moments.update([x[start : start + batch], y[start : start + batch]])
    return cka_from_moments(moments, 0, 1, debiased=debiased)


def test_hand_computed_example():
    # centred x = (-1, 0, 1), y = (-1, 1, 0): x·y = 1, |x|² = |y|² = 2, CKA = 1² / (2·2)
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [3.0], [2.0]])
    assert linear_cka(x, y) == pytest.approx(0.25, abs=1e-15)
    assert _streamed(x, y, debiased=False, batch=2) == pytest.approx(0.25, abs=1e-15)
    assert _gram_cka(x, y) == pytest.approx(0.25, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_cka_equals_the_gram_matrix_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(23, 4)) + 3.0
    y = np.maximum(x @ rng.normal(size=(4, 6)), 0) + rng.normal(size=(23, 6))
    plain, debiased = _gram_cka(x, y), _gram_debiased_cka(x, y)
    assert abs(plain - debiased) > 1e-3  # the two estimators really differ here
    assert linear_cka(x, y) == pytest.approx(plain, abs=1e-12)
    assert _streamed(x, y, False) == pytest.approx(plain, abs=1e-10)
    assert linear_cka(x, y, debiased=True) == pytest.approx(debiased, abs=1e-12)
    assert _streamed(x, y, True) == pytest.approx(debiased, abs=1e-9)


def _orthogonal(rng: np.random.Generator, p: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(p, p)))
    return q * np.sign(np.diag(r))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 40),
    p=st.integers(1, 6),
    scale=st.floats(1e-3, 1e3),
    debiased=st.booleans(),
)
def test_cka_is_one_with_itself_and_invariant_to_rotation_and_scale(seed, n, p, scale, debiased):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.1, 3, size=p)
    y = np.tanh(x @ rng.normal(size=(p, 3)))
    turned = scale * x @ _orthogonal(rng, p) + rng.normal(size=p)  # + a shift: centred away
    assert linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, turned, debiased) == pytest.approx(1.0, abs=1e-9)
    assert _streamed(x, turned, debiased) == pytest.approx(1.0, abs=1e-7)
    assert linear_cka(turned, y, debiased) == pytest.approx(linear_cka(x, y, debiased), abs=1e-9)


def test_unrelated_wide_layers_score_low_and_debiasing_removes_the_bias():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 40)), rng.normal(size=(60, 40))
    plain, debiased = linear_cka(x, y), linear_cka(x, y, debiased=True)
    assert plain > 0.3  # the known upward bias of CKA when p ~ n
    assert abs(debiased) < 0.05


def test_cka_rejects_bad_shapes():
    with pytest.raises(InvalidArgumentError):
        linear_cka(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(InvalidArgumentError):
        linear_cka(np.zeros((3, 2)), np.zeros((3, 2)), debiased=True)


@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (6, 3)])
def test_matching_maximises_the_total_like_trying_every_permutation(shape):
    sim = np.random.default_rng(sum(shape)).uniform(-1, 1, size=shape)
    rows, cols = match_neurons(sim)
    small, big = min(shape), max(shape)
    assert len(rows) == small == len(set(cols.tolist())) == len(set(rows.tolist()))
    best = max(
        sum(sim[i, j] if shape[0] <= shape[1] else sim[j, i] for i, j in enumerate(chosen))
        for chosen in itertools.permutations(range(big), small)
    )
    assert sim[rows, cols].sum() == pytest.approx(best, abs=1e-12)


def test_matching_recovers_a_permutation():
    p = np.random.default_rng(0).permutation(9)
    sim = np.eye(9)[:, p] * 0.98 + 0.01
    rows, cols = match_neurons(sim)
    assert rows.tolist() == list(range(9))
    assert p[cols].tolist() == list(range(9))
