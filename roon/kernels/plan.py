"""The exact policy and the cost model that choose a method for each wide neuron.

Beyond the exhaustive limit a neuron can be counted exactly by meet-in-the-middle over
its inputs (``mitm``), by meet-in-the-middle over its relevant inputs after a relevance
analysis (``reduced``), or by dynamic programming on integer weights (``dp``); otherwise
it is sampled. Each exact method has an *estimated* cost, in seconds of the compiled
kernels on the reference machine (a 2-core AMD EPYC VM with AVX-512, one core; see
benchmarks/RESULTS.md). Estimates are a fixed function of the neuron's shape — never a
clock reading — so a model gets the same rows on every machine and every backend.

The exact policy (``exact=``):

* ``always``: every neuron an exact method reaches is exact, whatever it costs (ACAS Xu:
  every neuron, ~0.45 s each at fan-in 50).
* ``auto`` (default): the cheapest exact method of each neuron runs if its estimate fits
  in what is left of ``exact_budget`` seconds; neurons are taken cheapest first, so a
  budget buys as many exact neurons as it can. The rest are sampled and counted as
  *fallbacks*. The budget is per call of :func:`roon.signatures`; ingest gives each model
  one budget for all its layers (:data:`DEFAULT_EXACT_BUDGET`).
* ``never``: every neuron beyond the exhaustive limit is sampled.

Neurons within the exhaustive limit are always exact and never charged.
"""

from __future__ import annotations

import math

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = [
    "EXACT_POLICIES",
    "DEFAULT_EXACT_BUDGET",
    "RELEVANCE_GAP",
    "check_policy",
    "mitm_seconds",
    "prefix_test_seconds",
    "dp_seconds",
    "signed_seconds",
]

EXACT_POLICIES = ("auto", "always", "never")

# Estimated seconds of beyond-exhaustive exact work per model by default: below the cost
# of one fan-in-50 neuron (0.45 s), so a default ingest of ACAS Xu (255 such neurons per
# network) stays a few seconds for all 45 networks and samples them, while it still buys
# every cheap exact neuron (a fan-in-32 neuron costs 0.75 ms: 300 of them fit).
DEFAULT_EXACT_BUDGET = 0.25

# Counting all m nonzero-weight inputs beats a relevance analysis when the greedy
# certificate already proves all but this many relevant: the prefix tests from there
# (NumPy, ~10x the compiled count per test) would cost more than the 2^(gap/2) ≈ 8x
# larger count.
RELEVANCE_GAP = 6

# Seconds per neuron of the compiled meet-in-the-middle count (512 MiB plan, one core),
# measured at these fan-ins on the reference machine; interpolated log-linearly between.
_MITM_SECONDS = {
    0: 2e-7, 8: 5e-7, 11: 7.5e-7, 16: 3.4e-6, 20: 1.4e-5, 24: 6.5e-5,
    32: 7.5e-4, 40: 1.6e-2, 50: 0.45, 54: 4.0,
}  # fmt: skip
# Seconds of one exact prefix test of the relevance analysis (NumPy window count over
# two sorted halves of k inputs), measured likewise.
_TEST_SECONDS = {0: 2e-5, 10: 5e-5, 16: 2e-4, 24: 1.5e-3, 32: 2e-2, 40: 0.3, 48: 5.0}
# Big-integer additions of the DP (numpy object arrays): ~2 s per 2^27, plus a fixed cost.
_DP_SECONDS_PER_ADD = 1.5e-8
_DP_FIXED_SECONDS = 2e-4
# Exact signed tabulation: ~20 ms for the 3^12 table.
_SIGNED_SECONDS_PER_ENTRY = 4e-8


def _interpolate(table: dict[int, float], k: int) -> float:
    keys = sorted(table)
    if k <= keys[0]:
        return table[keys[0]]
    for lo, hi in zip(keys[:-1], keys[1:], strict=True):
        if k <= hi:
            frac = (k - lo) / (hi - lo)
            return math.exp(math.log(table[lo]) * (1 - frac) + math.log(table[hi]) * frac)
    top = keys[-1]  # beyond the table: every input doubles half of the work
    return table[top] * 2.0 ** ((k - top) / 2)


def mitm_seconds(k: int) -> float:
    """Estimated seconds to count ``k`` inputs by meet-in-the-middle."""
    return _interpolate(_MITM_SECONDS, k)


def prefix_test_seconds(k: int) -> float:
    """Estimated seconds of one exact relevance prefix test over ``k`` inputs."""
    return _interpolate(_TEST_SECONDS, k)


def dp_seconds(total: int, nonzero: int) -> float:
    """Estimated seconds of the DP over ``nonzero`` integer weights summing to ``total``."""
    return _DP_FIXED_SECONDS + _DP_SECONDS_PER_ADD * total * nonzero


def signed_seconds(k: int) -> float:
    """Estimated seconds to tabulate ``3^k`` signed inputs exactly."""
    return _SIGNED_SECONDS_PER_ENTRY * 3.0**k


def check_policy(exact: str, exact_budget: float | None) -> float:
    """Validate an exact policy; returns the budget in seconds (inf unless ``auto``).

    Raises:
        InvalidArgumentError: an unknown policy or a budget that is not a number >= 0.
    """
    if exact not in EXACT_POLICIES:
        raise InvalidArgumentError(
            f"unknown exact policy {exact!r}; choose one of {', '.join(EXACT_POLICIES)}"
        )
    if exact_budget is None:
        budget = DEFAULT_EXACT_BUDGET
    elif isinstance(exact_budget, bool) or not isinstance(exact_budget, (int, float, np.number)):
        raise InvalidArgumentError(
            f"exact_budget must be a number of seconds; got {exact_budget!r}"
        )
    else:
        budget = float(exact_budget)
    if not budget >= 0:  # also NaN
        raise InvalidArgumentError(f"exact_budget must be >= 0 seconds; got {exact_budget!r}")
    if exact == "always":
        return math.inf
    if exact == "never":
        return 0.0
    return budget
