"""``roon demo``: which circuits recur across training runs, and where — the zoo end to end.

The stages, each timed:

1. **train** the demo's zoo (:data:`DEMO_TASKS`, :data:`DEMO_SEEDS` seeds at each task's
   default widths, with shuffled-label controls), or reuse it: ``train_zoo`` skips
   every model whose card is already there;
2. **ingest** it with ``--normalize exact``: each model as trained and its normalized
   copy, with the lineage between them;
3. **where** every library circuit over every model as ingested, then over the
   normalized copies (the report says whether they change any verdict), and the first
   layer of each multi-layer circuit over the models of its task (the parts a task may
   be built from);
4. **controls**: the planted control — :data:`PLANTS_PER_CIRCUIT` random networks with
   each library circuit planted in them (:mod:`roon.zoo.plant`), in a catalogue of their
   own, each searched for its circuit — must be found every time, at the neurons it was
   planted in; the shuffled-label control is read off step 3;
5. **recurring** exact signatures and two-layer motifs, with the tasks they come from;
6. the **figure** (``OUT/summary.png``) and the **report** (``OUT/report.json``).

:func:`run_demo` returns the report as a dict (what ``report.json`` holds); it never
prints. Its numbers are those of ``where`` itself: a circuit counts in a model when
``where`` returns at least one verified embedding there.

Example:
    >>> report = run_demo("zoo", "roon-catalogue", "demo")  # doctest: +SKIP
    >>> report["expected"][0]["circuit"], report["planted_control"]["xor"]  # doctest: +SKIP
    ('and', {'found': 3, 'total': 3})
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from roon.errors import CatalogueError, InvalidArgumentError
from roon.progress import Progress, ProgressCallback, emit
from roon.zoo.findings import (
    EXPECTED_SHARE,
    DemoModel,
    circuit_matrix,
    control_counts,
    expected_outcomes,
    hidden_unit_circuits,
    normalized_differences,
    sentences,
)

__all__ = [
    "DEMO_SEEDS",
    "DEMO_TASKS",
    "PLANTS_PER_CIRCUIT",
    "RECURRING_LIMIT",
    "REPORT_VERSION",
    "run_demo",
]

REPORT_VERSION = 1
# Seeds per task and width. The default zoo (five seeds, 235 models) took 170 s (115 s of
# CPU) to train, ingest and search on the 2-core VM, past the two minutes `make run` has;
# two seeds keep every width and control (benchmarks/RESULTS.md, "Demo").
DEMO_SEEDS = 2
# Every task but digits: its 64-input layers took 46 % of the search's CPU at two seeds
# (9.9 of 21 s, measured before the matcher's int64 arithmetic), the library has no
# circuit to expect in them, and what is found there are sub-circuits of three pixels
# with the other 61 held at 0.
# `roon demo --tasks all --seeds 5` runs the full default zoo.
DEMO_TASKS = ("and", "or", "xor", "maj3", "parity3", "abs", "min", "max", "sub", "absdiff",
              "greater")  # fmt: skip
# Plants per library circuit in the planted control: offset 0 with zero and with small
# extra weights, and (binary circuits) one a layer down, where it sees ReLU outputs.
PLANTS_PER_CIRCUIT = 3
# Recurring signatures and motifs kept in the report.
RECURRING_LIMIT = 10
NORMALIZE = ("exact",)


class _Stages:
    """Stage timings and the progress events of the parts, prefixed with the stage."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[ProgressCallback | None]:
        start, cpu = time.perf_counter(), time.process_time()
        sub = None
        if self.progress is not None:
            outer = self.progress

            def sub(event: Progress) -> None:
                outer(replace(event, task=f"{name}: {event.task}"))

        try:
            yield sub
        finally:
            self.seconds[name] = time.perf_counter() - start
            self.cpu[name] = time.process_time() - cpu


