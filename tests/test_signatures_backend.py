"""Backend selection (ROON_BACKEND / backend=) and identical decisions on every backend."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import roon.kernels.dispatch as dispatch
from roon.errors import InvalidArgumentError, KernelUnavailableError
from roon.kernels import signatures
from roon.kernels.cpu import cpu_missing

HAS_CPU = cpu_missing() is None
NO_GPU = dispatch.gpu_missing() is not None

# the module, not the function that roon.kernels re-exports under the same name
sigmod = importlib.import_module("roon.kernels.signatures")

# near ties: 1e-7 either side of 0, an exact tie, and 0.1 + 0.2 against its float64 sum
NEAR = (
    [[0.5, 0.5 + 1e-7], [0.5, 0.5 - 1e-7], [1.0, -1.0], [0.1, 0.2]],
    [-1.0, -1.0, 0.0, -0.30000000000000004],
)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("ROON_BACKEND", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return monkeypatch


def test_auto_picks_cpu_when_built_and_no_gpu(clean_env):
    if not NO_GPU:
        pytest.skip("a GPU is present: auto picks triton")
    assert dispatch.resolve_backend("auto") == ("cpu" if HAS_CPU else "ref")
    assert dispatch.resolve_backend(None) == dispatch.resolve_backend("auto")


def test_auto_never_picks_the_interpreter(clean_env):
    clean_env.setenv("TRITON_INTERPRET", "1")
    if NO_GPU:
        assert dispatch.resolve_backend("auto") != "triton"


def test_environment_variable_is_honoured(clean_env):
    calls = []
    real = dispatch.exhaustive_ref

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    clean_env.setattr(dispatch, "exhaustive_ref", spy)
    clean_env.setenv("ROON_BACKEND", "ref")
    assert dispatch.resolve_backend("auto") == "ref"
    assert signatures([[0.7, 0.7]], [-1.0]).truth_table == ["8"]
    assert calls
    if HAS_CPU:  # an explicit argument wins over the environment
        calls.clear()
        signatures([[0.7, 0.7]], [-1.0], backend="cpu")
        assert not calls


def test_unknown_backend_names_are_clear_errors(clean_env):
    with pytest.raises(
        InvalidArgumentError, match="unknown backend 'cuda'.*auto, ref, cpu, triton"
    ):
        signatures([[1.0]], [0.0], backend="cuda")
    clean_env.setenv("ROON_BACKEND", "fast")
    with pytest.raises(InvalidArgumentError, match="ROON_BACKEND"):
        signatures([[1.0]], [0.0])


def test_explicit_triton_without_gpu_or_interpreter_raises(clean_env):
    if not NO_GPU:
        pytest.skip("a GPU is present")
    with pytest.raises(KernelUnavailableError, match="triton.*TRITON_INTERPRET"):
        signatures([[1.0]], [0.0], backend="triton")


def test_explicit_cpu_without_the_extension_raises_and_auto_falls_back(clean_env):
    import roon.kernels.cpu as cpu

    clean_env.setattr(cpu, "cpu_missing", lambda: "the compiled extension is not built")
    with pytest.raises(KernelUnavailableError, match="backend 'cpu'.*not built"):
        signatures([[1.0]], [0.0], backend="cpu")
    if NO_GPU:
        assert dispatch.resolve_backend("auto") == "ref"
        assert signatures([[1.0, 1.0]], [0.0]).truth_table == ["e"]


@pytest.mark.skipif(not HAS_CPU, reason="compiled extension not built")
@pytest.mark.parametrize("domain", ["binary", "signed"])
def test_cpu_equals_ref_through_the_public_api(domain):
    rng = np.random.default_rng(4)
    for n in (0, 3, 7, 12):
        if domain == "signed" and n > 7:
            continue
        w = np.concatenate([rng.normal(size=(20, n)), rng.integers(-2, 3, size=(20, n)) / 4])
        b = np.concatenate([rng.normal(size=20), rng.integers(-2, 3, size=20) / 4])
        kw = {"table_limit": 12}
        ref = signatures(w, b, domain, backend="ref", **kw).to_dicts()
        assert signatures(w, b, domain, backend="cpu", **kw).to_dicts() == ref


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_near_ties_keep_their_exact_decision(backend, clean_env):
    if backend == "cpu" and not HAS_CPU:
        pytest.skip("compiled extension not built")
    up, down, tie, decimal = signatures(*NEAR, backend=backend)
    assert up.truth_table == "8" and down.truth_table == "0"
    assert 0 < up.margin < 1e-6 and up.fragile and down.fragile
    assert tie.truth_table == "4" and tie.margin == 0.0  # only the +1 input alone fires
    # float64 rounds 0.1 + 0.2 to exactly the stored bias; the exact sum is 2^-54 less
    from fractions import Fraction

    exact = Fraction(0.1) + Fraction(0.2) - Fraction(0.30000000000000004)
    assert exact < 0 and decimal.truth_table == "0" and 0 < decimal.margin < 1e-15
    tiny = signatures([[1.0, -1.0, 1e-300]], [0.0], backend=backend)[0]
    assert tiny.truth_table == "d4"


def test_slow_path_runs_only_for_uncertain_rows(clean_env):
    calls = []
    real = sigmod.exhaustive_exact

    def spy(*args, **kwargs):
        calls.append(args[0].tolist())
        return real(*args, **kwargs)

    clean_env.setattr(sigmod, "exhaustive_exact", spy)
    w = [[1.0, -1.0, 1e-300], [1.0, -1.0, 0.5], [1.0, 2.0**-80, 3.0]]
    out = signatures(w, [0.0, 0.0, 0.25])
    assert calls == [[-1.0, 1e-300, 1.0]]  # only the row rounded to int64 with a near tie
    assert out.truth_table[0] == "d4"


@pytest.mark.gpu
@pytest.mark.parametrize(
    "domain, n", [("binary", 8), ("binary", 20), ("binary", 24), ("signed", 9)]
)
def test_triton_on_a_gpu_agrees_with_the_reference_bit_for_bit(domain, n):
    rng = np.random.default_rng(n)
    w = rng.normal(size=(33, n)).astype(np.float32)
    w[:5] = np.round(w[:5] * 4) / 4  # exact ties: sums of quarters land on 0
    b = rng.normal(size=33).astype(np.float32)
    b[:5] = 0.0
    limit = {"exhaustive_limit": n}
    gpu = signatures(w, b, domain=domain, backend="triton", **limit).to_dicts()
    ref = signatures(w, b, domain=domain, backend="ref", **limit).to_dicts()
    # the GPU enumerates up to its limit where the CPU counts binary neurons above the
    # table limit by meet-in-the-middle: the method differs, nothing else may
    counted = domain == "binary" and n > 10
    assert {g.pop("method") for g in gpu} == {"exhaustive"}
    assert {r.pop("method") for r in ref} == {"mitm" if counted else "exhaustive"}
    assert gpu == ref
