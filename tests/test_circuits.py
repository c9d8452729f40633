"""Reference circuits: the library computes what it says, and the loader refuses bad files.

The formulas below are written by hand from each circuit's definition, not read from the
JSON files, so a wrong weight in the library fails here; a library circuit without an
entry fails too, so a new circuit must come with its check.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures import one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roon
from roon.errors import InvalidArgumentError, ModelFormatError
from roon.ingest.loaders.circuit import (
    MAX_CIRCUIT_BYTES,
    Circuit,
    circuit_names,
    list_circuits,
    load_circuit,
)

CATALOGUE_DIR = Path(__file__).resolve().parents[1] / "catalogue"


# Boolean gates on {0,1}^n: name -> (inputs, truth(x) -> bool[N], output value(x) -> [N]).
GATES = {
    "and": (2, lambda x: (x[:, 0] == 1) & (x[:, 1] == 1), lambda x: x[:, 0] * x[:, 1]),
    "or": (2, lambda x: (x[:, 0] == 1) | (x[:, 1] == 1), lambda x: x[:, 0] + x[:, 1]),
    "nand": (2, lambda x: ~((x[:, 0] == 1) & (x[:, 1] == 1)), lambda x: 2 - x[:, 0] - x[:, 1]),
    "nor": (
        2,
        lambda x: (x[:, 0] == 0) & (x[:, 1] == 0),
        lambda x: ((x[:, 0] == 0) & (x[:, 1] == 0)).astype(float),
    ),
    "xor": (2, lambda x: x[:, 0] != x[:, 1], lambda x: (x[:, 0] != x[:, 1]).astype(float)),
    "maj3": (
        3,
        lambda x: x.sum(axis=1) >= 2,
        lambda x: np.array([max(0, int(s) - 1) for s in x.sum(axis=1)], dtype=float),
    ),
}

# Signed circuits on real inputs: name -> (inputs, f(x) -> [N]).
SIGNED = {
    "positive": (1, lambda x: np.where(x[:, 0] > 0, x[:, 0], 0.0)),
    "negative": (1, lambda x: np.where(x[:, 0] < 0, -x[:, 0], 0.0)),
    "identity": (1, lambda x: x[:, 0]),
    "negation": (1, lambda x: -x[:, 0]),
    "abs": (1, lambda x: np.abs(x[:, 0])),
    "add": (2, lambda x: x[:, 0] + x[:, 1]),
    "sub": (2, lambda x: x[:, 0] - x[:, 1]),
    "greater": (2, lambda x: np.where(x[:, 0] > x[:, 1], x[:, 0] - x[:, 1], 0.0)),
    "min": (2, lambda x: np.array([min(a, b) for a, b in x])),
    "max": (2, lambda x: np.array([max(a, b) for a, b in x])),
}


def _cube(values: tuple[int, ...], n: int) -> np.ndarray:
    return np.array(list(itertools.product(values, repeat=n)), dtype=np.float64)  # [k^n, n]


def _forward_json(doc: dict, x: np.ndarray) -> np.ndarray:
    """An evaluator of the file format written from its definition (relu and linear only)."""
    h = np.asarray(x, dtype=np.float64)
    for layer in doc["layers"]:
        w = np.array(layer["weight"], dtype=np.float64)
        z = h @ w.T + np.array(layer["bias"], dtype=np.float64)
        h = np.maximum(z, 0.0) if layer["activation"] == "relu" else z
    return h


def _write(tmp_path: Path, doc: object, name: str = "c.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _valid() -> dict:
    return {
        "name": "mine",
        "description": "a test circuit",
        "computes": "x1 - x2",
        "source": "this test",
        "input_domain": "signed",
        "layers": [
            {"weight": [[1, -1], [-1, 1]], "bias": [0, 0], "activation": "relu"},
            {"weight": [[1, -1]], "bias": [0], "activation": "linear"},
        ],
    }


# -- the library computes its formulas ---------------------------------------------------


def test_every_library_circuit_has_a_hand_written_formula():
    names = set(circuit_names())
    assert names == set(GATES) | set(SIGNED), "a library circuit needs a formula entry here"
    assert not set(GATES) & set(SIGNED)


def test_the_library_is_the_catalogue_folder_sorted_by_name():
    stems = sorted(p.stem for p in CATALOGUE_DIR.glob("*.json"))
    assert circuit_names() == stems
    circuits = list_circuits()
    assert [c.name for c in circuits] == stems
    for circuit in circuits:
        assert isinstance(circuit, Circuit)
        assert circuit.path == f"library:{circuit.name}"
        assert circuit.mlp.name == circuit.name
        assert circuit.description and circuit.computes and circuit.source
        expected_domain = "binary" if circuit.name in GATES else "signed"
        assert circuit.input_domain == expected_domain


@pytest.mark.parametrize("name", sorted(GATES))
def test_gates_on_the_whole_binary_cube(name: str):
    n, truth, value = GATES[name]
    circuit = load_circuit(name)
    assert circuit.input_width == n and circuit.output_width == 1
    x = _cube((0, 1), n)
    out = circuit.evaluate(x)[:, 0]
    np.testing.assert_array_equal(out, value(x))
    assert np.all(out >= 0)
    # the output is nonzero exactly where the gate is true
    np.testing.assert_array_equal(out > 0, truth(x))


@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_output_neuron_is_excited_exactly_when_the_gate_is_true(name: str):
    n, truth, _ = GATES[name]
    mlp = load_circuit(name).mlp
    assert all(layer.activation == "relu" for layer in mlp.layers[:-1])
    x = _cube((0, 1), n)
    h = x
    for layer in mlp.layers[:-1]:
        h = np.maximum(h @ layer.weight.T + layer.bias, 0.0)
    last = mlp.layers[-1]
    pre = (h @ last.weight.T + last.bias)[:, 0]  # the output neuron's pre-activation
    np.testing.assert_array_equal(pre > 0, truth(x))


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_signed_circuits_on_random_reals(name: str):
    n, formula = SIGNED[name]
    circuit = load_circuit(name)
    assert circuit.input_width == n and circuit.output_width == 1
    x = np.random.default_rng(3).uniform(-3.0, 3.0, size=(2000, n))
    # weights are ±1 and at most three terms are summed: a few ulps of 3 at most
    np.testing.assert_allclose(circuit.evaluate(x)[:, 0], formula(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_signed_circuits_exactly_on_the_signed_cube(name: str):
    n, formula = SIGNED[name]
    x = _cube((-1, 0, 1), n)
    np.testing.assert_array_equal(load_circuit(name).evaluate(x)[:, 0], formula(x))


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(SIGNED)),
    a=st.floats(-1e6, 1e6, allow_nan=False),
    b=st.floats(-1e6, 1e6, allow_nan=False),
)
def test_signed_circuits_on_any_real_inputs(name: str, a: float, b: float):
    n, formula = SIGNED[name]
    x = np.array([[a, b][:n]])
    got = load_circuit(name).evaluate(x)[0, 0]
    assert math.isclose(got, formula(x)[0], rel_tol=1e-12, abs_tol=1e-9)


def test_identity_and_negation_differ_and_so_do_the_two_greaterness_directions():
    x = _cube((-1, 0, 1), 1)
    assert not np.array_equal(
        load_circuit("identity").evaluate(x), load_circuit("negation").evaluate(x)
    )
    greater = load_circuit("greater").evaluate(np.array([[1.0, 0.0], [0.0, 1.0]]))[:, 0]
    assert greater.tolist() == [1.0, 0.0]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GATES) + sorted(SIGNED))
def test_circuit_mlp_evaluates_like_the_json_says(name: str, tmp_path: Path):
    doc = json.loads((CATALOGUE_DIR / f"{name}.json").read_text())
    circuit = load_circuit(name)
    x = np.random.default_rng(7).uniform(-3, 3, size=(200, circuit.input_width))
    np.testing.assert_array_equal(circuit.evaluate(x), _forward_json(doc, x))
    assert circuit.as_dict() == doc
    meta = circuit.mlp.metadata
    assert {k: meta[k] for k in ("description", "computes", "source", "input_domain")} == {
        k: doc[k] for k in ("description", "computes", "source", "input_domain")
    }
    again = load_circuit(_write(tmp_path, circuit.as_dict(), f"{name}.json"))
    assert again.mlp == circuit.mlp and again.as_dict() == doc
    assert again.path == str(tmp_path / f"{name}.json")


_numbers = st.one_of(st.integers(-5, 5), st.floats(-10, 10, allow_nan=False, allow_infinity=False))


@st.composite
def _circuit_docs(draw) -> dict:
    widths = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    layers = [
        {
            "weight": [[draw(_numbers) for _ in range(fan_in)] for _ in range(width)],
            "bias": [draw(_numbers) for _ in range(width)],
            "activation": draw(st.sampled_from(["relu", "linear"])),
        }
        for fan_in, width in itertools.pairwise(widths)
    ]
    doc = _valid() | {"layers": layers, "input_domain": draw(st.sampled_from(["binary", "signed"]))}
    if draw(st.booleans()):
        lo = draw(st.integers(-3, 2))
        doc["input_bounds"] = [lo, lo + draw(st.integers(1, 3))]
    return doc


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=_circuit_docs(), seed=st.integers(0, 2**32 - 1))
def test_any_valid_file_loads_evaluates_and_round_trips(tmp_path: Path, doc: dict, seed: int):
    circuit = load_circuit(_write(tmp_path, doc))
    x = np.random.default_rng(seed).uniform(-3, 3, size=(16, circuit.input_width))
    np.testing.assert_allclose(circuit.evaluate(x), _forward_json(doc, x), rtol=1e-12, atol=1e-12)
    assert circuit.input_bounds == (
        tuple(float(v) for v in doc["input_bounds"]) if "input_bounds" in doc else None
    )
    again = load_circuit(_write(tmp_path, circuit.as_dict(), "again.json"))
    assert again.mlp == circuit.mlp and again.as_dict() == circuit.as_dict()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(
        [
            "name",
            "description",
            "input_domain",
            "layers",
            "input_bounds",
            "weight",
            "bias",
            "activation",
        ]
    ),
    value=_json,
)
def test_a_damaged_file_loads_or_fails_with_one_line_naming_it(tmp_path: Path, key: str, value):
    doc = _valid()
    if key in ("weight", "bias", "activation"):
        doc["layers"][1][key] = value
    else:
        doc[key] = value
    path = _write(tmp_path, json.dumps(doc))
    try:
        load_circuit(path)
    except ModelFormatError as exc:
        msg = str(exc)
        assert msg.startswith(f"{path}: ") and "\n" not in msg, msg


# -- loader errors: one per rule -------------------------------------------------------------


def _without(key: str):
    def change(doc: dict) -> None:
        del doc[key]

    return change


def _set(value, *where):
    def change(doc: dict) -> None:
        target = doc
        for step in where[:-1]:
            target = target[step]
        target[where[-1]] = value

    return change


BAD_FILES = {
    "missing name": (_without("name"), ["missing key 'name'"]),
    "missing layers": (_without("layers"), ["missing key 'layers'"]),
    "missing source": (_without("source"), ["missing key 'source'"]),
    "unknown key": (_set(1, "input_bound"), ["unknown key 'input_bound'"]),
    "name not a string": (_set(3, "name"), ["'name' is a JSON number", "expected a string"]),
    "computes not a string": (_set(["x"], "computes"), ["'computes' is a JSON list"]),
    "name with a space": (_set("my gate", "name"), ["name 'my gate' is not a simple identifier"]),
    "name upper case": (_set("AND", "name"), ["name 'AND' is not a simple identifier"]),
    "name with a slash": (_set("a/b", "name"), ["name 'a/b' is not a simple identifier"]),
    "empty name": (_set("", "name"), ["name '' is not a simple identifier"]),
    "name with markup": (_set("[red]x", "name"), ["is not a simple identifier"]),
    "unknown domain": (_set("ternary", "input_domain"), ["unknown input_domain 'ternary'"]),
    "layers not a list": (_set({}, "layers"), ["'layers' is a JSON object", "expected a list"]),
    "empty layers": (_set([], "layers"), ["'layers' is empty"]),
    "layer not an object": (_set(3, "layers", 0), ["layer 0 is a JSON number"]),
    "layer missing bias": (
        lambda d: d["layers"][1].pop("bias"),
        ["layer 1 is missing key 'bias'"],
    ),
    "layer unknown key": (
        _set(True, "layers", 0, "dropout"),
        ["layer 0 has unknown key 'dropout'"],
    ),
    "weight not a list": (_set("eye", "layers", 0, "weight"), ["layer 0 weight is a JSON string"]),
    "weight empty": (_set([], "layers", 0, "weight"), ["layer 0 weight is an empty list"]),
    "weight flat": (
        _set([1, -1], "layers", 1, "weight"),
        ["layer 1 weight row 0 is a JSON number"],
    ),
    "weight row empty": (
        _set([[]], "layers", 1, "weight"),
        ["layer 1 weight row 0 is an empty list"],
    ),
    "ragged rows": (
        _set([[1, -1], [-1]], "layers", 0, "weight"),
        ["layer 0 weight is ragged: row 1 has 1 entries, row 0 has 2"],
    ),
    "weight entry a string": (
        _set("1", "layers", 0, "weight", 1, 0),
        ["layer 0 weight[1][0] is a JSON string", "expected a number"],
    ),
    "weight entry a boolean": (
        _set(True, "layers", 0, "weight", 0, 1),
        ["layer 0 weight[0][1] is a JSON boolean"],
    ),
    "fan-in mismatch": (
        _set([[1, -1, 1]], "layers", 1, "weight"),
        ["layer 1 weight rows have 3 entries (fan-in) but layer 0 has 2 neurons"],
    ),
    "bias not a list": (_set(0, "layers", 1, "bias"), ["layer 1 bias is a JSON number"]),
    "bias length": (
        _set([0, 0, 0], "layers", 0, "bias"),
        ["layer 0 bias has 3 entries but weight has 2 rows"],
    ),
    "bias entry null": (_set(None, "layers", 0, "bias", 1), ["layer 0 bias[1] is a JSON null"]),
    "unknown activation": (
        _set("sine", "layers", 0, "activation"),
        ["layer 0: unknown activation 'sine'", "relu"],
    ),
    "activation not a string": (
        _set(1, "layers", 0, "activation"),
        ["layer 0 activation is a JSON number"],
    ),
    "bounds not a pair": (_set([0], "input_bounds"), ["input_bounds is a JSON list", "[lo, hi]"]),
    "bounds empty": (_set([1, 1], "input_bounds"), ["input_bounds [1, 1] is empty", "lo < hi"]),
    "bounds not numbers": (_set(["a", "b"], "input_bounds"), ["input_bounds is a JSON string"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_each_validation_rule_has_its_own_one_line_error(case: str, tmp_path: Path):
    change, fragments = BAD_FILES[case]
    doc = _valid()
    change(doc)
    one_line_error(ModelFormatError, _write(tmp_path, doc), *fragments, load=load_circuit)


@pytest.mark.parametrize(
    ("literal", "fragment"),
    [
        ("NaN", "is NaN"),
        ("Infinity", "is infinite"),
        ("-Infinity", "is infinite"),
        ("1e999", "is infinite"),
    ],
)
def test_non_finite_numbers_are_refused(literal: str, fragment: str, tmp_path: Path):
    text = json.dumps(_valid()).replace('"bias": [0]', f'"bias": [{literal}]')
    assert literal in text
    one_line_error(
        ModelFormatError, _write(tmp_path, text), "layer 1 bias[0]", fragment, load=load_circuit
    )


def test_a_huge_integer_is_refused_as_infinite(tmp_path: Path):
    text = json.dumps(_valid()).replace('"bias": [0]', f'"bias": [{10**400}]')
    one_line_error(
        ModelFormatError, _write(tmp_path, text), "layer 1 bias[0] is infinite", load=load_circuit
    )


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("{not json", ["is not valid JSON", "line 1 column 2"]),
        ("", ["is an empty file"]),
        ("[1, 2]", ["top level is a JSON list", "a circuit file is a JSON object"]),
        ('{"name": "a", "name": "b"}', ["key 'name' appears twice"]),
        ("[" * 100_000, ["nested too deeply"]),
    ],
)
def test_files_that_are_not_circuits(content: str, fragments: list[str], tmp_path: Path):
    one_line_error(ModelFormatError, _write(tmp_path, content), *fragments, load=load_circuit)


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "c.json"
    path.write_bytes(b'{"name": "\xff"}')
    one_line_error(ModelFormatError, path, "is not UTF-8", load=load_circuit)


def test_oversized_files_are_refused_before_reading(tmp_path: Path):
    path = tmp_path / "big.json"
    with path.open("wb") as f:
        f.truncate(MAX_CIRCUIT_BYTES + 1)  # sparse: no 4 MiB written
    one_line_error(
        ModelFormatError, path, f"is {MAX_CIRCUIT_BYTES + 1} bytes", "at most", load=load_circuit
    )


def test_missing_file_directory_and_wrong_suffix(tmp_path: Path):
    one_line_error(ModelFormatError, tmp_path / "none.json", "no such file", load=load_circuit)
    folder = tmp_path / "dir.json"
    folder.mkdir()
    one_line_error(ModelFormatError, folder, "is a directory", load=load_circuit)
    other = _write(tmp_path, _valid(), "c.txt")
    one_line_error(ModelFormatError, other, "ends in .json", "load_model", load=load_circuit)


def test_library_names_are_case_insensitive_and_unknown_names_list_the_library():
    assert load_circuit("AND") is load_circuit("and")
    assert load_circuit(" Maj3 ").name == "maj3"
    with pytest.raises(InvalidArgumentError) as info:
        load_circuit("nandx")
    msg = str(info.value)
    assert type(info.value) is InvalidArgumentError and "\n" not in msg
    assert msg.startswith("no library circuit named 'nandx'; the library has ")
    assert all(name in msg for name in circuit_names())
    with pytest.raises(InvalidArgumentError, match="not int"):
        load_circuit(3)  # type: ignore[arg-type]


def test_text_ending_in_json_or_with_a_separator_is_a_file_never_a_library_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    one_line_error(ModelFormatError, "and.json", "no such file", load=load_circuit)
    one_line_error(ModelFormatError, "./and", "no such file", load=load_circuit)
    _write(tmp_path, _valid(), "mine.json")
    assert load_circuit("mine.json").path == "mine.json"
    assert load_circuit(Path("mine.json")).name == "mine"


def test_evaluate_refuses_inputs_of_the_wrong_shape():
    xor = load_circuit("xor")
    for bad in (np.zeros(2), np.zeros((3, 3)), np.zeros((1, 2, 2)), [["a", "b"]]):
        with pytest.raises(InvalidArgumentError, match="xor"):
            xor.evaluate(bad)
    out = xor.evaluate([[1, 0]])
    assert out.dtype == np.float64 and out.shape == (1, 1)


def test_public_api_and_purity():
    assert roon.load_circuit is load_circuit
    code = (
        "import sys; from roon.ingest.loaders.circuit import list_circuits; list_circuits();"
        "bad = sorted(m for m in sys.modules if m.startswith(('roon.store', 'roon.query', "
        "'roon.cli', 'torch', 'duckdb', 'pyarrow'))); print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_both_readmes_list_every_library_circuit():
    listing = (CATALOGUE_DIR / "README.md").read_text()
    section = (CATALOGUE_DIR.parent / "README.md").read_text().split("## Circuits", 1)[1]
    section = section.split("\n## ", 1)[0]
    for name in circuit_names():
        assert f"`{name}.json`" in listing, name
        assert f"`{name}`" in section, name
