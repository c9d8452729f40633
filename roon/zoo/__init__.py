"""The zoo: small ReLU MLPs trained offline on tasks whose circuits are known.

``roon zoo train DIR`` (or :func:`train_zoo`) trains several seeds and hidden widths of
each task in :data:`TASKS` — gates on {0,1}ⁿ, piecewise-linear arithmetic on [−1, 1]ⁿ,
scikit-learn's bundled digits — plus shuffled-label controls, and saves every model as
safetensors with a JSON card beside it. Nothing is downloaded; the default zoo trains in
well under a minute on two CPU cores, the same bytes every time.

Example:
    >>> from roon.zoo import TASKS, train_zoo, load_card  # doctest: +SKIP
    >>> result = train_zoo("zoo", ["xor", "abs"], seeds=2)  # doctest: +SKIP
    >>> load_card(result.models[0].path)["metrics"]["accuracy"]  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

from roon.zoo.tasks import CONTROL_PREFIX, TASKS, Dataset, Task, resolve_tasks, task_names
from roon.zoo.train import (
    TaskSummary,
    TrainedModel,
    ZooModel,
    ZooResult,
    load_card,
    load_zoo,
    model_name,
    train_model,
    train_zoo,
)

__all__ = [
    "CONTROL_PREFIX",
    "TASKS",
    "Dataset",
    "Task",
    "TaskSummary",
    "TrainedModel",
    "ZooModel",
    "ZooResult",
    "load_card",
    "load_zoo",
    "model_name",
    "resolve_tasks",
    "task_names",
    "train_model",
    "train_zoo",
]
