"""The zoo's tasks: what each small model is trained to compute, and its data.

Three kinds, each with the loss its output is trained under:

- ``boolean`` — a gate on the cube {0,1}ⁿ (``and``, ``or``, ``xor``, ``maj3``,
  ``parity3``). The training set is the whole cube; the single linear output is regressed
  onto the gate's 0/1 values with mean squared error, so a trained net computes the
  gate's *values*, as the library's gate circuits do (a logit under cross-entropy would
  be the gate plus an offset, which no circuit of the library is), and ``output > 1/2``
  ⇔ true.
- ``arithmetic`` — a piecewise-linear function of real inputs uniform in [−1, 1]
  (``abs``, ``min``, ``max``, ``sub``, ``absdiff``, ``greater``), regressed with mean
  squared error on a fixed seeded sample and judged on a regular grid.
- ``classification`` — scikit-learn's bundled 8×8 ``digits`` (no download), pixels
  scaled to [0, 1], ten logits under cross-entropy, judged on a fixed stratified test split.

Every task has a shuffled-label control, ``shuffled-<task>``: the same inputs, the
training targets permuted by a seeded random permutation (redrawn until it changes the
targets). A control learns whatever the permuted targets say, so a circuit found in it
was not put there by the task.

Cube points are ordered as in roon's signatures: point ``m`` has ``x[i] = (m >> i) & 1``.

Example:
    >>> data = TASKS["xor"].dataset(seed=0)
    >>> data.y.tolist()
    [0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = [
    "CONTROL_PREFIX",
    "Dataset",
    "TASKS",
    "Task",
    "cube",
    "resolve_tasks",
    "task_names",
]

CONTROL_PREFIX = "shuffled-"
# Arithmetic training sample: 4,096 points cover the box's corners, where a ReLU fit errs
# most; a full-batch Adam step on them costs ~0.26 ms on one core (0.18 ms for 256 points:
# the step's fixed overhead dominates).
ARITHMETIC_POINTS = 4096
# The data are a property of the task, not of the model: every seed sees the same sample.
DATA_SEED = 0
# Arithmetic models are judged on a regular grid of the input box: 201 points in 1-D,
# 41 × 41 (step 0.05) in 2-D, both including the corners and the kinks at 0 and x1 = x2.
GRID_POINTS_1D = 201
GRID_POINTS_2D = 41
# The digits split: 20 % held out, stratified by class, split seed fixed.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
# Salt that keeps the label permutation of a control independent of the model's init seed.
SHUFFLE_SALT = 0x5EED


@dataclass(frozen=True)
class Dataset:
    """Training and evaluation data of one task (for one seed, which matters for controls).

    Attributes:
        x: ``[N, n]`` float32 training inputs.
        y: ``[N]`` training targets: float32 (0/1 for gates, reals for arithmetic) or
            int64 class labels; permuted for a control.
        x_eval: ``[M, n]`` float32 evaluation inputs (the cube, the grid, the test split).
        y_eval: ``[M]`` the real task's targets on ``x_eval`` (never permuted).
        shuffle_seed: the permutation's seed for a control, else None.
    """

    x: np.ndarray
    y: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    shuffle_seed: int | None = None


@dataclass(frozen=True)
class Task:
    """One task of the zoo and the training recipe of its models.

    Attributes:
        name: ``and``, ``abs``, ``digits``, ``shuffled-xor``, ...
        kind: ``boolean``, ``arithmetic`` or ``classification``.
        description: one line, for listings.
        inputs: input width.
        outputs: output width (1, or 10 for digits).
        input_domain: roon's signature domain of the inputs: ``binary`` ({0,1}, also for
            digits' [0,1] pixels) or ``signed`` (arithmetic inputs in [−1, 1]).
        input_bounds: ``(lo, hi)`` of every input.
        loss: ``bce`` (binary cross-entropy on a logit), ``mse`` or ``cross_entropy``.
        lr: Adam learning rate.
        max_epochs: full-batch steps at most.
        loss_threshold: training stops once the loss is below this (the model "converged").
        widths: default hidden widths, one model per width and seed.
        hidden_layers: hidden ReLU layers (1 for every task: each has a one-hidden-layer
            ReLU circuit; parity of 3 needs width 3 for an exact one).
        circuit: the reference circuit of the library (``roon circuits``) the task is
            built around, which a demo should expect to find; None where the library has
            none (``absdiff``, ``parity3``, ``digits``).
        control_of: for a shuffled-label control, the task whose targets it permutes.
    """

    name: str
    kind: str
    description: str
    inputs: int
    outputs: int
    input_domain: str
    input_bounds: tuple[float, float]
    loss: str
    lr: float
    max_epochs: int
    loss_threshold: float
    widths: tuple[int, ...]
    hidden_layers: int = 1
    circuit: str | None = None
    control_of: str | None = None

    @property
    def is_control(self) -> bool:
        """True for a shuffled-label control."""
        return self.control_of is not None

    @property
    def base(self) -> str:
        """The real task's name (itself, unless this is a control)."""
        return self.control_of or self.name

    @property
    def data_spec(self) -> str:
        """What the training data are, in words (recorded in every card)."""
        if self.kind == "boolean":
            text = f"the whole cube {{0,1}}^{self.inputs} ({2**self.inputs} points)"
        elif self.kind == "arithmetic":
            text = f"{ARITHMETIC_POINTS} points uniform in [-1, 1]^{self.inputs}, seed {DATA_SEED}"
        else:
            text = (
                f"sklearn load_digits / 16, stratified {1 - DIGITS_TEST_FRACTION:.0%} train "
                f"split, seed {DIGITS_SPLIT_SEED}"
            )
        if self.is_control:
            text += "; targets permuted (seed = the model's seed)"
        return text

    def shuffled(self) -> Task:
        """The shuffled-label control of this task (same inputs, permuted targets)."""
        if self.is_control:
            return self
        return replace(
            self,
            name=CONTROL_PREFIX + self.name,
            description=f"control: {self.name} inputs, permuted targets",
            circuit=None,
            control_of=self.name,
        )

    def dataset(self, seed: int = 0) -> Dataset:
        """The task's data; for a control, ``seed`` chooses the label permutation.

        Raises:
            InvalidArgumentError: ``seed`` is negative.
        """
        if seed < 0:
            raise InvalidArgumentError(f"seed {seed} is negative; give a seed >= 0")
        data = _base_dataset(self.base)
        if not self.is_control:
            return data
        permuted = _permuted(data.y, seed)
        return replace(data, y=permuted, shuffle_seed=seed)


