"""Per-neuron signature results and the canonical signature hash.

Every method (exhaustive, mitm, dp, reduced, sampled) returns a :class:`NeuronCounts`;
:func:`signature_hash` turns one into the 128-bit digest stored in the catalogue. The
digest is a function of the *function* computed, never of the method that computed it:

* ``binary`` domain, exact: the digest of ``(n, sorted Chow vector)``. By Chow's theorem
  (1961) the Chow parameters determine a threshold function on ``{0,1}^n``, and sorting
  them removes the input order, so equal hashes ⇔ equal functions up to a permutation
  of the inputs, whichever exact method produced the counts.
* ``signed`` domain, exact: Chow's theorem is about the binary cube, so the digest is of
  the truth table itself, in a form that does not grow with irrelevant inputs:
  ``(n, k, k_neg, table over the k relevant inputs in ascending weight order)``, where
  ``k_neg`` relevant inputs have negative weight. Irrelevant inputs always sit between
  the negative and the positive relevant ones in the ascending weight order (relevant
  inputs have strictly larger ``|w|``), so this is the full sorted table, compressed.
* sampled (``exact = false``): the digest of the excited bits on a fixed, seeded set of
  inputs drawn over *sorted positions*. Equal functions still get equal digests; unequal
  ones may collide, which is why such rows are flagged approximate everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["METHODS", "DOMAINS", "FRAGILE_MARGIN", "NeuronCounts", "signature_hash"]

METHODS = ("exhaustive", "mitm", "dp", "reduced", "sampled")
DOMAINS = ("binary", "signed")

# A neuron is *fragile* when min_x |w·x + b| / (Σ|w| + |b|) < FRAGILE_MARGIN: the input
# closest to the threshold is within ~16 float32 ulps (2^-24 relative each) of it, so its
# decision depends on the last bits of the stored weights. Exact ties (margin 0) count.
FRAGILE_MARGIN = 1e-6


@dataclass(frozen=True)
class NeuronCounts:
    """What one method found out about one neuron.

    Attributes:
        domain: ``binary`` or ``signed``.
        fan_in: number of inputs ``n``.
        exact: False only for ``method == "sampled"``.
        method: one of :data:`METHODS`.
        fire_count: number of excited inputs (exact, any size); None when sampled.
        chow: ``(fire_count, c_0, ..., c_{n-1})`` over sorted positions (ascending weight).
            Binary: ``c_i`` = excited inputs with position ``i`` on. Signed: ``c_i`` =
            Σ over excited inputs of ``x_i`` (so it may be negative). None when sampled or
            not computed.
        fire_fraction: ``fire_count / |D|^n`` (an estimate when sampled).
        relevant: number of inputs that can change the output, or None if not determined.
        margin: ``min_x |w·x+b| / (Σ|w|+|b|)`` (0.0 for an exact tie), or None if unknown.
        truth_table: hex of the full table over sorted positions, or None (beyond the
            display limit, or not enumerated).
        key: the canonical material the hash is taken over (see :func:`signature_hash`);
            methods fill it through the ``key_*`` helpers below.
    """

    domain: str
    fan_in: int
    exact: bool
    method: str
    fire_count: int | None
    chow: tuple[int, ...] | None
    fire_fraction: float
    relevant: int | None
    margin: float | None
    truth_table: str | None
    key: str

    @property
    def fragile(self) -> bool:
        return self.margin is not None and self.margin < FRAGILE_MARGIN

    @property
    def hash(self) -> str:
        return signature_hash(self.key)


def key_binary_chow(n: int, chow: tuple[int, ...] | list[int]) -> str:
    """Hash material of an exact binary-domain signature: ``n`` and the sorted Chow vector."""
    fire, *per_input = (int(c) for c in chow)
    return f"binary|{n}|chow|{fire}|{','.join(str(c) for c in sorted(per_input))}"


def key_signed_table(n: int, k: int, k_neg: int, reduced_table_hex: str) -> str:
    """Hash material of an exact signed-domain signature (see the module docstring).

    Args:
        n: fan-in.
        k: number of relevant inputs.
        k_neg: how many of them have negative weight.
        reduced_table_hex: truth table over the ``k`` relevant inputs in ascending weight
            order, base-3 indexed (digit ``i`` for relevant position ``i``; 0, 1, 2 mean
            -1, 0, +1), as lower-case hex without leading zeros (``"0"`` if never excited).
    """
    return f"signed|{n}|table|{k}|{k_neg}|{reduced_table_hex}"


def key_sampled(domain: str, n: int, seed: int, samples: int, bits_hex: str) -> str:
    """Hash material of an approximate signature from seeded samples over sorted positions."""
    return f"{domain}|{n}|sampled|{seed}|{samples}|{bits_hex}"


def signature_hash(key: str) -> str:
    """128-bit BLAKE2b digest (32 hex characters) of canonical signature material."""
    return hashlib.blake2b(f"roon-sig-v1|{key}".encode(), digest_size=16).hexdigest()
