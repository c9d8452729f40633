"""What the demo found, computed from ``roon where`` results and the zoo's cards.

Pure functions, no I/O: :mod:`roon.zoo.demo` runs the stages and hands their results
here. Every number counts *models* with at least one *verified* embedding of a circuit
(``Match.verified``: the exact structural and positional checks and the functional check
within its tolerance), out of the models of a task.

* :func:`circuit_matrix` — circuit × task: found / total;
* :func:`expected_outcomes` — per task whose card names a library circuit: was it found,
  by width and among converged models, where only its structure embeds (the functional
  check fails), next to the shuffled-label and planted controls;
* :func:`hidden_unit_circuits` — per model, which one-layer library circuits its hidden
  units are (matches at layer offset 0), the parts from which a task may be built
  another way than the library's circuit;
* :func:`normalized_differences` — whether the normalized copies change any verdict;
* :func:`sentences` — the findings in words, from the numbers above only.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

__all__ = [
    "EXPECTED_SHARE",
    "DemoModel",
    "circuit_matrix",
    "control_counts",
    "expected_outcomes",
    "hidden_unit_circuits",
    "normalized_differences",
    "sentences",
    "unit_label",
]

# The expectation "the task's circuit appears in its models" is met when the circuit is
# verified in at least half of the task's converged models: a circuit found in a minority
# is one way the task gets learned, not the way this zoo learns it. Models that never
# reached their loss threshold did not learn the task, so they do not count against it.
EXPECTED_SHARE = 0.5


@dataclass(frozen=True)
class DemoModel:
    """One zoo model as the demo sees it: its card's facts and its catalogue ids.

    Attributes:
        name: ``<task>-w<width>-s<seed>``.
        task: the task it was trained on (``shuffled-<task>`` for a control).
        base_task: the real task (the task itself unless a control).
        control: trained on permuted targets.
        width: its hidden width.
        seed: its seed.
        converged: reached its task's loss threshold.
        input_domain: its inputs' signature domain (``binary`` or ``signed``).
        model_id: the model as ingested.
        normalized_id: its copy normalized by the ``exact`` preset (the same id when
            normalization changed nothing), None when not ingested with normalization.
    """

    name: str
    task: str
    base_task: str
    control: bool
    width: int
    seed: int
    converged: bool
    input_domain: str
    model_id: str
    normalized_id: str | None = None


def _by_task(models: Sequence[DemoModel]) -> dict[str, list[DemoModel]]:
    groups: dict[str, list[DemoModel]] = {}
    for m in models:
        groups.setdefault(m.task, []).append(m)
    return groups


def circuit_matrix(
    models: Sequence[DemoModel], found: Mapping[str, set[str]]
) -> dict[str, dict[str, dict[str, int]]]:
    """``{circuit: {task: {"found": k, "total": n}}}`` over the models' own ids.

    Args:
        models: the demo's models (tasks in the order they appear).
        found: circuit → ids of models with a verified embedding.
    """
    groups = _by_task(models)
    return {
        circuit: {
            task: {"found": sum(m.model_id in ids for m in members), "total": len(members)}
            for task, members in groups.items()
        }
        for circuit, ids in found.items()
    }


def control_counts(
    matrix: Mapping[str, Mapping[str, Mapping[str, int]]],
    task_circuits: Mapping[str, str | None],
    control_prefix: str,
) -> dict[str, dict[str, Any]]:
    """The shuffled-label control per circuit: found / total over every control model,
    and over the controls of the task built around the circuit (``task``), if any."""
    out: dict[str, dict[str, Any]] = {}
    for circuit, row in matrix.items():
        controls = {t: c for t, c in row.items() if t.startswith(control_prefix)}
        entry: dict[str, Any] = {
            "found": sum(c["found"] for c in controls.values()),
            "total": sum(c["total"] for c in controls.values()),
        }
        own = [t for t, c in task_circuits.items() if c == circuit]
        mine = [control_prefix + t for t in own if control_prefix + t in controls]
        entry["task"] = mine[0] if mine else None
        if mine:
            entry["task_found"] = controls[mine[0]]["found"]
            entry["task_total"] = controls[mine[0]]["total"]
        out[circuit] = entry
    return out


def expected_outcomes(
    models: Sequence[DemoModel],
    task_circuits: Mapping[str, str | None],
    matches: Mapping[str, Sequence[Any]],
    matrix: Mapping[str, Mapping[str, Mapping[str, int]]],
    shuffled: Mapping[str, Mapping[str, Any]],
    planted: Mapping[str, Mapping[str, int]],
    parts: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per real task whose card names a library circuit: what was expected, what was found.

    Args:
        models: the demo's models.
        task_circuits: task → its library circuit (None where the library has none).
        matches: circuit → every ``Match`` over the models as ingested (verified or not).
        matrix: :func:`circuit_matrix`.
        shuffled: :func:`control_counts`.
        planted: circuit → ``{"found", "total"}`` of the planted control.
        parts: circuit → ``{"found", "total", "layer"}``: models of the task where the
            circuit's first layer alone is verified (multi-layer circuits only).

    Returns:
        One dict per task: ``task``, ``circuit``, ``found``/``total``, ``converged`` and
        ``converged_found``, ``by_width`` (``{width: [found, total]}``), ``met``
        (None when no model converged), ``structure_only`` (models with an embedding
        that fails the functional check and none that passes) with their best
        ``deviations``, and the controls beside it.
    """
    groups = _by_task(models)
    out = []
    for task, circuit in task_circuits.items():
        if circuit is None or task not in groups:
            continue
        members = groups[task]
        by_model: dict[str, list[Any]] = defaultdict(list)
        for m in matches.get(circuit, []):
            by_model[m.model_id].append(m)
        verified = {mid for mid, ms in by_model.items() if any(x.verified for x in ms)}
        converged = [m for m in members if m.converged]
        conv_found = sum(m.model_id in verified for m in converged)
        widths: dict[str, list[int]] = {}
        for m in members:
            cell = widths.setdefault(str(m.width), [0, 0])
            cell[0] += m.model_id in verified
            cell[1] += 1
        structure = {
            m.name: min(x.deviation for x in by_model[m.model_id])
            for m in members
            if m.model_id in by_model and m.model_id not in verified
        }
        met = None if not converged else conv_found >= EXPECTED_SHARE * len(converged)
        entry: dict[str, Any] = {
            "task": task,
            "circuit": circuit,
            "found": matrix[circuit][task]["found"],
            "total": matrix[circuit][task]["total"],
            "converged": len(converged),
            "converged_found": conv_found,
            "met": met,
            "by_width": widths,
            "structure_only": len(structure),
            "structure_deviations": {
                k: round(v, 3) if math.isfinite(v) else None for k, v in sorted(structure.items())
            },
            "shuffled": shuffled.get(circuit, {}),
            "planted": dict(planted.get(circuit, {})),
        }
        if parts and circuit in parts:
            entry["first_layer"] = dict(parts[circuit])
        out.append(entry)
    return out