def cube(n: int) -> np.ndarray:
    """``[2ⁿ, n]`` float32: every point of {0,1}ⁿ, point ``m`` with ``x[i] = (m >> i) & 1``."""
    m = np.arange(2**n)[:, None]
    return ((m >> np.arange(n)) & 1).astype(np.float32)


def _grid(n: int) -> np.ndarray:
    if n == 1:
        return np.linspace(-1.0, 1.0, GRID_POINTS_1D, dtype=np.float64)[:, None].astype(np.float32)
    axis = np.linspace(-1.0, 1.0, GRID_POINTS_2D, dtype=np.float64)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1).astype(np.float32)


def _gates() -> dict[str, tuple[int, Callable[[np.ndarray], np.ndarray], str]]:
    s = lambda x: x.sum(axis=1)  # noqa: E731 - the number of inputs on
    return {
        "and": (2, lambda x: s(x) == 2, "x1 AND x2"),
        "or": (2, lambda x: s(x) >= 1, "x1 OR x2"),
        "xor": (2, lambda x: s(x) % 2 == 1, "x1 XOR x2"),
        "maj3": (3, lambda x: s(x) >= 2, "majority of 3"),
        "parity3": (3, lambda x: s(x) % 2 == 1, "parity of 3 (x1 XOR x2 XOR x3)"),
    }


def _functions() -> dict[str, tuple[int, Callable[[np.ndarray], np.ndarray], str]]:
    return {
        "abs": (1, lambda x: np.abs(x[:, 0]), "|x|"),
        "min": (2, lambda x: np.minimum(x[:, 0], x[:, 1]), "min(x1, x2)"),
        "max": (2, lambda x: np.maximum(x[:, 0], x[:, 1]), "max(x1, x2)"),
        "sub": (2, lambda x: x[:, 0] - x[:, 1], "x1 - x2"),
        "absdiff": (2, lambda x: np.abs(x[:, 0] - x[:, 1]), "|x1 - x2|"),
        "greater": (2, lambda x: np.maximum(x[:, 0] - x[:, 1], 0.0), "relu(x1 - x2)"),
    }


# Tasks whose function has no circuit of its own in the library (catalogue/).
_NO_LIBRARY_CIRCUIT = frozenset({"absdiff", "parity3"})


