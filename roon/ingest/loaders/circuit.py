"""Circuit files: a small hand-written MLP in JSON, and the reference library roon ships.

A circuit file holds one network and the facts a reader needs to trust it::

    {"name": "xor", "description": "...", "computes": "x1 XOR x2 on {0,1}^2: ...",
     "source": "Goodfellow et al., Deep Learning, 2016, section 6.1 ...",
     "input_domain": "binary",
     "layers": [{"weight": [[1, -1], [-1, 1]], "bias": [0, 0], "activation": "relu"},
                {"weight": [[1, 1]], "bias": [0], "activation": "linear"}]}

``weight`` is ``out × in`` (a row per neuron), ``input_domain`` is ``binary`` ({0,1}) or
``signed`` (real inputs, judged on {-1,0,1}), and an optional ``input_bounds: [lo, hi]``
says which real range the circuit is meant for. The file is read with plain
``json.loads`` and nothing in it is executed.

The library lives in the repository's top-level ``catalogue/`` folder, one file per
circuit named ``<name>.json``, installed as the package ``roon.circuits`` and read with
:mod:`importlib.resources`, so an installed roon finds it without the source tree.

Like every loader this module is pure: it never touches a catalogue.

Example:
    >>> import numpy as np
    >>> from roon.ingest.loaders.circuit import load_circuit
    >>> xor = load_circuit("XOR")
    >>> xor.mlp.widths
    (2, 2, 1)
    >>> xor.evaluate(np.array([[0, 0], [0, 1], [1, 0], [1, 1]])).ravel().tolist()
    [0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError, RoonError, one_line
from roon.mlp import MLP, Layer, canonical_activation

__all__ = [
    "CIRCUIT_DOMAINS",
    "MAX_CIRCUIT_BYTES",
    "Circuit",
    "circuit_names",
    "list_circuits",
    "load_circuit",
]

CIRCUIT_DOMAINS = ("binary", "signed")
"""Input domains a circuit may declare (the signature domains: README, "Signatures")."""

MAX_CIRCUIT_BYTES = 4 * 1024 * 1024
"""Largest circuit file read: a reference circuit has a few dozen weights, and a 4 MiB file
already holds ~10⁶ numbers; anything bigger is a model (use ``load_model``) or junk."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TEXT_KEYS = ("name", "description", "computes", "source", "input_domain")
_REQUIRED = (*_TEXT_KEYS, "layers")
_OPTIONAL = ("input_bounds",)
_LAYER_KEYS = ("weight", "bias", "activation")
_LIBRARY_PACKAGE = "roon.circuits"
_LIBRARY_PREFIX = "library:"


@dataclass(frozen=True)
class Circuit:
    """A reference circuit: a small MLP with what it computes and where it comes from.

    Attributes:
        name: a simple identifier (``[a-z0-9_-]``), also the MLP's name.
        description: what the circuit is and how it is built.
        computes: the formula in words, including the output values on the domain.
        source: the citation the construction comes from.
        input_domain: ``binary`` ({0,1}) or ``signed`` (real inputs, judged on {-1,0,1}).
        mlp: the network; its metadata holds description, computes, source, input_domain
            (and input_bounds when given).
        path: the file as given, or ``library:<name>`` for a library circuit.
        input_bounds: the real input range ``(lo, hi)`` the circuit is meant for, if stated.
    """

    name: str
    description: str
    computes: str
    source: str
    input_domain: str
    mlp: MLP
    path: str
    input_bounds: tuple[float, float] | None = None

    @property
    def input_width(self) -> int:
        return self.mlp.input_width

    @property
    def output_width(self) -> int:
        return self.mlp.output_width

    def evaluate(self, x: Any) -> np.ndarray:
        """The circuit's outputs for a batch of inputs, in float64.

        Args:
            x: ``[N, inputs]`` array-like of real numbers.

        Returns:
            ``[N, outputs]`` float64 array (the MLP's forward pass).

        Raises:
            InvalidArgumentError: ``x`` is not a 2-D array of numbers with one column per
                circuit input.
        """
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"circuit {self.name!r}: inputs are not an array of numbers ({one_line(exc)})"
            ) from None
        if arr.ndim != 2 or arr.shape[1] != self.input_width:
            raise InvalidArgumentError(
                f"circuit {self.name!r} takes an [N, {self.input_width}] array of inputs, "
                f"not shape {list(arr.shape)}"
            )
        return self.mlp.forward(arr)

    def as_dict(self) -> dict[str, Any]:
        """The circuit in the file format (``load_circuit`` of its JSON gives it back)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "computes": self.computes,
            "source": self.source,
            "input_domain": self.input_domain,
        }
        if self.input_bounds is not None:
            out["input_bounds"] = [_plain(v) for v in self.input_bounds]
        out["layers"] = [
            {
                "weight": [[_plain(v) for v in row] for row in layer.weight.tolist()],
                "bias": [_plain(v) for v in layer.bias.tolist()],
                "activation": layer.activation,
            }
            for layer in self.mlp.layers
        ]
        return out


def load_circuit(source: str | os.PathLike[str]) -> Circuit:
    """Load a circuit from a ``.json`` file, or a library circuit by name.

    A path-like object, or text that ends in ``.json`` or contains a path separator, is a
    file; any other text is a library name, matched case-insensitively.

    Args:
        source: a circuit file, or the name of a library circuit (see :func:`circuit_names`).

    Returns:
        The validated circuit.

    Raises:
        ModelFormatError: the file is missing, too large, not JSON, or not a valid
            circuit; the one-line message starts with the file as given.
        InvalidArgumentError: ``source`` names no library circuit (the message lists
            the library), or is neither text nor a path.

    Example:
        >>> load_circuit("min").mlp.widths
        (2, 3, 1)
    """
    if isinstance(source, os.PathLike):
        return _load_file(Path(source), os.fspath(source))
    if not isinstance(source, str):
        raise InvalidArgumentError(
            f"load_circuit takes a .json file or a library circuit name, "
            f"not {type(source).__name__}"
        )
    if _looks_like_path(source):
        return _load_file(Path(source), source)
    key = source.strip().lower()
    for circuit in _library():
        if circuit.name == key:
            return circuit
    raise InvalidArgumentError(
        f"no library circuit named {source!r}; the library has {', '.join(circuit_names())} "
        "(or give a .json circuit file)"
    )


def list_circuits() -> list[Circuit]:
    """The library's circuits, sorted by name."""
    return list(_library())


