"""The demo's summary figure: tasks × library circuits, the share of models with each.

One row per task (the real tasks, then the shuffled-label controls, then the planted
control), one column per library circuit; a cell's colour is the fraction of the task's
models in which ``roon where`` verified the circuit, its text ``found/total``. A box marks
the circuit each task is built around; cells of a circuit judged outside its
declared input domain (a signed circuit on {0,1} inputs, where abs, identity and
positive are all ``x``) are hatched. matplotlib is imported inside the function, with the Agg
backend, so nothing needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["FIGURE_DPI", "FIGURE_SIZE", "summary_figure"]

# 13 × 9 inches at 100 dpi: 1300 × 900 pixels, room for 16 circuits and ~26 rows of
# cell labels at 7 points, readable on a laptop screen and in the README.
FIGURE_SIZE = (13.0, 9.0)
FIGURE_DPI = 100
PLANTED_ROW = "planted (own circuit)"


def _rows(report: Mapping[str, Any]) -> list[tuple[str, str, dict[str, tuple[int, int]]]]:
    """``(label, kind, {circuit: (found, total)})`` per row, real tasks first."""
    rows = []
    for kind in ("task", "control"):
        for task in report["tasks"]:
            if (kind == "control") != task["control"]:
                continue
            cells = {
                c: (by_task[task["name"]]["found"], by_task[task["name"]]["total"])
                for c, by_task in report["matrix"].items()
            }
            rows.append((f"{task['name']} ({task['models']})", kind, cells))
    planted = report["planted_control"]
    cells = {c: (v["found"], v["total"]) for c, v in planted.items()}
    total = sum(v["total"] for v in planted.values())
    rows.append((f"{PLANTED_ROW} ({total})", "planted", cells))
    return rows


def summary_figure(report: Mapping[str, Any], path: str | Path) -> Path:
    """Draw the heat map of ``report`` (a :func:`roon.zoo.demo.run_demo` report) to ``path``.

    Returns:
        The path written (PNG, :data:`FIGURE_SIZE` inches at :data:`FIGURE_DPI`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    circuits = [c["name"] for c in report["circuits"]]
    domain = {c["name"]: c["input_domain"] for c in report["circuits"]}
    task_domain = {t["name"]: t["input_domain"] for t in report["tasks"]}
    task_circuit = {t["name"]: t["circuit"] for t in report["tasks"]}
    rows = _rows(report)
    values = np.full((len(rows), len(circuits)), np.nan)
    for i, (_, _, cells) in enumerate(rows):
        for j, c in enumerate(circuits):
            found, total = cells.get(c, (0, 0))
            if total:
                values[i, j] = found / total

    fig = plt.figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    # fixed axes boxes (figure fractions): the heat map, and the colour bar beside it
    ax = fig.add_axes((0.15, 0.11, 0.76, 0.80))
    cax = fig.add_axes((0.925, 0.11, 0.015, 0.80))
    # grey where a row has no models for a circuit (the planted row, with fewer plants)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i, (label, kind, cells) in enumerate(rows):
        task = label.rsplit(" (", 1)[0]
        for j, c in enumerate(circuits):
            found, total = cells.get(c, (0, 0))
            if not total:
                continue
            outside = kind != "planted" and domain[c] != task_domain.get(task, domain[c])
            if outside:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="#ffffff59", linewidth=0))  # fmt: skip
            colour = "white" if values[i, j] < 0.6 else "black"
            ax.text(j, i, f"{found}/{total}", ha="center", va="center", fontsize=7,
                    color=colour, style="italic" if outside else "normal")  # fmt: skip
            expected = kind == "planted" or task_circuit.get(task) == c
            if expected:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor="#e8432d", linewidth=2.0))  # fmt: skip
    kinds = [kind for _, kind, _ in rows]
    for i in range(1, len(rows)):
        if kinds[i] != kinds[i - 1]:
            ax.axhline(i - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(len(circuits)), circuits, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=8)
    ax.set_xlabel("library circuit (roon circuits)")
    ax.set_ylabel("models trained on (number of models)")
    models = report["zoo"]["models"]
    ax.set_title(
        f"Where the library circuits appear in {models} zoo models: verified embeddings "
        "(roon where)\nred box: the circuit the task is built around (planted row: each "
        "circuit in its own plants); hatched: circuit outside its declared input domain",
        fontsize=10,
    )
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("fraction of the row's models with the circuit")
    out = Path(path)
    fig.savefig(out, dpi=FIGURE_DPI)
    plt.close(fig)
    return out
