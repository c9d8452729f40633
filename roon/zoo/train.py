"""Training the zoo's models and saving each with its card.

One model per (task, hidden widths, seed): a ReLU MLP (hidden ReLU layers, a linear last
layer) trained full batch with Adam until its loss falls below the task's threshold or
its epoch budget is spent. Training is deterministic: one CPU thread (the caller's count
is restored afterwards), a private seeded ``torch.Generator`` for the initial weights (the
global RNG is never touched), and only ops that are deterministic on the CPU (linear,
relu, the three losses, Adam). ``torch.use_deterministic_algorithms`` is not called: it
changes nothing for these ops, and its first call imports ``torch._inductor`` (2.4 s
measured, a tenth of the default zoo); a test checks the bytes instead. The same seed
gives the same bytes, weights and card, on a given machine and torch version (the version
is in the card).

A zoo directory holds ``<task>/<task>-w<width>-s<seed>.safetensors`` (written by
:func:`roon.ingest.loaders.safetensors_io.save_safetensors`, so ``roon ingest`` reads the
model's name, activations, input domain and input bounds from it) and the JSON card
beside it. The card is written last, so a model counts as present only when its card
exists, describes the same training run, and names the weights file's SHA-256.

Example:
    >>> result = train_zoo("zoo", ["xor"], seeds=2, widths=[4])  # doctest: +SKIP
    >>> [m.name for m in result.models]  # doctest: +SKIP
    ['xor-w4-s0', 'xor-w4-s1', 'shuffled-xor-w4-s0', 'shuffled-xor-w4-s1']
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError
from roon.mlp import MLP, Layer
from roon.progress import ProgressCallback, emit
from roon.zoo.tasks import TASKS, Task, resolve_tasks

__all__ = [
    "CARD_VERSION",
    "TaskSummary",
    "TrainedModel",
    "ZooModel",
    "ZooResult",
    "load_card",
    "load_zoo",
    "model_name",
    "train_model",
    "train_zoo",
]

CARD_VERSION = 1
# Tiny matrices gain nothing from more threads, and one thread makes the bytes independent
# of the machine's core count (a parallel reduction may sum in another order).
TRAIN_THREADS = 1
# Hidden biases put each unit's hyperplane through the centre of the input box, moved by
# up to this fraction of the unit's |w|₁: every unit starts alive on part of the domain
# (measured: fewer dead-unit failures than PyTorch's default init at widths 2 and 4).
BIAS_JITTER = 0.25
INIT = (
    "hidden weights N(0, 2/fan_in); hidden biases -w.centre + U(-0.25, 0.25)*|w|_1 "
    "(centre: of the input box for layer 0, 0 after); output U(+-1/sqrt(fan_in)), bias 0"
)
# Epoch events are sent this often (and at the end): a bar that moves, at ~1 % overhead.
EPOCH_EVENT_EVERY = 50
DEFAULT_SEEDS = 5
_LOSS_NAMES = {"bce": "bce_with_logits", "mse": "mse", "cross_entropy": "cross_entropy"}


@dataclass(frozen=True)
class TrainedModel:
    """A model fresh from :func:`train_model`: the network, its card, the time taken."""

    mlp: MLP
    card: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class ZooModel:
    """One model of a :func:`train_zoo` run.

    Attributes:
        task: the task's name.
        name: the model's name, ``<task>-w<width>-s<seed>``.
        path: its ``.safetensors`` file (the card is the same path with ``.json``).
        status: ``trained``, or ``present`` (an identical card was there: not retrained).
        seconds: training time (0 when present).
        card: the card's contents.
    """

    task: str
    name: str
    path: Path
    status: str
    seconds: float
    card: dict[str, Any]


@dataclass(frozen=True)
class TaskSummary:
    """The models of one task in a zoo run, summed up (means over the task's models).

    ``mean_accuracy`` is set for gates and digits, ``mean_max_error`` for arithmetic.
    """

    task: str
    models: int
    trained: int
    converged: int
    mean_loss: float
    mean_accuracy: float | None
    mean_max_error: float | None
    seconds: float


@dataclass(frozen=True)
class ZooResult:
    """What :func:`train_zoo` did: the directory, every model in plan order, the wall time."""

    directory: Path
    models: list[ZooModel] = field(default_factory=list)
    seconds: float = 0.0

    def by_task(self) -> list[TaskSummary]:
        """One summary per task, in the order the tasks were trained."""
        groups: dict[str, list[ZooModel]] = {}
        for model in self.models:
            groups.setdefault(model.task, []).append(model)
        out = []
        for task, models in groups.items():
            cards = [m.card for m in models]
            accuracy = [c["metrics"]["accuracy"] for c in cards if "accuracy" in c["metrics"]]
            max_error = [c["metrics"]["max_error"] for c in cards if "max_error" in c["metrics"]]
            out.append(
                TaskSummary(
                    task=task,
                    models=len(models),
                    trained=sum(m.status == "trained" for m in models),
                    converged=sum(bool(c["converged"]) for c in cards),
                    mean_loss=float(np.mean([c["final_loss"] for c in cards])),
                    mean_accuracy=float(np.mean(accuracy)) if accuracy else None,
                    mean_max_error=float(np.mean(max_error)) if max_error else None,
                    seconds=sum(m.seconds for m in models),
                )
            )
        return out


def model_name(task: Task | str, widths: Sequence[int], seed: int) -> str:
    """``<task>-w<width>-s<seed>``; several hidden layers join their widths with ``x``."""
    name = task.name if isinstance(task, Task) else str(task)
    return f"{name}-w{'x'.join(str(int(w)) for w in widths)}-s{int(seed)}"


@contextmanager
def _torch_settings() -> Iterator[Any]:
    """torch on :data:`TRAIN_THREADS` threads; the caller's thread count restored."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        yield torch
    finally:
        torch.set_num_threads(threads)


def _planned_card(task: Task, widths: tuple[int, ...], seed: int) -> dict[str, Any]:
    """The card's fields fixed before training; two runs with equal ones train alike."""
    import torch

    from roon import __version__

    name = model_name(task, widths, seed)
    lo, hi = task.input_bounds
    return {
        "card_version": CARD_VERSION,
        "name": name,
        "task": task.name,
        "base_task": task.base,
        "control": task.is_control,
        "shuffle_seed": seed if task.is_control else None,
        "kind": task.kind,
        "circuit": task.circuit,
        "description": task.description,
        "seed": seed,
        "width": widths[0],
        "widths": list(widths),
        "hidden_layers": len(widths),
        "inputs": task.inputs,
        "outputs": task.outputs,
        "activations": ["relu"] * len(widths) + ["linear"],
        "input_domain": task.input_domain,
        "input_bounds": [float(lo), float(hi)],
        "hyperparameters": {
            "optimizer": "adam",
            "lr": task.lr,
            "loss": _LOSS_NAMES[task.loss],
            "loss_threshold": task.loss_threshold,
            "max_epochs": task.max_epochs,
            "batch": "full",
            "data": task.data_spec,
            "init": INIT,
            "threads": TRAIN_THREADS,
        },
        "weights": f"{name}.safetensors",
        "roon_version": __version__,
        "torch_version": str(torch.__version__),
    }


def train_model(
    task: Task | str,
    widths: int | Sequence[int],
    seed: int,
    *,
    progress: ProgressCallback | None = None,
) -> TrainedModel:
    """Train one model of ``task`` and describe it in a card (nothing is written).

    Args:
        task: a :class:`Task` or its name (``xor``, ``shuffled-abs``, ...).
        widths: the hidden width (repeated for every hidden layer), or one per layer.
        seed: seeds the initial weights (and a control's label permutation).
        progress: receives ``epochs`` events for this model.

    Returns:
        The network (float32, named ``<task>-w<width>-s<seed>``, input domain and bounds
        in its metadata), its card (without ``weights_sha256``, known once written) and
        the seconds spent.

    Raises:
        InvalidArgumentError: an unknown task, a width < 1, a negative seed.
    """
    task = resolve_tasks([task])[0] if isinstance(task, str) else task
    widths = _check_widths(task, widths)
    seed = _check_seed(seed)
    card = _planned_card(task, widths, seed)
    data = task.dataset(seed)
    start = time.perf_counter()
    with _torch_settings() as torch:
        params = _init_params(torch, task, widths, seed)
        epochs, loss = _fit(torch, task, params, data, card["name"], progress)
        arrays = [p.detach().numpy().astype(np.float32) for p in params]
    seconds = time.perf_counter() - start
    layers = [
        Layer(arrays[2 * i], arrays[2 * i + 1], card["activations"][i])
        for i in range(len(arrays) // 2)
    ]
    metadata = {
        "input_domain": task.input_domain,
        "input_bounds": card["input_bounds"],
        "zoo.task": task.name,
        "zoo.base_task": task.base,
        "zoo.seed": seed,
        "zoo.widths": list(widths),
    }
    mlp = MLP(layers, name=card["name"], metadata=metadata)
    card.update(
        epochs=epochs,
        final_loss=loss,
        converged=loss < task.loss_threshold,
        metrics=_metrics(task, mlp, data),
        model_id=mlp.id,
    )
    return TrainedModel(mlp, card, seconds)


def _init_params(torch: Any, task: Task, widths: tuple[int, ...], seed: int) -> list[Any]:
    generator = torch.Generator().manual_seed(seed)
    lo, hi = task.input_bounds
    fan_in, centre = task.inputs, (lo + hi) / 2.0
    params = []
    for width in widths:
        weight = torch.randn(width, fan_in, generator=generator) * math.sqrt(2.0 / fan_in)
        jitter = torch.empty(width).uniform_(-1.0, 1.0, generator=generator)
        bias = -centre * weight.sum(dim=1) + BIAS_JITTER * jitter * weight.abs().sum(dim=1)
        params += [weight, bias]
        fan_in, centre = width, 0.0
    bound = 1.0 / math.sqrt(fan_in)
    params.append(torch.empty(task.outputs, fan_in).uniform_(-bound, bound, generator=generator))
    params.append(torch.zeros(task.outputs))
    return [p.contiguous().requires_grad_(True) for p in params]


def _forward(torch: Any, params: list[Any], x: Any) -> Any:
    functional = torch.nn.functional
    for i in range(0, len(params) - 2, 2):
        x = functional.relu(functional.linear(x, params[i], params[i + 1]))
    return functional.linear(x, params[-2], params[-1])


def _fit(
    torch: Any,
    task: Task,
    params: list[Any],
    data: Any,
    name: str,
    progress: ProgressCallback | None,
) -> tuple[int, float]:
    """Full-batch Adam until ``loss < threshold`` or ``max_epochs`` steps: (steps, loss)."""
    functional = torch.nn.functional
    x = torch.from_numpy(np.array(data.x))
    y = torch.from_numpy(np.array(data.y))
    if task.loss == "bce":
        loss_fn = lambda z: functional.binary_cross_entropy_with_logits(z[:, 0], y)  # noqa: E731
    elif task.loss == "mse":
        loss_fn = lambda z: functional.mse_loss(z[:, 0], y)  # noqa: E731
    else:
        loss_fn = lambda z: functional.cross_entropy(z, y)  # noqa: E731
    optimizer = torch.optim.Adam(params, lr=task.lr)
    step = 0
    while True:
        loss = loss_fn(_forward(torch, params, x))
        value = float(loss.item())
        if value < task.loss_threshold or step == task.max_epochs:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % EPOCH_EVENT_EVERY == 0:
            emit(progress, "epochs", step, task.max_epochs, name)
    emit(progress, "epochs", step, step, name)
    return step, value


def _metrics(task: Task, mlp: MLP, data: Any) -> dict[str, Any]:
    """Judged on the saved float32 weights (float64 forward pass), against the real task."""
    out = mlp.forward(np.asarray(data.x_eval, dtype=np.float64))
    if task.kind == "boolean":
        fires = out[:, 0] > 0.5  # regressed onto 0/1: true above one half
        trained_on = np.asarray(data.y) > 0.5
        return {
            "accuracy": float(np.mean(fires == (np.asarray(data.y_eval) > 0.5))),
            "accuracy_on": "every point of the cube, against the gate",
            "train_accuracy": float(np.mean(fires == trained_on)),
            "output_table": "".join("1" if f else "0" for f in fires),
            "target_table": "".join("1" if t else "0" for t in trained_on),
        }
    if task.kind == "arithmetic":
        error = np.abs(out[:, 0] - np.asarray(data.y_eval, dtype=np.float64))
        return {
            "mse": float(np.mean(error**2)),
            "max_error": float(np.max(error)),
            "grid_points": int(len(error)),
            "accuracy_on": "a regular grid of the input box, against the function",
        }
    train_out = mlp.forward(np.asarray(data.x, dtype=np.float64))
    return {
        "accuracy": float(np.mean(out.argmax(axis=1) == np.asarray(data.y_eval))),
        "accuracy_on": f"the stratified test split ({len(out)} images), true labels",
        "train_accuracy": float(np.mean(train_out.argmax(axis=1) == np.asarray(data.y))),
    }


def _check_widths(task: Task, widths: int | Sequence[int]) -> tuple[int, ...]:
    values = [widths] * task.hidden_layers if isinstance(widths, int) else list(widths)
    if len(values) != task.hidden_layers or not all(
        isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 1 for w in values
    ):
        raise InvalidArgumentError(
            f"widths {widths!r} for task {task.name!r}; give {task.hidden_layers} "
            "positive integer hidden width(s)"
        )
    return tuple(int(w) for w in values)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgumentError(f"seed {seed!r}; give an integer >= 0")
    return int(seed)


def _plan(
    tasks: Iterable[Task | str] | None,
    seeds: int | Sequence[int],
    widths: Sequence[int] | None,
    controls: bool,
) -> list[tuple[Task, tuple[int, ...], int]]:
    chosen = resolve_tasks(
        [t.name if isinstance(t, Task) else t for t in (TASKS if tasks is None else tasks)]
    )
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InvalidArgumentError(f"seeds {seeds}; give the number of seeds, 1 or more")
        seed_list = list(range(seeds))
    else:
        seed_list = [_check_seed(s) for s in seeds]
    if widths is not None and not list(widths):
        raise InvalidArgumentError("widths is empty; give at least one hidden width")
    plan: dict[str, tuple[Task, tuple[int, ...], int]] = {}

    def add(task: Task, task_widths: Sequence[int]) -> None:
        for width in task_widths:
            shape = _check_widths(task, width)
            for seed in seed_list:
                plan.setdefault(model_name(task, shape, seed), (task, shape, seed))

    for task in chosen:
        add(task, task.widths if widths is None else widths)
    if controls:
        # a control per real task, at its widest width: the width at which the real task
        # is learned most reliably, and the most capacity to memorize permuted targets
        for task in chosen:
            if not task.is_control:
                add(task.shuffled(), [max(task.widths if widths is None else widths)])
    return list(plan.values())


def train_zoo(
    directory: str | os.PathLike[str],
    tasks: Iterable[Task | str] | None = None,
    *,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    widths: Sequence[int] | None = None,
    controls: bool = True,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> ZooResult:
    """Train the zoo into ``directory``: every task × width × seed, plus controls.

    Args:
        directory: the zoo directory (created if missing); models go to
            ``<task>/<task>-w<width>-s<seed>.safetensors`` with a ``.json`` card beside.
        tasks: task names or :class:`Task` objects (``shuffled-<task>`` for a control at
            every width); None trains every task in :data:`~roon.zoo.tasks.TASKS`.
        seeds: how many seeds (0 .. N-1), or the seeds themselves.
        widths: hidden widths for every task; None uses each task's defaults.
        controls: also train ``shuffled-<task>`` for each real task chosen, at its widest
            width and every seed.
        force: retrain models whose identical card is already there.
        progress: receives ``models`` events (one per model) and ``epochs`` events.

    Returns:
        A :class:`ZooResult` listing every model, trained or found present.

    Raises:
        InvalidArgumentError: an unknown task, bad seeds or widths, or a directory that
            cannot be created or written.
    """
    start = time.perf_counter()
    plan = _plan(tasks, seeds, widths, controls)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InvalidArgumentError(f"{root}: is not a directory; give a directory for the zoo")
    result = ZooResult(root)
    for done, (task, shape, seed) in enumerate(plan):
        name = model_name(task, shape, seed)
        emit(progress, "models", done, len(plan), name)
        folder = root / task.name
        weights = folder / f"{name}.safetensors"
        card_path = weights.with_suffix(".json")
        existing = None if force else _present_card(card_path, task, shape, seed)
        if existing is not None:
            result.models.append(ZooModel(task.name, name, weights, "present", 0.0, existing))
            continue
        trained = train_model(task, shape, seed, progress=progress)
        _write_model(folder, weights, card_path, trained)
        result.models.append(
            ZooModel(task.name, name, weights, "trained", trained.seconds, trained.card)
        )
    emit(progress, "models", len(plan), len(plan))
    return ZooResult(root, result.models, time.perf_counter() - start)


def _present_card(card_path: Path, task: Task, shape: tuple[int, ...], seed: int) -> Any:
    """The card at ``card_path`` if it describes this very run and its weights are intact."""
    try:
        card = load_card(card_path)
    except (InvalidArgumentError, ModelFormatError):
        return None
    planned = _planned_card(task, shape, seed)
    if any(card.get(key) != value for key, value in planned.items()):
        return None
    weights = card_path.with_name(planned["weights"])
    try:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    except OSError:
        return None
    return card if digest == card.get("weights_sha256") else None


def _write_model(folder: Path, weights: Path, card_path: Path, trained: TrainedModel) -> None:
    """Weights first, then the card (the mark that the model is complete); both atomic."""
    from roon.ingest.loaders.safetensors_io import save_safetensors

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(
            f"{folder}: cannot create the zoo folder ({exc.strerror or exc})"
        ) from exc
    save_safetensors(trained.mlp, weights)
    trained.card["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    text = json.dumps(trained.card, indent=2, sort_keys=True, allow_nan=False) + "\n"
    _atomic_write_text(card_path, text)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write aside, fsync, rename: readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(tmp, 0o644)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidArgumentError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The card of a zoo model: give the ``.json`` card or the ``.safetensors`` beside it.

    Raises:
        InvalidArgumentError: no card at that path.
        ModelFormatError: the card is not a JSON object.
    """
    card_path = Path(path)
    if card_path.suffix != ".json":
        card_path = card_path.with_suffix(".json")
    try:
        text = card_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(
            f"{card_path}: no zoo card here ({exc.strerror or exc}); run `roon zoo train`"
        ) from exc
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{card_path}: the card is not valid JSON ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelFormatError(f"{card_path}: the card is not a JSON object")
    return card


def load_zoo(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete model's card in a zoo directory (weights file present), by path.

    Raises:
        InvalidArgumentError: ``directory`` is not a directory.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InvalidArgumentError(f"{root}: no zoo directory here; run `roon zoo train {root}`")
    cards = []
    for card_path in sorted(root.glob("*/*.json")):
        card = load_card(card_path)
        if card_path.with_name(str(card.get("weights", ""))).is_file():
            cards.append(card)
    return cards