def unit_label(circuit: str, match: Any, input_width: int, symmetric: bool) -> str:
    """A hidden unit's label from a one-layer match: the circuit, with the inputs it reads
    where the model has several and the circuit tells them apart (``positive(x2)``,
    ``greater(x2,x1)``: relu(x2 − x1)); a symmetric circuit (``and``) is just its name."""
    inputs = [target for _, target in match.input_map]
    if input_width < 2 or symmetric:
        return circuit
    return f"{circuit}({','.join(f'x{i + 1}' for i in inputs)})"


def hidden_unit_circuits(
    models: Sequence[DemoModel],
    matches: Mapping[str, Sequence[Any]],
    one_layer: Mapping[str, bool],
    input_widths: Mapping[str, int],
) -> tuple[dict[str, dict[int, list[str]]], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Which one-layer library circuits each model's hidden units are.

    Args:
        models: the demo's models.
        matches: circuit → matches over the models as ingested.
        one_layer: the one-layer, one-output circuits of the library (``and``,
            ``greater``, ``positive`` …), each with whether its label may leave out
            which inputs it reads (a symmetric circuit of several inputs).
        input_widths: model id → input width.

    Returns:
        ``(units, per_task, recipes)``: ``units[model name][hidden unit]`` is the sorted
        labels of that unit (verified matches at layer offset 0, so units of the first
        hidden layer); ``per_task[task][label]`` counts the task's models with such a
        unit; ``recipes[task][labels]`` counts the task's models by the set of labels
        their units carry (``"greater(x1,x2) + greater(x2,x1)"``; ``"none"``).
    """
    names = {m.model_id: m.name for m in models}
    units: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for circuit, symmetric in one_layer.items():
        for match in matches.get(circuit, []):
            if match.verified and match.layer_offset == 0 and match.model_id in names:
                unit = match.maps[0][0][1]
                width = input_widths.get(match.model_id, 0)
                label = unit_label(circuit, match, width, symmetric)
                units[names[match.model_id]][unit].add(label)
    per_task: dict[str, dict[str, int]] = {}
    recipes: dict[str, dict[str, int]] = {}
    for task, members in _by_task(models).items():
        counts: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for m in members:
            labels = {label for unit in units.get(m.name, {}).values() for label in unit}
            counts.update(labels)
            kinds[" + ".join(sorted(labels)) or "none"] += 1
        per_task[task] = _most_first(counts)
        recipes[task] = _most_first(kinds)
    flat = {
        name: {unit: sorted(labels) for unit, labels in sorted(by_unit.items())}
        for name, by_unit in units.items()
    }
    return flat, per_task, recipes


def _most_first(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def normalized_differences(
    models: Sequence[DemoModel],
    found: Mapping[str, set[str]],
    found_normalized: Mapping[str, set[str]],
    offsets: Mapping[str, Mapping[str, set[int]]],
) -> list[dict[str, Any]]:
    """Every (circuit, model) whose verdict differs between a model and its normalized copy.

    Args:
        models: the demo's models.
        found: circuit → models as ingested with a verified embedding.
        found_normalized: circuit → normalized copies (that are no model as ingested)
            with a verified embedding; a model that normalization leaves unchanged is
            its own copy.
        offsets: circuit → model id → layer offsets of its verified embeddings.

    Returns:
        ``{"circuit", "model", "as_ingested", "normalized", "offsets"}`` per difference,
        ``offsets`` being those of the side where the circuit was found.
    """
    out = []
    for circuit in found:
        for m in models:
            if m.normalized_id is None:
                continue
            mine = m.model_id in found[circuit]
            norm = m.normalized_id in found[circuit] | found_normalized.get(circuit, set())
            if mine != norm:
                where = m.model_id if mine else m.normalized_id
                out.append({
                    "circuit": circuit, "model": m.name, "as_ingested": mine,
                    "normalized": norm, "offsets": sorted(offsets[circuit].get(where, ())),
                })  # fmt: skip
    return out


def _fraction(found: int, total: int) -> str:
    return f"{found}/{total}"


def sentences(report: Mapping[str, Any]) -> list[str]:
    """The findings in words, beside the tables; every number comes from ``report``.

    Per expected circuit not met: where its structure embeds but the functional check
    fails, whether its first layer alone is there, and what the task's hidden units are
    instead; then the planted control, the shuffled-label control and the normalized
    copies.
    """
    out = []
    domains = {c["name"]: c["input_domain"] for c in report["circuits"]}
    task_domain = {t["name"]: t["input_domain"] for t in report["tasks"]}
    for e in report["expected"]:
        task, circuit = e["task"], e["circuit"]
        if e["structure_only"]:
            devs = [d for d in e["structure_deviations"].values() if d is not None]
            if len(devs) == 1:
                spread = f"best deviation {devs[0]:.2f}"
            elif devs:
                spread = (
                    f"best deviations {min(devs):.2f}–{max(devs):.2f}, median {median(devs):.2f}"
                )
            else:
                spread = "nothing to compare"
            more = e["structure_only"]
            out.append(
                f"{circuit}: its structure embeds in {more} more {task} model{'s' * (more > 1)} "
                f"but fails the functional check there ({spread}; tolerance "
                f"{report['tolerance']})."
            )
        first = e.get("first_layer")
        if first and not e["met"]:
            out.append(
                f"{circuit}: its first layer alone ({first['describes']}) is verified in "
                f"{_fraction(first['found'], first['total'])} {task} models."
            )
        units = report["hidden_units"].get(task, {})
        if units and not e["met"]:
            total = e["total"]
            common = ", ".join(
                f"{label}{'*' if _outside(label, domains, task_domain[task]) else ''} {n}/{total}"
                for label, n in list(units.items())[:6]
            )
            out.append(f"{circuit}: {task} models with a hidden unit that is {common}.")
            kinds = report["hidden_unit_recipes"].get(task, {})
            shown = "; ".join(f"{k} {n}" for k, n in list(kinds.items())[:3])
            out.append(f"{circuit}: {task} models by the set of their units' circuits: {shown}.")
    if any("*" in line for line in out):
        out.append(
            "* judged outside its declared input domain: a signed circuit on {0,1} inputs "
            "(there greater is x_a AND NOT x_b, and positive, identity and abs are x)."
        )
    planted = report["planted_control"]
    hit = sum(v["found"] for v in planted.values())
    total = sum(v["total"] for v in planted.values())
    missed = [c for c, v in planted.items() if v["found"] < v["total"]]
    out.append(
        f"planted control: {hit}/{total} planted circuits found"
        + (f" — missed: {', '.join(missed)}" if missed else " (every circuit, every plant)")
        + "."
    )
    shuffled = [(c, v) for c, v in report["shuffled_control"].items() if v.get("task")]
    hits = sum(v["task_found"] for _, v in shuffled)
    out.append(
        f"shuffled-label control: the task's circuit in {hits}/"
        f"{sum(v['task_total'] for _, v in shuffled)} models trained on its permuted targets."
    )
    diffs = report["normalized"]["differences"]
    if not report["normalized"]["searched"]:
        out.append("normalized copies: none differ from the models as ingested.")
    elif not diffs:
        out.append("normalized copies (--normalize exact): the same verdict everywhere.")
    else:
        deep = sum(d["offsets"] and min(d["offsets"]) >= 1 for d in diffs)
        out.append(
            f"normalized copies (--normalize exact): {len(diffs)} (circuit, model) verdicts "
            f"differ, {deep} of them only through embeddings at layer offset >= 1 (hidden "
            "units judged on {0,1}, which `rescale` changes the meaning of): "
            + ", ".join(f"{d['circuit']} in {d['model']}" for d in diffs[:4])
            + ("…" if len(diffs) > 4 else "")
            + "."
        )
    return out


def _outside(label: str, domains: Mapping[str, str], task_domain: str) -> bool:
    circuit = label.split("(", 1)[0]
    return domains.get(circuit, task_domain) != task_domain
