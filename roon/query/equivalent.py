"""``roon.equivalent``: do two models compute the same function on an input space?

Models are files or catalogued models (:func:`roon.store.load_model_ref`); the comparison
is :func:`roon.kernels.model_equivalence.compare_on_space`: exact for Boolean outputs
(equal output firing patterns), within a documented tolerance for real outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from roon.errors import InvalidArgumentError
from roon.kernels.model_equivalence import REAL_TOLERANCE
from roon.kernels.spaces import MAX_POINTS, InputSpace
from roon.mlp import MLP
from roon.progress import ProgressCallback

__all__ = ["Equivalence", "equivalent", "comparison_space"]


@dataclass(frozen=True)
class Equivalence:
    """The verdict of :func:`equivalent`.

    Attributes:
        equivalent: the models agree on every point (boolean: equal output firing
            patterns; real: every output within the tolerance).
        space: the space label (``binary``, ``signed``, ``box``, ``probe:<digest>``).
        description: the space in words, e.g. ``binary {0,1}^2 (4 points)``.
        points: number of points compared.
        differing: points where the models disagree.
        max_difference: the largest ``|a - b|`` of the output values over every point.
        counterexample: the first point (in the space's order) where they disagree, or None.
        outputs: ``boolean`` or ``real``.
        exact: the verdict is certified (boolean outputs, every decision exact).
        complete: the space is a whole domain (a cube, the box vertices); False for a probe
            set or a box grid, where the verdict holds for those points only.
        models: the two model names.
        notes: what to know about how the model files were read (an assumed activation).
    """

    equivalent: bool
    space: str
    description: str
    points: int
    differing: int
    max_difference: float
    counterexample: list[float] | None
    outputs: str
    exact: bool
    complete: bool
    models: tuple[str, str]
    notes: tuple[str, ...] = ()

    def to_dict(self, *, counterexample: bool = True) -> dict[str, Any]:
        """What ``roon equivalent --json`` prints (``counterexample`` null unless asked)."""
        return {
            "equivalent": self.equivalent,
            "space": self.space,
            "points": self.points,
            "max_difference": self.max_difference,
            "counterexample": self.counterexample if counterexample else None,
            "outputs": self.outputs,
            "exact": self.exact,
            "complete": self.complete,
            "differing": self.differing,
            "notes": list(self.notes),
        }


def comparison_space(
    mlp: MLP,
    space: Any = "auto",
    *,
    input_bounds: Any = None,
    max_points: int = MAX_POINTS,
) -> InputSpace:
    """The space two models are compared on: ``auto`` is the default box grid when the
    (first) model states its input box or ``input_bounds`` is given, else the binary cube.

    Raises:
        InvalidArgumentError: no space fits (the cube is too large), or a bad choice.
    """
    from roon.ingest.spaces import resolve_space, states_bounds

    if isinstance(space, str) and space == "auto":
        space = "box" if input_bounds is not None or states_bounds(mlp) else "binary"
    found = resolve_space(mlp, space, input_bounds=input_bounds, max_points=max_points)
    if found is None:
        raise InvalidArgumentError("comparing models needs an input space; got none")
    return found


def equivalent(
    a: MLP | str | os.PathLike[str],
    b: MLP | str | os.PathLike[str],
    *,
    space: Any = "auto",
    catalogue: str | os.PathLike[str] | None = None,
    input_bounds: Any = None,
    outputs: str = "boolean",
    tolerance: float = REAL_TOLERANCE,
    max_points: int = MAX_POINTS,
    activation: str | None = None,
    progress: ProgressCallback | None = None,
) -> Equivalence:
    """Whether models ``a`` and ``b`` compute the same function on an input space.

    Args:
        a: an :class:`~roon.mlp.MLP`, a model file, or a catalogue reference.
        b: likewise.
        space: ``auto``, ``binary``, ``signed``, ``box``, ``box:K``, a probe ``.npy`` file
            or an :class:`~roon.kernels.spaces.InputSpace` (built for ``a``'s inputs).
        catalogue: where references are looked up.
        input_bounds: the input box for ``box`` (default: ``a``'s metadata or .nnet header).
        outputs: ``boolean`` (output neurons fire on the same points; exact) or ``real``
            (values within ``tolerance``).
        tolerance: outputs agree when ``|a - b| <= tolerance·(1 + max(|a|, |b|))``.
        max_points: the most points allowed.
        activation: hidden activation for files that store none.
        progress: ``points`` events.

    Raises:
        InvalidArgumentError: models of different input or output widths, or a bad space.
        CatalogueError: a reference that is neither a file nor a catalogued model.

    Example:
        >>> roon.equivalent("xor_seed0.pt", "xor_seed1.pt").equivalent  # doctest: +SKIP
        True
    """
    from roon.ingest.loaders import load_notes
    from roon.kernels.model_equivalence import compare_on_space
    from roon.store import load_model_ref

    ma = a if isinstance(a, MLP) else load_model_ref(a, catalogue, activation=activation)
    mb = b if isinstance(b, MLP) else load_model_ref(b, catalogue, activation=activation)
    found = comparison_space(ma, space, input_bounds=input_bounds, max_points=max_points)
    result = compare_on_space(
        ma, mb, found, outputs=outputs, tolerance=tolerance, progress=progress
    )
    point = result.counterexample
    return Equivalence(
        equivalent=result.equivalent,
        space=found.label,
        description=found.describe(),
        points=result.points,
        differing=result.differing,
        max_difference=result.max_difference,
        counterexample=None if point is None else [float(v) for v in point],
        outputs=outputs,
        exact=result.exact,
        complete=found.complete,
        models=(ma.name or ma.id[:12], mb.name or mb.id[:12]),
        notes=tuple(
            f"{ref}: {note}"
            for ref, m in ((a, ma), (b, mb))
            if not isinstance(ref, MLP)
            for note in load_notes(m)
        )
        + (() if found.complete else (_sample_note(found),)),
    )


def _sample_note(space: InputSpace) -> str:
    """Why a verdict on a probe set or a box grid says nothing about other inputs."""
    what = "probe set" if space.kind == "probe" else "grid"
    return (
        f"the verdict holds for the {space.size:,} points of the {what} only, "
        "not for every input of the domain"
    )