def _make_tasks() -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    # Gates: MSE onto 0/1; 1e-3 is an RMS error of 0.03, far inside the 1/2 threshold.
    for name, (n, _, text) in _gates().items():
        tasks[name] = Task(
            name, "boolean", text, n, 1, "binary", (0.0, 1.0), "mse",
            lr=0.05, max_epochs=1000, loss_threshold=1e-3, widths=(2, 4, 8),
            circuit=None if name in _NO_LIBRARY_CIRCUIT else name,
        )  # fmt: skip
    # Arithmetic: MSE 1e-4 is an RMS error of 0.01 on outputs of size ~1 (the largest
    # error, near the box's corners, is 0.04-0.26); measured to take 40-1,150 Adam steps
    # at lr 0.02 where the width can represent the function and no unit dies (2 of 90 runs
    # needed more than the 1,000 allowed; their cards say converged: false).
    for name, (n, _, text) in _functions().items():
        tasks[name] = Task(
            name, "arithmetic", text, n, 1, "signed", (-1.0, 1.0), "mse",
            lr=0.02, max_epochs=1000, loss_threshold=1e-4, widths=(2, 4, 8),
            circuit=None if name in _NO_LIBRARY_CIRCUIT else name,
        )  # fmt: skip
    # Digits: train cross-entropy 0.05 is reached in 70-200 steps and gives a test
    # accuracy of ~0.96 (measured: 0.961-0.972 over widths 16, 32 and three seeds).
    tasks["digits"] = Task(
        "digits", "classification", "scikit-learn's 8x8 digits, 10 classes", 64, 10,
        "binary", (0.0, 1.0), "cross_entropy",
        lr=0.02, max_epochs=400, loss_threshold=0.05, widths=(16, 32), circuit=None,
    )  # fmt: skip
    return tasks


TASKS: dict[str, Task] = _make_tasks()
"""The real tasks by name, in a fixed order (gates, arithmetic, digits)."""


def task_names(controls: bool = True) -> list[str]:
    """Every valid task name: the real ones, then (with ``controls``) ``shuffled-<task>``."""
    names = list(TASKS)
    return names + [CONTROL_PREFIX + n for n in names] if controls else names


def resolve_tasks(names: Iterable[str]) -> list[Task]:
    """Tasks by name (``xor``, ``shuffled-xor``, ...), in the order given, without repeats.

    Raises:
        InvalidArgumentError: a name that is no task, with the valid names listed.
    """
    found: dict[str, Task] = {}
    for raw in names:
        name = str(raw).strip().lower()
        base = name.removeprefix(CONTROL_PREFIX)
        if base not in TASKS:
            valid = ", ".join(TASKS)
            raise InvalidArgumentError(
                f"unknown task {raw!r}; valid tasks: {valid} (and {CONTROL_PREFIX}<task>)"
            )
        task = TASKS[base] if name == base else TASKS[base].shuffled()
        found.setdefault(task.name, task)
    return list(found.values())


@cache
def _base_dataset(name: str) -> Dataset:
    task = TASKS[name]
    if task.kind == "boolean":
        n, gate, _ = _gates()[name]
        x = cube(n)
        y = gate(x).astype(np.float32)
        return _frozen(Dataset(x, y, x, y))
    if task.kind == "arithmetic":
        n, fn, _ = _functions()[name]
        rng = np.random.default_rng(DATA_SEED)
        x64 = rng.uniform(-1.0, 1.0, size=(ARITHMETIC_POINTS, n))
        x = x64.astype(np.float32)
        grid = _grid(n)
        # targets of the float32 inputs the model sees, computed in float64
        y = fn(x.astype(np.float64)).astype(np.float32)
        y_grid = fn(grid.astype(np.float64)).astype(np.float32)
        return _frozen(Dataset(x, y, grid, y_grid))
    return _frozen(_digits())


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)  # 0..16 → [0, 1]
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    return Dataset(np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test)


def _frozen(data: Dataset) -> Dataset:
    for array in (data.x, data.y, data.x_eval, data.y_eval):
        array.flags.writeable = False  # cached and shared: nobody may edit them
    return data


def _permuted(y: np.ndarray, seed: int) -> np.ndarray:
    """``y`` under a seeded random permutation that changes it (redrawn until it does)."""
    rng = np.random.default_rng([SHUFFLE_SALT, seed])
    for _ in range(1000):  # a gate has at least 1/4 of its permutations changing it
        permuted = y[rng.permutation(len(y))]
        if not np.array_equal(permuted, y):
            permuted.flags.writeable = False
            return permuted
    raise InvalidArgumentError("targets are constant; a shuffled control would equal the task")
