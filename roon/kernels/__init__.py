"""Exact excited-state signatures of neurons (README, "Signatures").

Public: :func:`signatures` (one batch of neurons → :class:`SignatureBatch`) and
:func:`is_equivalent_to`. The op's faces live beside them: ``exhaustive_ref`` (NumPy,
the oracle), ``exhaustive_cpu`` (compiled C), ``exhaustive_triton`` (GPU), chosen by
:mod:`roon.kernels.dispatch`.
"""

from __future__ import annotations

from roon.kernels.equivalence import is_equivalent_to
from roon.kernels.signatures import SignatureBatch, signatures

__all__ = ["SignatureBatch", "signatures", "is_equivalent_to"]