def run_demo(
    zoo: str | os.PathLike[str] = "zoo",
    catalogue: str | os.PathLike[str] = "roon-catalogue",
    out: str | os.PathLike[str] = "demo",
    *,
    tasks: Sequence[str] | None = DEMO_TASKS,
    seeds: int | Sequence[int] = DEMO_SEEDS,
    widths: Sequence[int] | None = None,
    controls: bool = True,
    plants: int = PLANTS_PER_CIRCUIT,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train (or reuse) the zoo, catalogue it, find every library circuit in it, report.

    Args:
        zoo: the zoo directory (``roon zoo train``'s layout); missing models are trained.
        catalogue: the catalogue to ingest into (created if missing). Other models in it
            are searched too (one ``where`` per circuit covers the whole catalogue) but
            not counted, by ``where`` or by ``recurring``. A catalogue of its own keeps
            the demo fast.
        out: where ``report.json``, ``summary.png`` and the planted control's catalogue
            (``planted-catalogue/``) go.
        tasks: zoo tasks (default :data:`DEMO_TASKS`; None: every task).
        seeds: seeds per task and width, as for ``train_zoo``.
        widths: hidden widths (default: each task's own).
        controls: train and report the shuffled-label controls.
        plants: plants per library circuit in the planted control.
        progress: ``stages`` events and, prefixed with the stage's name, the events of
            the stage (``train: models``, ``where: models``, ...).

    Returns:
        The report (see ``report.json``; the README's quickstart shows one).

    Raises:
        InvalidArgumentError: bad tasks, seeds, widths or plants, or ``out`` is a file.
        CatalogueError: the catalogue cannot be opened or created (checked before the
            zoo trains) or written.
    """
    from roon import __version__
    from roon.ingest.loaders.circuit import list_circuits
    from roon.query.match.verify import DEFAULT_TOLERANCE
    from roon.zoo.plant import planted_control_models

    if isinstance(plants, bool) or not isinstance(plants, int) or plants < 1:
        raise InvalidArgumentError(f"plants {plants!r}: give a positive number of plants")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidArgumentError(f"{out_dir}: is not a directory; give a folder for --out")
    _prepare_catalogue(catalogue, tasks)
    stages = _Stages(progress)
    plan = ["train", "ingest", "where", "controls", "recurring", "figure"]
    started = time.perf_counter()
    circuits = list_circuits()

    emit(progress, "stages", 0, len(plan), "train")
    with stages.stage("train") as sub:
        zoo_result, models, task_circuits = _train(zoo, tasks, seeds, widths, controls, sub)
    emit(progress, "stages", 1, len(plan), "ingest")
    with stages.stage("ingest") as sub:
        models, ingest = _ingest(catalogue, zoo_result, models, sub)
    emit(progress, "stages", 2, len(plan), "where")
    with stages.stage("where") as sub:
        searched = _search(catalogue, circuits, models, task_circuits, sub)
    emit(progress, "stages", 3, len(plan), "controls")
    with stages.stage("controls") as sub:
        plant_list = planted_control_models(per_circuit=plants)
        planted = _planted_control(out_dir / "planted-catalogue", plant_list, sub)
    emit(progress, "stages", 4, len(plan), "recurring")
    with stages.stage("recurring"):
        recurring = _recurring(catalogue, models)

    report = _assemble(models, circuits, task_circuits, searched, planted, recurring)
    report.update(
        report_version=REPORT_VERSION,
        roon_version=__version__,
        tolerance=DEFAULT_TOLERANCE,
        expected_share=EXPECTED_SHARE,
        zoo=_zoo_summary(zoo_result, models),
        catalogue={"directory": str(catalogue), **ingest},
    )
    report["findings"] = sentences(report)
    emit(progress, "stages", 5, len(plan), "figure")
    with stages.stage("figure"):
        from roon.zoo.figure import summary_figure

        out_dir.mkdir(parents=True, exist_ok=True)
        figure = summary_figure(report, out_dir / "summary.png")
    emit(progress, "stages", len(plan), len(plan))
    report["stages"] = {
        k: {"seconds": round(v, 2), "cpu_seconds": round(stages.cpu[k], 2)}
        for k, v in stages.seconds.items()
    }
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["files"] = {"report": str(out_dir / "report.json"), "figure": str(figure)}
    _write_json(out_dir / "report.json", report)
    return report


def _prepare_catalogue(catalogue: str | os.PathLike[str], tasks: Sequence[str] | None) -> None:
    """Open (or create) the catalogue before the zoo trains, so that a path that cannot be
    one fails in a moment rather than after the training; unknown task names are told
    first, so that a typo in them creates no catalogue."""
    from roon.store import open_catalogue
    from roon.zoo.tasks import resolve_tasks

    if tasks is not None:
        resolve_tasks(list(tasks))
    open_catalogue(catalogue, create=True)


def _train(
    zoo: str | os.PathLike[str],
    tasks: Sequence[str] | None,
    seeds: int | Sequence[int],
    widths: Sequence[int] | None,
    controls: bool,
    progress: ProgressCallback | None,
) -> tuple[Any, list[DemoModel], dict[str, str | None]]:
    from roon.zoo.tasks import TASKS
    from roon.zoo.train import train_zoo

    result = train_zoo(zoo, tasks, seeds=seeds, widths=widths, controls=controls,
                       progress=progress)  # fmt: skip
    models = [
        DemoModel(
            name=m.name,
            task=m.task,
            base_task=m.card["base_task"],
            control=bool(m.card["control"]),
            width=int(m.card["width"]),
            seed=int(m.card["seed"]),
            converged=bool(m.card["converged"]),
            input_domain=m.card["input_domain"],
            model_id=m.card["model_id"],
        )
        for m in result.models
    ]
    real = {m.task for m in models if not m.control}
    task_circuits = {t: TASKS[t].circuit for t in TASKS if t in real}
    return result, models, task_circuits


def _ingest(
    catalogue: str | os.PathLike[str],
    zoo_result: Any,
    models: list[DemoModel],
    progress: ProgressCallback | None,
) -> tuple[list[DemoModel], dict[str, Any]]:
    from roon.ingest.pipeline import ingest_models

    results = ingest_models(
        [m.path for m in zoo_result.models], catalogue, normalize=list(NORMALIZE),
        progress=progress,
    )  # fmt: skip
    failed = [r for r in results if r.status == "failed"]
    if failed:
        first = failed[0]
        raise CatalogueError(
            f"{len(failed)} zoo models could not be ingested into {catalogue}; "
            f"first: {first.source}: {first.reason}"
        )
    kept = []
    for model, result in zip(models, results, strict=True):
        if result.parent_id != model.model_id:
            raise CatalogueError(
                f"{result.source}: its card says model {model.model_id[:12]}, the file is "
                f"{str(result.parent_id)[:12]}; retrain it with `roon zoo train --force`"
            )
        kept.append(replace(model, normalized_id=result.model_id))
    normalized = {m.normalized_id for m in kept if m.normalized_id != m.model_id}
    summary = {
        "ingested": sum(r.status == "ingested" for r in results),
        "present": sum(r.status == "present" for r in results),
        "models": len(kept),
        "normalized_copies": len(normalized),
        "unchanged_by_normalization": sum(m.normalized_id == m.model_id for m in kept),
        "normalize": ",".join(NORMALIZE),
    }
    return kept, summary


def _first_layer_pattern(circuit: Any) -> Any:
    """The first layer of a multi-layer circuit, as a pattern of its own."""
    from roon.mlp import MLP
    from roon.query.match.pattern import Pattern

    layer = circuit.mlp.layers[0]
    mlp = MLP((layer,), name=f"{circuit.name}[layer 0]")
    inputs = circuit.mlp.input_width
    described = f"{layer.width} {layer.activation} units on {inputs} input{'s' * (inputs > 1)}"
    return Pattern(mlp.name, described, mlp, f"library:{circuit.name}", circuit.input_domain)


def _where(circuit: Any, catalogue: str | os.PathLike[str], **options: Any) -> Any:
    """``where``, with "fits no model" as an empty result (a reduced zoo may lack the
    inputs a circuit needs) rather than an error."""
    from roon.query.match import WhereResult, where

    try:
        return where(circuit, catalogue, **options)
    except InvalidArgumentError as exc:
        name = getattr(circuit, "name", circuit)
        return WhereResult(str(name), "", "", notes=[str(exc)])


def _search(
    catalogue: str | os.PathLike[str],
    circuits: Sequence[Any],
    models: Sequence[DemoModel],
    task_circuits: dict[str, str | None],
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    """``where`` of every circuit over the models and their normalized copies, and of the
    first layer of each multi-layer circuit over the models of its task.

    One ``where`` per circuit over the whole catalogue, normalized copies included
    (``include_derived``), split by id afterwards: a ``where`` call has a fixed cost that
    grows with the catalogue (it reads every model's name and opens every table), so
    one call is cheaper than two restricted ones (``--model`` lists too resolve each
    reference against the catalogue).
    """
    ids = {m.model_id for m in models}
    normalized = {m.normalized_id for m in models if m.normalized_id not in ids}
    matches: dict[str, list[Any]] = {}
    found: dict[str, set[str]] = {}
    found_normalized: dict[str, set[str]] = {}
    offsets: dict[str, dict[str, set[int]]] = {}
    notes: list[str] = []
    for number, c in enumerate(circuits):
        emit(progress, "circuits", number, len(circuits), c.name)
        result = _where(c.name, catalogue, include_derived=True)
        matches[c.name] = [m for m in result.matches if m.model_id in ids]
        found[c.name] = {m.model_id for m in matches[c.name] if m.verified}
        found_normalized[c.name] = {m.model_id for m in result.verified if m.model_id in normalized}
        offsets[c.name] = {}
        for m in result.verified:
            offsets[c.name].setdefault(m.model_id, set()).add(m.layer_offset)
        if not result.complete or not result.circuit_id:
            notes += [f"{c.name}: {n}" for n in result.notes]
    emit(progress, "circuits", len(circuits), len(circuits))
    parts: dict[str, dict[str, Any]] = {}
    by_name = {c.name: c for c in circuits}
    for task, name in task_circuits.items():
        if name is None or len(by_name[name].mlp.layers) < 2:
            continue
        members = [m.model_id for m in models if m.task == task]
        pattern = _first_layer_pattern(by_name[name])
        emit(progress, "first layers", len(parts), None, pattern.name)
        result = _where(pattern, catalogue, models=members)
        parts[name] = {
            "layer": 0,
            "describes": pattern.description,
            "found": len({m.model_id for m in result.verified}),
            "total": len(members),
        }
    return {
        "matches": matches,
        "found": found,
        "found_normalized": found_normalized if normalized else {},
        "offsets": offsets,
        "parts": parts,
        "notes": notes,
    }


def _planted_control(
    root: Path, planted: Sequence[Any], progress: ProgressCallback | None
) -> dict[str, dict[str, int]]:
    """Found / total per circuit of the planted control (``PlantedModel`` records).

    A plant counts as found only when ``where`` verifies the embedding that was planted:
    its layer offset, its input map and its neuron maps. Another verified embedding in
    the same network (fillers that happen to compute the circuit) does not show that the
    planted one was seen.
    """
    from roon.ingest.pipeline import ingest_model
    from roon.store import open_catalogue

    store = open_catalogue(root, create=True)
    for number, p in enumerate(planted):
        emit(progress, "planted models", number, len(planted), p.mlp.name or "")
        ingest_model(p.mlp, store)
    emit(progress, "planted models", len(planted), len(planted))
    by_circuit: dict[str, list[Any]] = {}
    for p in planted:
        by_circuit.setdefault(p.circuit, []).append(p)
    out = {}
    for number, (circuit, group) in enumerate(by_circuit.items()):
        emit(progress, "circuits", number, len(by_circuit), circuit)
        result = _where(circuit, store, models=[p.mlp.id for p in group])
        seen = {
            (m.model_id, m.layer_offset, _targets(m.input_map), tuple(map(_targets, m.maps)))
            for m in result.verified
        }
        found = sum(
            (p.mlp.id, p.offset, tuple(p.input_map), tuple(map(tuple, p.maps))) in seen
            for p in group
        )
        out[circuit] = {"found": found, "total": len(group)}
    emit(progress, "circuits", len(by_circuit), len(by_circuit))
    return out


def _targets(pairs: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """``[[circuit index, target index], ...]`` → the targets in circuit order."""
    return tuple(t for _, t in sorted(pairs))


def _recurring(catalogue: str | os.PathLike[str], models: Sequence[DemoModel]) -> dict[str, Any]:
    """The most recurrent signatures and motifs among the zoo's models (as ingested; other
    models of the catalogue do not count), each with the tasks of its models."""
    from roon.query.recurring import recurring

    task_of = {m.name: m.task for m in models}
    ids = [m.model_id for m in models]
    out: dict[str, Any] = {}
    for kind in ("neuron", "motif"):
        rows = recurring(catalogue, kind=kind, limit=RECURRING_LIMIT, models=ids)
        for row in rows:
            tasks: dict[str, int] = {}
            for name in row["found_in"]:
                task = task_of[name]
                tasks[task] = tasks.get(task, 0) + 1
            row["tasks"] = dict(sorted(tasks.items(), key=lambda kv: (-kv[1], kv[0])))
        out["neurons" if kind == "neuron" else "motifs"] = rows
    return out


def _assemble(
    models: Sequence[DemoModel],
    circuits: Sequence[Any],
    task_circuits: dict[str, str | None],
    searched: dict[str, Any],
    planted: dict[str, dict[str, int]],
    recurring: dict[str, Any],
) -> dict[str, Any]:
    from roon.zoo.tasks import CONTROL_PREFIX

    matches, found = searched["matches"], searched["found"]
    matrix = circuit_matrix(models, found)
    shuffled = control_counts(matrix, task_circuits, CONTROL_PREFIX)
    one_layer = {
        c.name: _symmetric(c.mlp.layers[0].weight)
        for c in circuits
        if len(c.mlp.layers) == 1 and c.mlp.output_width == 1
    }
    widths = {m.model_id: _inputs(m) for m in models}
    units, per_task, recipes = hidden_unit_circuits(models, matches, one_layer, widths)
    structure = {
        c: {m.model_id for m in ms if not m.verified} - found[c] for c, ms in matches.items()
    }
    return {
        "circuits": [
            {
                "name": c.name,
                "widths": "-".join(str(w) for w in c.mlp.widths),
                "input_domain": c.input_domain,
                "computes": c.computes,
            }
            for c in circuits
        ],
        "tasks": [
            {
                "name": task,
                "models": len(members),
                "circuit": task_circuits.get(task),
                "control": members[0].control,
                "input_domain": members[0].input_domain,
            }
            for task, members in _group(models).items()
        ],
        "matrix": matrix,
        "expected": expected_outcomes(
            models, task_circuits, matches, matrix, shuffled, planted, searched["parts"]
        ),
        "planted_control": planted,
        "shuffled_control": shuffled,
        "hidden_units": per_task,
        "hidden_unit_recipes": recipes,
        "normalized": {
            "searched": bool(searched["found_normalized"]),
            "differences": normalized_differences(
                models, found, searched["found_normalized"], searched["offsets"]
            ),
        },
        "recurring": recurring,
        "models": [
            {
                "name": m.name,
                "task": m.task,
                "width": m.width,
                "seed": m.seed,
                "converged": m.converged,
                "model_id": m.model_id,
                "normalized_id": m.normalized_id,
                "found": sorted(c for c, ids in found.items() if m.model_id in ids),
                "structure_only": sorted(c for c, ids in structure.items() if m.model_id in ids),
                "hidden_units": {str(k): v for k, v in units.get(m.name, {}).items()},
            }
            for m in models
        ],
        "notes": searched["notes"],
    }


def _symmetric(weight: Any) -> bool:
    """Whether a one-neuron layer reads several inputs alike (any permutation of them
    leaves it unchanged): then which model inputs it reads is not worth a label."""
    import numpy as np

    row = np.asarray(weight)[0]
    return len(row) > 1 and bool(np.all(row == row[0]))


def _inputs(model: DemoModel) -> int:
    from roon.zoo.tasks import TASKS

    return TASKS[model.base_task].inputs


def _group(models: Sequence[DemoModel]) -> dict[str, list[DemoModel]]:
    groups: dict[str, list[DemoModel]] = {}
    for m in models:
        groups.setdefault(m.task, []).append(m)
    return groups


def _zoo_summary(result: Any, models: Sequence[DemoModel]) -> dict[str, Any]:
    return {
        "directory": str(result.directory),
        "models": len(models),
        "real": sum(not m.control for m in models),
        "controls": sum(m.control for m in models),
        "trained": sum(m.status == "trained" for m in result.models),
        "present": sum(m.status == "present" for m in result.models),
    }


def _write_json(path: Path, report: dict[str, Any]) -> None:
    """Written aside and renamed, so a reader never sees half a report."""
    text = json.dumps(report, indent=2, allow_nan=False, default=_plain) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidArgumentError(
            f"{path}: cannot write the report ({exc.strerror or exc})"
        ) from exc


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
