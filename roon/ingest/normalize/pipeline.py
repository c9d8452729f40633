"""Rules and the pipeline that composes them.

A :class:`Rule` is a pure function ``MLP -> (MLP, Step)``: it wraps a transform
(``MLP -> (MLP, changes)``) with parameter checking and a :class:`Step` record that
names the parent and child models and the largest output change on a fixed, seeded
sample of the input box (:func:`roon.ingest.normalize.bounds.domain_sample`).
:func:`normalize` runs rules in order and returns the final model, whose
``provenance`` ends with the step dicts, plus the steps.

Example:
    >>> import numpy as np
    >>> from roon import MLP, Layer
    >>> from roon.ingest.normalize import normalize
    >>> m = MLP([Layer(np.eye(2), np.zeros(2)), Layer(np.ones((1, 2)), np.zeros(1), "linear")])
    >>> child, steps = normalize(m, "rescale,canonical")
    >>> [s.rule for s in steps], steps[-1].max_output_change
    (['rescale', 'canonical'], 0.0)
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.ingest.normalize import approx_rules, canonical, exact_rules
from roon.ingest.normalize.bounds import (
    compact_bounds,
    declared_input_bounds,
    resolve_input_bounds,
)
from roon.ingest.normalize.records import Step, finish_step
from roon.mlp import MLP, require_mlp

__all__ = ["Rule", "RULES", "PRESETS", "normalize", "resolve_rules", "domain_note"]

Transform = Callable[..., tuple[MLP, dict[str, Any]]]
# Keyword arguments of transforms that choose how a rule runs, not what it computes: they
# are not rule parameters and are not recorded in lineage.
RUNTIME_OPTIONS = frozenset({"backend"})
Prepare = Callable[[MLP, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def _check_threshold(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidArgumentError(f"parameter {name}={value!r} is not a number")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"parameter {name}={value!r}; give a finite number >= 0")
    return float(value)


def _plain(mlp: MLP, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for key, value in params.items():
        if key.endswith(("_threshold", "_eps")):
            params[key] = _check_threshold(key, value)
        elif key.endswith("_rescore") and not isinstance(value, bool | np.bool_):
            raise InvalidArgumentError(f"parameter {key}={value!r}; give True or False")
        elif key.endswith("_rescore"):
            params[key] = bool(value)
    return params, dict(params)


def _bounds(mlp: MLP, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    lo, hi = resolve_input_bounds(mlp, params["input_bounds"])
    return {"input_bounds": np.stack([lo, hi], axis=1)}, {"input_bounds": compact_bounds(lo, hi)}


def _sample(mlp: MLP, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    threshold = _check_threshold("variance_threshold", params["variance_threshold"])
    sample = approx_rules.as_sample(params["sample"], mlp)
    recorded = {"sample": approx_rules.sample_digest(sample, mlp), "variance_threshold": threshold}
    return {"sample": sample, "variance_threshold": threshold}, recorded


@dataclass(frozen=True)
class Rule:
    """A named normalizer rule: ``rule(mlp, **params) -> (child, step)``.

    Attributes:
        name: the name the CLI and pipelines use.
        description: one line for help texts and the README.
        exact: True when the function is preserved by construction.
        transform: ``(mlp, **params) -> (child, changes)``; its keyword-only parameters
            with defaults are the rule's parameters.
        prepare: checks parameters and returns ``(for the transform, for the record)``.
    """

    name: str
    description: str
    exact: bool
    transform: Transform
    prepare: Prepare = _plain

    @property
    def params(self) -> dict[str, Any]:
        """Parameter names and defaults."""
        sig = inspect.signature(self.transform)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in RUNTIME_OPTIONS
        }

    @property
    def takes_backend(self) -> bool:
        """Whether the transform computes signatures (and so takes a ``backend``)."""
        return "backend" in inspect.signature(self.transform).parameters

    def __call__(
        self, mlp: MLP, *, input_bounds: Any = None, backend: str = "auto", **params: Any
    ) -> tuple[MLP, Step]:
        """Apply the rule. ``input_bounds`` also sets the box the output change is measured on.

        ``backend`` is the signature backend of rules that compute signatures; it changes
        how fast they run, never their result, so it is not recorded in the step.
        """
        defaults = self.params
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            known = ", ".join(defaults) or "none"
            raise InvalidArgumentError(
                f"rule {self.name!r} has no parameter {unknown[0]!r}; it takes {known}"
            )
        used = {**defaults, **params}
        if "input_bounds" in defaults:
            used["input_bounds"] = input_bounds
        run, recorded = self.prepare(mlp, used)
        if self.takes_backend:
            run = {**run, "backend": backend}
        child, changes = self.transform(mlp, **run)
        return finish_step(mlp, child, self.name, recorded, changes, self.exact, input_bounds)


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "zero-out",
            "drop hidden neurons whose outgoing weights are all zero, or whose incoming "
            "weights and bias are all zero with act(0) = 0 (bit-exact)",
            True,
            exact_rules.zero_out,
        ),
        Rule(
            "constant",
            "drop hidden neurons constant on the input box (interval bounds), folding "
            "the constant into the next bias (exact)",
            True,
            exact_rules.constant,
            _bounds,
        ),
        Rule(
            "exact-duplicates",
            "merge hidden neurons whose [w, b] are exact positive multiples (ReLU/linear; "
            "identical rows otherwise), adding the scaled outgoing weights (exact)",
            True,
            exact_rules.exact_duplicates,
        ),
        Rule(
            "rescale",
            "scale each hidden neuron's [w, b] by the power of two putting max|[w, b]| in "
            "[1, 2), the inverse into its outgoing weights (ReLU/linear only; bit-exact)",
            True,
            exact_rules.rescale,
        ),
        Rule(
            "canonical",
            "order hidden neurons by signature hash, then weights, layer by layer from the "
            "input, so hidden-unit permutations give identical weights (exact)",
            True,
            canonical.canonical,
        ),
        Rule(
            "dead",
            "drop hidden neurons with 1.1·‖w_in‖·‖w_out‖ < dead_threshold (0.05), all "
            "scored on the original weights (dead_rescore: layer by layer as edited), "
            "folding act(b)·w_out into the next bias (approximate)",
            False,
            approx_rules.dead,
        ),
        Rule(
            "duplicates",
            "repeatedly merge the first pair whose [w, b] differ by < duplicate_threshold "
            "(0.1) in L2: mean rows, summed outgoing weights (approximate)",
            False,
            approx_rules.duplicates,
        ),
        Rule(
            "low-variance",
            "drop hidden neurons whose output variance over a sample (.npy/.pt) is "
            "< variance_threshold (1e-6), folding their mean into the next bias "
            "(approximate)",
            False,
            approx_rules.low_variance,
            _sample,
        ),
    )
}

# Named rule lists; a preset name may appear wherever a rule name may.
PRESETS: dict[str, tuple[str, ...]] = {
    "exact": ("constant", "exact-duplicates", "zero-out", "rescale", "canonical"),
}

RuleLike = str | Rule | Callable[..., Any]


def resolve_rules(rules: str | Sequence[RuleLike]) -> list[Rule | Callable[..., Any]]:
    """Rule names (comma-separated or a list), presets, rules and callables → rules.

    Raises:
        InvalidArgumentError: an unknown rule name, or no rules at all.
    """
    if isinstance(rules, str):
        items: list[Any] = rules.split(",")
    elif isinstance(rules, Rule) or callable(rules):
        items = [rules]
    elif isinstance(rules, Sequence):
        items = list(rules)
    else:
        raise InvalidArgumentError(
            f"rules is a {type(rules).__name__}; give names such as 'dead,canonical', a "
            "list of names, rules or callables"
        )
    out: list[Rule | Callable[..., Any]] = []
    for item in items:
        if isinstance(item, str):
            name = item.strip()
            if not name:
                continue
            if name in PRESETS:
                out.extend(RULES[n] for n in PRESETS[name])
            elif name in RULES:
                out.append(RULES[name])
            else:
                known = ", ".join([*RULES, *PRESETS])
                raise InvalidArgumentError(f"unknown normalizer rule {name!r}; rules are {known}")
        elif callable(item):
            out.append(item)
        else:
            raise InvalidArgumentError(f"rule {item!r} is neither a rule name nor a callable")
    if not out:
        raise InvalidArgumentError(
            "no normalizer rules given; e.g. rules='dead,duplicates,canonical'"
        )
    return out


def domain_note(mlp: MLP, rules: str | Sequence[RuleLike], input_bounds: Any = None) -> str | None:
    """What to tell the user when a rule that depends on the input box ran without one.

    ``constant`` decides on the input box; when neither ``input_bounds`` nor the model
    (metadata, .nnet header) declares one, it assumes every real input.
    """
    names = {r.name for r in resolve_rules(rules) if isinstance(r, Rule)}
    if "constant" not in names or declared_input_bounds(mlp, input_bounds) is not None:
        return None
    return (
        "no input domain declared: 'constant' kept the function on every real input "
        "(give --input-bounds LO,HI for a box)"
    )


def _accepted(fn: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    sig = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in sig):
        return dict(params)
    names = {p.name for p in sig}
    return {k: v for k, v in params.items() if k in names}


def _call_custom(fn: Callable[..., Any], mlp: MLP, params: Mapping[str, Any]) -> tuple[MLP, Step]:
    """Run a user callable returning ``(MLP, Step)`` or ``(MLP, changes mapping)``."""
    used = _accepted(fn, params)
    child, info = fn(mlp, **used)
    if isinstance(info, Step):
        return child, info
    name = getattr(fn, "__name__", type(fn).__name__)
    recorded = json.loads(json.dumps(used, default=str))
    return finish_step(mlp, child, name, recorded, dict(info), False, params.get("input_bounds"))


def normalize(
    mlp: MLP, rules: str | Sequence[RuleLike] = "exact", *, backend: str = "auto", **params: Any
) -> tuple[MLP, list[Step]]:
    """Apply normalizer rules in order.

    Args:
        mlp: the model.
        rules: names (``"dead,duplicates,canonical"`` or a list), presets (``exact``),
            :class:`Rule` objects or callables ``(mlp, **params) -> (MLP, Step | changes)``.
        **params: rule parameters by name (``dead_threshold``, ``dead_rescore``,
            ``duplicate_threshold``,
            ``duplicate_eps``, ``variance_threshold``, ``sample``, ``domain``,
            ``signature``) and ``input_bounds`` (the input box; see
            :func:`~roon.ingest.normalize.bounds.resolve_input_bounds`). Each rule takes
            the ones it knows.
        backend: signature backend of the rules that compute signatures (``canonical``).

    Returns:
        ``(child, steps)``: the final model (its provenance extended by every step) and
        one :class:`Step` per rule, no-ops included. A child that differs from ``mlp`` is
        named ``<name>+<rules>`` (e.g. ``xor+exact``, ``net+dead,canonical``), so the
        catalogue never holds two models of one name from one normalization.

    Raises:
        InvalidArgumentError: ``mlp`` is not an MLP, unknown rule or parameter names, or
            invalid parameter values.
        UnsupportedArchitectureError: ``rescale`` on a non-homogeneous activation.
    """
    mlp = require_mlp(mlp)
    selected = resolve_rules(rules)
    known = {"input_bounds"}.union(*(r.params for r in RULES.values()))
    custom = [f for f in selected if not isinstance(f, Rule)]
    for fn in custom:
        known.update(inspect.signature(fn).parameters)
    unknown = sorted(set(params) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise InvalidArgumentError(
            f"unknown normalizer parameter {unknown[0]!r}; parameters are {names}"
        )
    steps: list[Step] = []
    current = mlp
    for rule in selected:
        if isinstance(rule, Rule):
            mine = {k: v for k, v in params.items() if k in rule.params and k != "input_bounds"}
            bounds = params.get("input_bounds")
            current, step = rule(current, input_bounds=bounds, backend=backend, **mine)
        else:
            current, step = _call_custom(rule, current, params)
        steps.append(step)
    if current.id != mlp.id and current.name == mlp.name:
        current = current.replace(name=derived_name(mlp.name, rules))
    return current, steps


def derived_name(name: str, rules: str | Sequence[RuleLike]) -> str:
    """``<name>+<rules>``: the name of a model a normalization derived from ``name``.

    ``rules`` as given (``exact``, ``dead,canonical``); rule objects and callables by name.
    """
    if isinstance(rules, str):
        label = ",".join(r.strip() for r in rules.split(",") if r.strip())
    else:
        items = [rules] if isinstance(rules, Rule) or callable(rules) else list(rules)
        label = ",".join(
            r
            if isinstance(r, str)
            else str(getattr(r, "name", "") or getattr(r, "__name__", "rule"))
            for r in items
        )
    return f"{name or 'model'}+{label}"
