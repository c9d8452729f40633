"""Neurons whose input-space behaviour recurs across models.

Two neurons (of any depth, in any models) recur when they fire on exactly the same points
of the same input space: equal ``space_id`` and equal ``hash`` in the ``input_space``
table. With ``complements``, a neuron firing exactly where another does *not* counts as
the same feature negated (its ``hash`` equals the other's ``complement_hash``): groups
are keyed by the smaller of the two digests, and the members that fire on the
complement are listed apart.

Constant patterns (a neuron firing on no point, or on every point) are left out by
default: a dead unit recurs everywhere and says nothing. So are models derived by
normalization (the same function as the model they came from), as in ``roon recurring``.

Tasks: a model's task is its name without a trailing run or seed number
(``xor_seed3`` → ``xor``, ``mlp-7`` → ``mlp``); each pattern reports in how many of each
task's models it appears.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from roon.errors import InvalidArgumentError

__all__ = ["RecurringPattern", "recurring_input_space", "task_of"]

# "<task><sep>[seed|run|s|r]<digits>" or "<task>(seed|run)<digits>"
_RUN_SUFFIX = re.compile(
    r"^(?P<task>.+?)(?:[-_.](?:seed|run|s|r)?\d+|(?:seed|run)\d+)$", re.IGNORECASE
)


def task_of(name: str) -> str:
    """A model's task: its name without a trailing seed or run number (``xor_seed3`` →
    ``xor``, ``mlp-7`` → ``mlp``); a name that is only a number stays as it is."""
    found = _RUN_SUFFIX.match(name)
    return found.group("task") if found else name


@dataclass(frozen=True)
class RecurringPattern:
    """One firing pattern found in several models.

    Attributes:
        hash: the pattern's digest (with complements: of the orientation most of the
            neurons compute, the smaller digest on a tie).
        space: the space label (``binary``, ``signed``, ``box``, ``probe:...``).
        space_id: the point set's digest.
        points: number of points.
        fire_count: points on which the pattern fires.
        pattern: hex of the pattern (small spaces), else None.
        models: distinct models with a neuron computing it.
        neurons: such neurons.
        layers: the layers they sit in.
        found_in: model names, sorted.
        neuron_ids: the neurons firing on the pattern itself.
        complemented: the neurons firing exactly on its complement (with complements).
        tasks: task → ``(models with the pattern, models of the task in the catalogue)``.
    """

    hash: str
    space: str
    space_id: str
    points: int
    fire_count: int
    pattern: str | None
    models: int
    neurons: int
    layers: tuple[int, ...]
    found_in: tuple[str, ...]
    neuron_ids: tuple[str, ...]
    complemented: tuple[str, ...]
    tasks: dict[str, tuple[int, int]]


_QUERY = """
WITH rows AS (
    SELECT i.*, m.name,
           CASE WHEN $complements AND i.complement_hash < i.hash
                THEN i.complement_hash ELSE i.hash END AS key
    FROM input_space i JOIN models m USING (model_id) JOIN provenance p USING (model_id)
    WHERE ($constant OR (i.fire_count > 0 AND i.fire_count < i.points))
      AND ($derived OR p.format <> 'derived')
      AND ($space IS NULL OR i.space = $space)
)
SELECT space_id, key, any_value(space) AS space, any_value(points) AS points,
       count(DISTINCT model_id) AS models, count(*) AS neurons,
       list(DISTINCT layer ORDER BY layer) AS layers,
       list(DISTINCT name ORDER BY name) AS found_in,
       list(neuron_id ORDER BY neuron_id) FILTER (WHERE hash = key) AS direct,
       list(neuron_id ORDER BY neuron_id) FILTER (WHERE hash <> key) AS flipped,
       any_value(fire_count) FILTER (WHERE hash = key) AS fire_direct,
       any_value(points - fire_count) FILTER (WHERE hash <> key) AS fire_flipped,
       any_value(pattern) FILTER (WHERE hash = key) AS pattern_direct,
       any_value(pattern) FILTER (WHERE hash <> key) AS pattern_flipped,
       list(DISTINCT [model_id, name]) AS named,
       any_value(CASE WHEN hash = key THEN complement_hash ELSE hash END) AS other
