"""The Triton face against the NumPy reference, on tiny shapes under the CPU interpreter.

Triton reads ``TRITON_INTERPRET`` when it decorates a kernel, so it is set before the
kernel module is imported (and the module reloaded if something imported it earlier);
the variable is restored afterwards so other tests see the environment they expect.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.errors import KernelUnavailableError
from roon.kernels import signatures
from roon.kernels.exact import to_int64
from roon.kernels.exhaustive import exhaustive_ref

pytest.importorskip("torch")
pytest.importorskip("triton")

_saved = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"
try:
    import roon.kernels.exhaustive_triton as kt

    if not kt.is_interpreted():
        kt = importlib.reload(kt)
finally:
    if _saved is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _saved

FIELDS = ("fire", "chow", "min_abs", "uncertain", "table")


def check(w, b, tol, domain, want_table=True, **launch):
    ref = exhaustive_ref(w, b, tol, domain, want_table=want_table)
    got = kt.exhaustive_triton(w, b, tol, domain, want_table=want_table, **launch)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(ref, field), getattr(got, field), err_msg=field)


@pytest.mark.parametrize(
    "domain, n, rows, launch",
    [
        ("binary", 0, 3, {}),
        ("binary", 4, 5, {"block_n": 2, "block_a": 1, "split": 1}),
        ("binary", 9, 3, {"block_n": 2, "block_a": 2, "split": 3}),  # 8 tiles over 3 splits
        ("signed", 0, 2, {}),
        ("signed", 3, 3, {"block_n": 2, "block_a": 1, "split": 1}),
        ("signed", 5, 2, {"block_n": 2, "block_a": 2, "split": 2}),
    ],
)
def test_triton_equals_ref_float64_path(domain, n, rows, launch):
    rng = np.random.default_rng(n + rows)
    w = np.sort(rng.normal(size=(rows, n)).astype(np.float32), axis=1)
    rows_ = to_int64(w, rng.normal(size=rows).astype(np.float32))
    # float32 rows are exact and small: the kernel's float64 path (float64 normals
    # would be rounded, tol > 0, and take the int64 path instead)
    assert np.all(rows_.tol == 0)
    assert np.all(np.abs(rows_.weights).sum(axis=1) + np.abs(rows_.bias) < 2**53)
    check(rows_.weights, rows_.bias, rows_.tol, domain, **launch)


def test_triton_int64_path_with_tolerance_and_huge_sums():
    # sums near 2^61 rule out float64; tol > 0 exercises the uncertain count
    rng = np.random.default_rng(2)
    w = np.sort(rng.integers(-(2**57), 2**57, size=(3, 6)), axis=1)
    w[:, 2] = 0
    b = np.array([0, 2**56, -1])
    for domain in ("binary", "signed"):
        check(w, b, np.array([0, 3, 1]), domain, block_n=2, block_a=1, split=2)


@given(
    st.sampled_from(["binary", "signed"]),
    st.integers(0, 7),
    st.integers(1, 4),
    st.booleans(),
    st.integers(0, 2**31),
)
@settings(max_examples=12, deadline=None)
def test_triton_equals_ref_random(domain, n, rows, want_table, seed):
    n = n if domain == "binary" else min(n, 4)
    rng = np.random.default_rng(seed)
    w = np.sort(rng.integers(-4, 5, size=(rows, n)), axis=1)  # many exact ties
    b = rng.integers(-4, 5, size=rows)
    tol = rng.integers(0, 2, size=rows)
    check(w, b, tol, domain, want_table, block_n=2, block_a=1, split=int(rng.integers(1, 4)))


def test_public_api_on_the_triton_backend(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    w = [[0.7, 0.7], [1.0, 1.0], [1.0, -1.0], [0.25, 0.5]]
    b = [-1.0, 0.0, 0.0, -0.5]
    for domain in ("binary", "signed"):
        want = signatures(w, b, domain, backend="ref")
        got = signatures(w, b, domain, backend="triton")
        assert got.to_dicts() == want.to_dicts()
    # the exact slow path behind the Triton face: 1e-300 next to 1.0
    near = signatures([[1.0, -1.0, 1e-300]], [0.0], backend="triton")[0]
    assert near.truth_table == "d4"


def test_fan_in_beyond_the_kernel_is_refused():
    too_big = kt.MAX_FAN_IN["signed"] + 1
    with pytest.raises(KernelUnavailableError, match="fan-in"):
        kt.exhaustive_triton(np.zeros((1, too_big), np.int64), [0], [0], "signed")


_COMPILE_SCRIPT = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import roon.kernels.exhaustive_triton as kt

assert not kt.is_interpreted()
for fn, extra in ((kt._exhaustive_binary_kernel, {"LOG_A": 5}), (kt._exhaustive_signed_kernel, {})):
    sig = {name: "*i64" for name in ("W", "B", "TOL", "FIRE", "CHOW", "MINABS", "UNC", "TABLE")}
    sig.update({name: "i32" for name in ("N", "n", "n_inputs", "n_tiles", "table_cols", "SPLIT")})
    consts = {"NPOW": 32, "BLOCK_N": 4, "A": 32, "HAS_TOL": True, "WRITE_TABLE": True, **extra}
    sig.update({name: "constexpr" for name in consts})
    kernel = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                            target=GPUTarget("cuda", 90, 32), options={"num_warps": 8})
    assert len(kernel.asm["cubin"]) > 1000
print("compiled")
"""


def test_kernels_compile_for_an_h100_without_a_gpu():
    """Triton compiles to an sm_90 cubin with its bundled ptxas: no device needed."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 and "ptxas" in done.stderr and "not found" in done.stderr:
        pytest.skip("this Triton build has no bundled ptxas")
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]