def circuit_names() -> list[str]:
    """The library's circuit names, sorted."""
    return [circuit.name for circuit in _library()]


# -- reading -------------------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    separators = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    return text.lower().endswith(".json") or any(sep in text for sep in separators)


def _load_file(path: Path, label: str) -> Circuit:
    if not path.exists():
        raise ModelFormatError(f"{label}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{label}: is a directory, not a circuit .json file")
    if path.suffix.lower() != ".json":
        raise ModelFormatError(
            f"{label}: a circuit file is JSON and ends in .json; for model files use load_model"
        )
    try:
        size = path.stat().st_size
        if size > MAX_CIRCUIT_BYTES:
            raise ModelFormatError(
                f"{label}: is {size} bytes; a circuit file holds at most "
                f"{MAX_CIRCUIT_BYTES} (for a large network use a model file and load_model)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{label}: cannot read ({exc.strerror or exc})") from exc
    return _parse(data, label, label)


def _parse(data: bytes, label: str, path: str) -> Circuit:
    """Validate a circuit file's bytes; every error names ``label`` and the problem."""
    try:
        return _build(_decode(data), path, hashlib.sha256(data).hexdigest())
    except RoonError as exc:
        raise type(exc)(f"{label}: {one_line(exc)}") from None


def _decode(data: bytes) -> Any:
    if len(data) > MAX_CIRCUIT_BYTES:
        raise ModelFormatError(f"is {len(data)} bytes; a circuit file holds at most 4 MiB")
    if not data.strip():
        raise ModelFormatError("is an empty file; a circuit file is a JSON object")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelFormatError("is not a circuit: JSON nested too deeply") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ModelFormatError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _build(doc: Any, path: str, digest: str) -> Circuit:
    if not isinstance(doc, dict):
        raise ModelFormatError(
            f"top level is a JSON {_json_type(doc)}; a circuit file is a JSON object"
        )
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        raise ModelFormatError(
            f"missing key {missing[0]!r}; a circuit needs {', '.join(_REQUIRED)}"
        )
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ModelFormatError(
            f"unknown key {unknown[0]!r}; a circuit has {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    for key in _TEXT_KEYS:
        if not isinstance(doc[key], str):
            raise ModelFormatError(f"{key!r} is a JSON {_json_type(doc[key])}; expected a string")
    name = doc["name"]
    if not _NAME.fullmatch(name):
        raise ModelFormatError(
            f"name {name!r} is not a simple identifier: 1-64 characters of a-z, 0-9, _ and -, "
            "starting with a letter or digit"
        )
    domain = doc["input_domain"]
    if domain not in CIRCUIT_DOMAINS:
        raise ModelFormatError(
            f"unknown input_domain {domain!r}; expected {' or '.join(CIRCUIT_DOMAINS)}"
        )
    bounds = _bounds(doc["input_bounds"]) if "input_bounds" in doc else None
    layers = _layers(doc["layers"])
    metadata: dict[str, Any] = {
        "description": doc["description"],
        "computes": doc["computes"],
        "source": doc["source"],
        "input_domain": domain,
    }
    if bounds is not None:
        metadata["input_bounds"] = list(bounds)
    provenance = {
        "step": "load",
        "format": "circuit",
        "source": path if path.startswith(_LIBRARY_PREFIX) else str(Path(path).resolve()),
        "sha256": digest,
        "activation_assumed": False,
    }
    mlp = MLP(tuple(layers), name=name, metadata=metadata, provenance=(provenance,))
    return Circuit(
        name=name,
        description=doc["description"],
        computes=doc["computes"],
        source=doc["source"],
        input_domain=domain,
        mlp=mlp,
        path=path,
        input_bounds=bounds,
    )


def _layers(value: Any) -> list[Layer]:
    if not isinstance(value, list):
        raise ModelFormatError(f"'layers' is a JSON {_json_type(value)}; expected a list")
    if not value:
        raise ModelFormatError("'layers' is empty; a circuit has at least one layer")
    layers = []
    width: int | None = None
    for i, spec in enumerate(value):
        where = f"layer {i}"
        if not isinstance(spec, dict):
            raise ModelFormatError(f"{where} is a JSON {_json_type(spec)}; expected an object")
        missing = [key for key in _LAYER_KEYS if key not in spec]
        if missing:
            raise ModelFormatError(
                f"{where} is missing key {missing[0]!r}; a layer has {', '.join(_LAYER_KEYS)}"
            )
        unknown = sorted(set(spec) - set(_LAYER_KEYS))
        if unknown:
            raise ModelFormatError(
                f"{where} has unknown key {unknown[0]!r}; a layer has {', '.join(_LAYER_KEYS)}"
            )
        weight = _matrix(spec["weight"], f"{where} weight")
        if width is not None and weight.shape[1] != width:
            raise ModelFormatError(
                f"{where} weight rows have {weight.shape[1]} entries (fan-in) but layer {i - 1} "
                f"has {width} neurons"
            )
        bias = _vector(spec["bias"], f"{where} bias")
        if bias.shape[0] != weight.shape[0]:
            raise ModelFormatError(
                f"{where} bias has {bias.shape[0]} entries but weight has {weight.shape[0]} "
                "rows (one per neuron)"
            )
        activation = spec["activation"]
        if not isinstance(activation, str):
            raise ModelFormatError(
                f"{where} activation is a JSON {_json_type(activation)}; expected a name"
            )
        try:
            activation = canonical_activation(activation)
        except RoonError as exc:
            raise ModelFormatError(f"{where}: {one_line(exc)}") from None
        layers.append(Layer(weight, bias, activation))
        width = weight.shape[0]
    return layers


def _matrix(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise ModelFormatError(
            f"{what} is {_described(value)}; expected a non-empty list of rows (out × in)"
        )
    rows = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise ModelFormatError(
                f"{what} row {r} is {_described(row)}; expected a non-empty list of numbers"
            )
        if len(row) != len(value[0]):  # row 0 passed the check above
            raise ModelFormatError(
                f"{what} is ragged: row {r} has {len(row)} entries, row 0 has {len(value[0])}"
            )
        rows.append([_number(v, f"{what}[{r}][{c}]") for c, v in enumerate(row)])
    return np.array(rows, dtype=np.float64)


def _vector(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise ModelFormatError(
            f"{what} is {_described(value)}; expected a non-empty list of numbers"
        )
    return np.array([_number(v, f"{what}[{i}]") for i, v in enumerate(value)], dtype=np.float64)


def _bounds(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ModelFormatError(f"input_bounds is {_described(value)}; expected [lo, hi]")
    lo, hi = (_number(v, "input_bounds") for v in value)
    if not lo < hi:
        raise ModelFormatError(f"input_bounds [{lo:g}, {hi:g}] is empty; expected lo < hi")
    return lo, hi


def _number(value: Any, what: str) -> float:
    # bool is an int subclass in Python; JSON true/false are not numbers
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFormatError(f"{what} is {_described(value)}; expected a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        bad = "NaN" if math.isnan(number) else "infinite"
        raise ModelFormatError(f"{what} is {bad}; circuit weights must be finite numbers")
    return number


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _described(value: Any) -> str:
    if isinstance(value, list) and not value:
        return "an empty list"
    return f"a JSON {_json_type(value)}"


def _plain(value: float) -> int | float:
    """Integer-valued weights as JSON integers, the way circuit files are written."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


# -- the library ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _library() -> tuple[Circuit, ...]:
    """Every circuit of the installed library, sorted by name (read once per process)."""
    from importlib.resources import files

    root = files(_LIBRARY_PACKAGE)
    circuits = []
    for entry in root.iterdir():
        if not entry.name.endswith(".json"):
            continue
        stem = entry.name[: -len(".json")]
        circuit = _parse(
            entry.read_bytes(), f"{_LIBRARY_PACKAGE}/{entry.name}", _LIBRARY_PREFIX + stem
        )
        if circuit.name != stem:
            raise ModelFormatError(
                f"{_LIBRARY_PACKAGE}/{entry.name}: holds circuit {circuit.name!r}; a library "
                f"file is named after its circuit ({circuit.name}.json)"
            )
        circuits.append(circuit)
    return tuple(sorted(circuits, key=lambda c: c.name))
