"""Exact excited-state signatures of neurons (see DESIGN: signatures).

Public: :func:`signatures` (one batch of neurons → :class:`SignatureBatch`) and
:func:`is_equivalent_to`. The op's faces live beside them: ``exhaustive_ref`` (NumPy,
the oracle), ``exhaustive_cpu`` (compiled C), ``exhaustive_triton`` (GPU), chosen by
:mod:`roon.kernels.dispatch`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from roon.kernels.signatures import SignatureBatch, signatures

__all__ = ["SignatureBatch", "signatures", "is_equivalent_to"]

# Written beside this package by the beyond-exhaustive work; imported on first use so a
# missing or broken module never breaks ``import roon.kernels``.
_LAZY = {"is_equivalent_to": "roon.kernels.equivalence"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'roon.kernels' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
