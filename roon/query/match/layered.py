"""The layered subgraph-isomorphism matcher: every embedding of a pattern at one offset.

An embedding of pattern layers ``P0..Pk-1`` into target layers ``o..o+k-1`` is

* an injective map ``ψ`` of the pattern's inputs into the inputs of target layer ``o``;
* per pattern layer ``j`` an injective map ``φj`` of its neurons into target layer ``o+j``;

such that every pattern edge (a nonzero weight) maps to a target edge of the same sign,
each image lies in its pattern neuron's candidate set (from the hash step), and a
per-neuron predicate (the exact functional check) accepts it. Search: layer by layer from
the input side, neurons in order of fewest candidates, forward checking of edge signs as
each input or neuron is mapped, the predicate as soon as a neuron's inputs are all mapped.
It is exact and complete over the candidate sets; a node budget bounds pathological
searches, and :attr:`Search.complete` says whether the budget was hit.

Candidate sets may also say which *input sets* a target neuron may be restricted to (the
restricted-signature index records which subsets matched): then the images of the
neuron's inputs must form one of those sets.

With ``check=None`` the search is purely structural, which the tests compare with
networkx's ``DiGraphMatcher.subgraph_monomorphisms_iter`` on random small cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

__all__ = ["Embedding", "Search", "NeuronCandidates", "embeddings", "DEFAULT_NODE_BUDGET"]

# Tentative assignments per (model, offset) before the search gives up and says so: a
# planted library circuit in a 784-wide layer needs a few thousand.
DEFAULT_NODE_BUDGET = 200_000

# target neuron -> the input sets it may be restricted to (None: any), per pattern neuron;
# None for the whole pattern neuron: every target neuron of the layer, any inputs.
NeuronCandidates = Mapping[int, frozenset[frozenset[int]] | None] | None
Check = Callable[[int, int, int, tuple[tuple[int, ...], ...]], bool]


@dataclass(frozen=True)
class Embedding:
    """One embedding: ``maps[j][p]`` is the image of pattern neuron ``p`` of layer ``j``,
    ``input_map[i]`` the image of pattern input ``i``."""

    maps: tuple[tuple[int, ...], ...]
    input_map: tuple[int, ...]


@dataclass
class Search:
    """Counters of one search: nodes tried, and whether it ran to the end.

    ``exact`` is the caller's: whether the per-neuron check it passed was exact.
    """

    budget: int = DEFAULT_NODE_BUDGET
    nodes: int = 0
    complete: bool = True
    checks: int = 0
    found: int = 0
    notes: list[str] = field(default_factory=list)
    exact: bool = True

    def tick(self) -> bool:
        self.nodes += 1
        if self.nodes > self.budget:
            self.complete = False
            return False
        return True


class _Budget(Exception):
    """Raised inside the search when the node budget is spent."""


def embeddings(
    pattern: Sequence[np.ndarray],
    target: Sequence[np.ndarray],
    candidates: Sequence[Sequence[NeuronCandidates]],
    *,
    check: Check | None = None,
    search: Search | None = None,
) -> Iterator[Embedding]:
    """Yield every embedding of ``pattern`` into ``target`` (see the module docstring).

    Args:
        pattern: weight matrices ``[n_j, n_{j-1}]`` of the pattern layers (only their signs
            and zeros matter here).
        target: weight matrices of the target layers ``o..o+k-1``.
        candidates: per pattern layer, per pattern neuron, its candidates.
        check: ``check(j, p, t, prefix)``: whether target neuron ``t`` computes pattern
            neuron ``p`` of layer ``j``, given ``prefix = (ψ, φ0, ..., φ_{j-1})`` (the last
            entry maps ``p``'s inputs, in pattern order).
        search: counters (and the node budget) to fill in.
    """
    s = search or Search()
    state = _State(pattern, target, candidates, check, s)
    try:
        yield from state.layer0(0)
    except _Budget:
        s.complete = False
        s.notes.append(f"node budget of {s.budget:,} spent; the search stopped there")


class _State:
    def __init__(
        self,
        pattern: Sequence[np.ndarray],
        target: Sequence[np.ndarray],
        candidates: Sequence[Sequence[NeuronCandidates]],
        check: Check | None,
        search: Search,
    ) -> None:
        self.sp = [np.sign(np.asarray(w, np.float64)).astype(np.int8) for w in pattern]
        self.st = [np.sign(np.asarray(w, np.float64)).astype(np.int8) for w in target]
        self.cands = candidates
        self.check = check
        self.search = search
        self.m = self.sp[0].shape[1]
        self.psi: list[int | None] = [None] * self.m
        self.used_inputs: set[int] = set()
        self.phi: list[list[int | None]] = [[None] * w.shape[0] for w in self.sp]
        self.used: list[set[int]] = [set() for _ in self.sp]
        self.orders = [self._order(j) for j in range(len(self.sp))]
        self.checked0: set[int] = set()

    def _order(self, j: int) -> list[int]:
        width = self.st[j].shape[0]

        def size(p: int) -> int:
            c = self.cands[j][p]
            return width if c is None else len(c)

        return sorted(range(self.sp[j].shape[0]), key=lambda p: (size(p), p))

    def _targets(self, j: int, p: int) -> list[int]:
        c = self.cands[j][p]
        return list(range(self.st[j].shape[0])) if c is None else sorted(c)

    def _allowed(self, j: int, p: int, t: int) -> frozenset[frozenset[int]] | None:
        c = self.cands[j][p]
        return None if c is None else c[t]

    def _tick(self) -> None:
        if not self.search.tick():
            raise _Budget

    def _accepts(self, j: int, p: int, t: int, prefix: tuple[tuple[int, ...], ...]) -> bool:
        if self.check is None:
            return True
        self.search.checks += 1
        return self.check(j, p, t, prefix)

    def _prefix(self, j: int) -> tuple[tuple[int, ...], ...]:
        """``(ψ, φ0, ..., φ_{j-1})``: what pattern neurons of layer ``j`` read from."""
        maps = [tuple(int(x) for x in self.psi)]  # type: ignore[arg-type]
        maps += [tuple(int(t) for t in self.phi[i]) for i in range(j)]  # type: ignore[arg-type]
        return tuple(maps)

    # --- layer 0: neurons and the input map together -----------------------------

    def _input_ok(self, i: int, x: int) -> bool:
        """Mapping pattern input i to target input x keeps every mapped neuron's edges."""
        col = self.sp[0][:, i]
        for p in np.flatnonzero(col).tolist():
            t = self.phi[0][p]
            if t is not None and self.st[0][t, x] != col[p]:
                return False
        return True

    def _neuron_ok(self, p: int, t: int) -> bool:
        row = self.sp[0][p]
        for i in np.flatnonzero(row).tolist():
            x = self.psi[i]
            if x is not None and self.st[0][t, x] != row[i]:
                return False
        return True

    def _complete_psi(self) -> bool:
        return all(x is not None for x in self.psi)

    def _check_layer0(self) -> bool:
        """Run the predicate on mapped layer-0 neurons not yet checked (ψ is complete)."""
        images = tuple(int(x) for x in self.psi)  # type: ignore[arg-type]
        for p, t in enumerate(self.phi[0]):
            if t is None or p in self.checked0:
                continue
            allowed = self._allowed(0, p, t)
            if allowed is not None and frozenset(images) not in allowed:
                return False
            if not self._accepts(0, p, t, (images,)):
                return False
            self.checked0.add(p)
        return True

    def _assign_inputs(self, inputs: list[int], pool: Callable[[int], list[int]]) -> Iterator[None]:
        """Map ``inputs`` one by one (injectively, edges kept) to targets from ``pool``."""
        if not inputs:
            yield
            return
        i, rest = inputs[0], inputs[1:]
        for x in pool(i):
            if x in self.used_inputs or not self._input_ok(i, x):
                continue
            self._tick()
            self.psi[i] = x
            self.used_inputs.add(x)
            yield from self._assign_inputs(rest, pool)
            self.used_inputs.discard(x)
            self.psi[i] = None

    def layer0(self, idx: int) -> Iterator[Embedding]:
        order = self.orders[0]
        if idx == len(order):
            # inputs no mapped neuron constrains: any unused target input
            free = [i for i in range(self.m) if self.psi[i] is None]
            every = list(range(self.st[0].shape[1]))
            for _ in self._assign_inputs(free, lambda i: every):
                saved = set(self.checked0)
                if self._check_layer0():
                    yield from self.layer(1, 0)
                self.checked0 = saved
            return
        p = order[idx]
        for t in self._targets(0, p):
            if t in self.used[0] or not self._neuron_ok(p, t):
                continue
            self._tick()
            self.phi[0][p] = t
            self.used[0].add(t)
            yield from self._after_neuron0(idx, p, t)
            self.used[0].discard(t)
            self.phi[0][p] = None

    def _after_neuron0(self, idx: int, p: int, t: int) -> Iterator[Embedding]:
        """Map the inputs neuron ``p`` (now at ``t``) constrains, then go on."""
        allowed = self._allowed(0, p, t)
        open_inputs = [i for i in range(self.m) if self.psi[i] is None]
        saved = set(self.checked0)
        if allowed is not None and open_inputs:
            # ψ's image must be one of the allowed input sets: map the rest onto each
            mapped = {x for x in self.psi if x is not None}
            for subset in sorted(allowed, key=sorted):
                rest = sorted(subset - mapped)
                if not mapped <= subset or len(rest) != len(open_inputs):
                    continue
                for targets in permutations(rest):
                    pool = dict(zip(open_inputs, targets, strict=True))
                    for _ in self._assign_inputs(open_inputs, lambda i, pool=pool: [pool[i]]):
                        if self._check_layer0():
                            yield from self.layer0(idx + 1)
                        self.checked0 = set(saved)
            return
        # no input sets given: map p's own (nonzero-weight) inputs by edge sign
        row = self.sp[0][p]
        mine = [i for i in open_inputs if row[i] != 0]

        def by_sign(i: int) -> list[int]:
            return np.flatnonzero(self.st[0][t] == row[i]).tolist()

        for _ in self._assign_inputs(mine, by_sign):
            if not self._complete_psi() or self._check_layer0():
                yield from self.layer0(idx + 1)
            self.checked0 = set(saved)

    # --- layers 1..k-1: inputs are the previous layer's images ---------------------

    def layer(self, j: int, idx: int) -> Iterator[Embedding]:
        if j == len(self.sp):
            self.search.found += 1
            yield Embedding(
                tuple(tuple(int(t) for t in layer) for layer in self.phi),  # type: ignore[arg-type]
                tuple(int(x) for x in self.psi),  # type: ignore[arg-type]
            )
            return
        order = self.orders[j]
        if idx == len(order):
            yield from self.layer(j + 1, 0)
            return
        p = order[idx]
        images = tuple(int(t) for t in self.phi[j - 1])  # type: ignore[arg-type]
        row = self.sp[j][p]
        nz = np.flatnonzero(row)
        cols = np.array(images, dtype=np.int64)[nz]
        for t in self._targets(j, p):
            if t in self.used[j]:
                continue
            if len(nz) and not np.array_equal(self.st[j][t, cols], row[nz]):
                continue
            allowed = self._allowed(j, p, t)
            if allowed is not None and frozenset(images) not in allowed:
                continue
            self._tick()
            if not self._accepts(j, p, t, self._prefix(j)):
                continue
            self.phi[j][p] = t
            self.used[j].add(t)
            yield from self.layer(j, idx + 1)
            self.used[j].discard(t)
            self.phi[j][p] = None