FROM rows
GROUP BY space_id, key
HAVING count(DISTINCT model_id) >= $min_models
ORDER BY models DESC, neurons DESC, key
"""


def _complement_hex(pattern: str | None, points: int) -> str | None:
    if pattern is None:
        return None
    return format(~int(pattern, 16) & ((1 << points) - 1), "x")


def recurring_input_space(
    catalogue: str | os.PathLike[str],
    *,
    min_models: int = 2,
    complements: bool = False,
    include_constant: bool = False,
    include_derived: bool = False,
    space: str | None = None,
    limit: int | None = None,
) -> list[RecurringPattern]:
    """Input-space patterns that recur across models, most frequent first.

    Args:
        catalogue: the catalogue directory.
        min_models: report patterns found in at least this many models (>= 1).
        complements: treat a pattern and its complement as one feature.
        include_constant: also report never- and always-firing patterns.
        include_derived: also count models derived by normalization (the same function
            as their parent; left out by default, as in :func:`roon.recurring`).
        space: only this space label (``binary``, ``box``, ...); default all.
        limit: at most this many patterns.

    Returns:
        :class:`RecurringPattern` rows ordered by models, then neurons (descending), then hash.

    Raises:
        CatalogueError: no catalogue, or a damaged file (named, with the fix).
        InvalidArgumentError: ``min_models`` or ``limit`` below 1, a ``space`` not a str.

    Example:
        >>> top = recurring_input_space("roon-catalogue", complements=True)  # doctest: +SKIP
        >>> top[0].models, top[0].found_in, top[0].tasks
    """
    from roon.query.scan import guarded_scan

    if isinstance(min_models, bool) or not isinstance(min_models, int) or min_models < 1:
        raise InvalidArgumentError(f"min_models must be an integer >= 1; got {min_models!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be an integer >= 1; got {limit!r}")
    if space is not None and not isinstance(space, str):
        raise InvalidArgumentError(
            f"space must be a space label such as 'binary' or 'box', not {type(space).__name__}"
        )
    params = {
        "complements": bool(complements),
        "constant": bool(include_constant),
        "derived": bool(include_derived),
        "space": space,
        "min_models": min_models,
    }
    with guarded_scan(catalogue) as con:
        rows = con.execute(_QUERY, params).fetchall()
        names = [
            r[0]
            for r in con.execute(
                "SELECT m.name FROM models m JOIN provenance p USING (model_id) "
                "WHERE $derived OR p.format <> 'derived'",
                {"derived": bool(include_derived)},
            ).fetchall()
        ]
    per_task: dict[str, int] = {}
    for name in names:
        per_task[task_of(name)] = per_task.get(task_of(name), 0) + 1
    out = []
    for row in rows[:limit] if limit else rows:
        (space_id, key, label, points, models, neurons, layers, found_in) = row[:8]
        direct, flipped, fire_d, fire_f, pat_d, pat_f, named, other = row[8:]
        direct, flipped = list(direct or ()), list(flipped or ())
        points = int(points)
        if direct:
            fire, pattern = int(fire_d), pat_d
        else:
            fire, pattern = points - int(fire_f), _complement_hex(pat_f, points)
        if len(flipped) > len(direct):  # name the orientation most neurons compute
            key, other, direct, flipped = other, key, flipped, direct
            fire, pattern = points - fire, _complement_hex(pattern, points)
        tasks: dict[str, int] = {}
        for _, name in named:
            tasks[task_of(name)] = tasks.get(task_of(name), 0) + 1
        out.append(
            RecurringPattern(
                hash=key,
                space=label,
                space_id=space_id,
                points=points,
                fire_count=fire,
                pattern=pattern,
                models=int(models),
                neurons=int(neurons),
                layers=tuple(layers),
                found_in=tuple(found_in),
                neuron_ids=tuple(direct),
                complemented=tuple(flipped),
                tasks={t: (c, per_task.get(t, c)) for t, c in sorted(tasks.items())},
            )
        )
    return out
