"""Choosing the backend of the exhaustive op: ``ROON_BACKEND=auto|ref|cpu|triton``.

* ``auto`` (the default): ``triton`` when a CUDA GPU with a working Triton driver is
  present, else ``cpu`` when the compiled extension imports, else ``ref`` — quietly.
  ``auto`` never picks the Triton *interpreter*; that is for tests.
* An explicit choice that cannot run raises :class:`~roon.errors.KernelUnavailableError`
  naming what is missing. ``triton`` runs on the CPU interpreter when
  ``TRITON_INTERPRET=1`` was set before the kernel module was imported.

The ``backend=`` argument wins over the environment unless it is ``auto``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from functools import cache
from importlib.util import find_spec

import numpy as np

from roon.errors import InvalidArgumentError, KernelUnavailableError
from roon.kernels.exhaustive import ExhaustiveCounts, exhaustive_ref
from roon.kernels.mitm import MitmRows, mitm_ref

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "resolve_backend",
    "backend_function",
    "run_exhaustive",
    "run_mitm",
    "triton_missing",
    "gpu_missing",
]

BACKENDS = ("auto", "ref", "cpu", "triton")
ENV_VAR = "ROON_BACKEND"

ExhaustiveFn = Callable[..., ExhaustiveCounts]


def _requested(backend: str | None) -> str:
    if backend is not None and not isinstance(backend, str):
        raise InvalidArgumentError(
            f"backend is a {type(backend).__name__}; choose one of {', '.join(BACKENDS)}"
        )
    name = backend if backend not in (None, "", "auto") else os.environ.get(ENV_VAR, "auto")
    name = str(name).strip().lower() or "auto"
    if name not in BACKENDS:
        source = "backend=" if backend not in (None, "", "auto") else ENV_VAR
        raise InvalidArgumentError(
            f"unknown backend {name!r} (from {source}); choose one of {', '.join(BACKENDS)}"
        )
    return name


@cache
def gpu_missing() -> str | None:
    """None when Triton can launch on a CUDA GPU here; else why not (checked once)."""
    # device nodes first, so a CPU-only machine never pays for importing torch and triton
    if not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg")):
        return "no CUDA GPU device found"
    if find_spec("triton") is None or find_spec("torch") is None:
        return "the triton and torch packages are not installed"
    import torch

    if not torch.cuda.is_available():
        return "torch sees no usable CUDA GPU"
    import triton

    try:
        triton.runtime.driver.active.get_current_target()
    except Exception as exc:  # Triton raises RuntimeError, or others from driver probing
        return f"Triton has no active GPU driver ({exc})"
    return None


def triton_missing() -> str | None:
    """None when the ``triton`` backend can run (GPU, or interpreter); else why not."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        if find_spec("triton") is None or find_spec("torch") is None:
            return "TRITON_INTERPRET=1 is set but the triton and torch packages are not installed"
        return None
    reason = gpu_missing()
    if reason is None:
        return None
    return f"{reason}; set TRITON_INTERPRET=1 to run Triton on the CPU interpreter (tests)"


def _cpu_missing() -> str | None:
    from roon.kernels.cpu import cpu_missing

    return cpu_missing()


def resolve_backend(backend: str | None = "auto") -> str:
    """The backend that will run: ``ref``, ``cpu`` or ``triton``.

    Args:
        backend: ``auto``, ``ref``, ``cpu``, ``triton``, or None (= ``auto``); ``auto``
            defers to ``ROON_BACKEND``.

    Raises:
        InvalidArgumentError: an unknown name.
        KernelUnavailableError: an explicit backend that cannot run here.
    """
    name = _requested(backend)
    if name == "auto":
        if gpu_missing() is None:
            return "triton"
        return "cpu" if _cpu_missing() is None else "ref"
    if name == "cpu" and (reason := _cpu_missing()) is not None:
        raise KernelUnavailableError(f"backend 'cpu' is unavailable: {reason}")
    if name == "triton" and (reason := triton_missing()) is not None:
        raise KernelUnavailableError(f"backend 'triton' is unavailable: {reason}")
    return name


def backend_function(name: str) -> ExhaustiveFn:
    """The exhaustive face of a resolved backend (imports it on first use)."""
    if name == "ref":
        return exhaustive_ref
    if name == "cpu":
        from roon.kernels.cpu import exhaustive_cpu

        return exhaustive_cpu
    if name == "triton":
        from roon.kernels import exhaustive_triton as kt

        if os.environ.get("TRITON_INTERPRET", "0") == "1" and not kt.is_interpreted():
            raise KernelUnavailableError(
                "backend 'triton': TRITON_INTERPRET=1 was set after the Triton kernels were "
                "compiled for a GPU; set it before roon.kernels.exhaustive_triton is imported"
            )
        return kt.exhaustive_triton
    raise InvalidArgumentError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def run_exhaustive(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    tol: np.ndarray,
    domain: str,
    want_table: bool,
) -> ExhaustiveCounts:
    """Run the exhaustive op on a resolved backend."""
    return backend_function(name)(weights, bias, tol, domain, want_table=want_table)


def run_mitm(name: str, weights: np.ndarray, bias: np.ndarray, tol: np.ndarray) -> MitmRows:
    """Run the meet-in-the-middle op on a resolved backend.

    ``ref`` is the NumPy face; ``cpu`` the compiled one. There is no GPU face: ``triton``
    counts with the compiled face when it is built, else with NumPy.
    """
    if name == "ref" or (name == "triton" and _cpu_missing() is not None):
        return mitm_ref(weights, bias, tol)
    from roon.kernels.cpu import mitm_cpu

    return mitm_cpu(weights, bias, tol)
