"""Normalizers and ``roon normalize`` under review: outputs, errors, and exactness.

The CLI tests failed before their fixes (a report that overwrote the model it sits
beside, a report path that failed after the model was written, a boxed usage error for
malformed --input-bounds). The property tests pin what was found correct: exact rules
keep the function for mixed activations, and the ``exact`` preset gives identical
weights for permuted networks even when ties abound. The one known gap (``canonical``
alone with twin neurons) is recorded as a strict xfail.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import permuted, random_mlp
from typer.testing import CliRunner

from roon import MLP, Layer, UnsupportedArchitectureError
from roon.cli import app
from roon.ingest.loaders import save_safetensors
from roon.ingest.normalize import normalize


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_failure(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.safetensors"
    save_safetensors(random_mlp((4, 6, 5, 2), seed=4, name="net"), path)
    return path


# -- roon normalize: outputs ---------------------------------------------------------


def test_a_report_path_equal_to_the_output_is_refused(tmp_path, model_file):
    # `-o net.json` used to write the model there and then overwrite it with the report
    out = tmp_path / "net.json"
    one_line_failure(invoke("normalize", model_file, "-o", out), "overwrite the model")
    assert not out.exists()
    same = tmp_path / "same.safetensors"
    result = invoke("normalize", model_file, "-o", same, "--report", same)
    one_line_failure(result, "overwrite the model")
    assert not same.exists()


def test_an_unwritable_report_leaves_no_model_behind(tmp_path, model_file):
    out = tmp_path / "net.norm.safetensors"
    missing = tmp_path / "no-such-dir" / "report.json"
    result = invoke("normalize", model_file, "-o", out, "--report", missing)
    one_line_failure(result, str(missing), "cannot write")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


def test_a_directory_as_report_or_output_is_refused_before_writing(tmp_path, model_file):
    folder = tmp_path / "folder"
    folder.mkdir()
    out = tmp_path / "o.safetensors"
    one_line_failure(invoke("normalize", model_file, "-o", out, "--report", folder), "directory")
    assert not out.exists()
    one_line_failure(invoke("normalize", model_file, "-o", folder), "directory")
    assert list(folder.iterdir()) == []


def test_outputs_leave_no_temporary_files(tmp_path, model_file):
    out = tmp_path / "net.norm.safetensors"
    assert invoke("normalize", model_file, "-o", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "net.norm.json",
        "net.norm.safetensors",
        "net.safetensors",
    ]


@pytest.mark.parametrize("bounds", ["1,a", "0", "0,1,2", ""])
def test_malformed_input_bounds_are_one_line_and_exit_1(tmp_path, model_file, bounds):
    out = tmp_path / "o.safetensors"
    one_line_failure(
        invoke("normalize", model_file, "--input-bounds", bounds, "-o", out), "--input-bounds"
    )
    assert not out.exists()


def test_unknown_rule_writes_nothing(tmp_path, model_file):
    out = tmp_path / "o.safetensors"
    one_line_failure(invoke("normalize", model_file, "-r", "zero-out,bogus", "-o", out), "'bogus'")
    assert not out.exists() and not out.with_suffix(".json").exists()


# -- exact rules on structured random networks ---------------------------------------


def structured_net(rng: np.random.Generator, dtype: type, acts: list[str]) -> MLP:
    """A random net with a case for every exact rule: zero rows, dead ReLUs, identical
    and positively scaled (x2, x3) rows, columns of zeros (silent neurons)."""
    widths = [int(rng.integers(2, 6)) for _ in range(len(acts) + 1)]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w, b = rng.normal(size=(n_out, n_in)), rng.normal(0, 0.5, size=n_out)
        for j in range(1, n_out):
            kind = rng.integers(6)
            if kind == 0:
                w[j], b[j] = 0.0, rng.normal()
            elif kind in (1, 2):
                w[j], b[j] = w[j - 1] * kind, b[j - 1] * kind
            elif kind == 3:
                b[j] = -100.0
        if i:
            w[:, rng.random(n_in) < 0.15] = 0.0
        act = "linear" if i == len(acts) - 1 else acts[i]
        layers.append(Layer(w.astype(dtype), b.astype(dtype), act))
    return MLP(layers)


ACTS = ["relu", "linear", "tanh", "sigmoid"]


def corners_and_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 2, (40, n)), rng.random((40, n))]).astype(float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
def test_exact_rules_keep_the_function_for_every_activation(dtype, act):
    rng = np.random.default_rng([ACTS.index(act), np.dtype(dtype).itemsize])
    homogeneous = act in ("relu", "linear")
    for trial in range(6):
        m = structured_net(rng, dtype, [act] * int(rng.integers(2, 4)))
        x = corners_and_points(m.input_width, trial)
        want = m.forward(x)
        scale = max(1.0, float(np.abs(want).max()))
        rules = ["zero-out", "constant", "exact-duplicates", "canonical"]
        rules += ["rescale", "exact"] if homogeneous else []
        for rule in rules:
            child, steps = normalize(m, rule)
            # zero-out, rescale and canonical only move or drop exact zeros: the same
            # sums up to the order BLAS adds them; folds and merges round once per value
            tol = 1e-12 if rule in ("zero-out", "rescale", "canonical") else 1e-5
            tol = tol if dtype is np.float32 else min(tol, 1e-12)
            np.testing.assert_allclose(child.forward(x), want, rtol=0, atol=tol * scale)
            assert steps[-1].max_output_change <= tol * scale
        if not homogeneous:
            with pytest.raises(UnsupportedArchitectureError, match="positively homogeneous"):
                normalize(m, "rescale")


def tie_heavy_net(rng: np.random.Generator) -> MLP:
    """Weights and biases in {-1, 0, 1}: twins, shared signatures, ties everywhere."""
    widths = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(3, 6)))]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        act = "linear" if i == len(widths) - 2 else "relu"
        w = rng.integers(-1, 2, (n_out, n_in)).astype(float)
        layers.append(Layer(w, rng.integers(-1, 2, n_out).astype(float), act))
    return MLP(layers)


def test_exact_preset_is_canonical_when_ties_abound():
    rng = np.random.default_rng(11)
    for _ in range(60):
        m = tie_heavy_net(rng)
        want, _ = normalize(m, "exact")
        for _ in range(3):
            got, _ = normalize(permuted(m, rng), "exact")
            assert got.id == want.id


@pytest.mark.xfail(
    strict=True,
    reason="canonical alone refines ties one pass each way; twin neurons (merged by "
    "exact-duplicates in the exact preset) can leave an order that depends on the input",
)
def test_canonical_alone_with_twin_neurons():
    # layer 1 neurons 1 and 2 are twins (w=1, b=-1); layer 2 neurons 0 and 1 connect to
    # one twin each and tie on everything else, so the backward pass cannot tell them
    # apart and their order follows the input order
    layers = [
        Layer(np.array([[0.0, -1.0, -1.0, 1.0]]), np.array([1.0])),
        Layer(np.array([[-1.0], [1.0], [1.0]]), np.array([0.0, -1.0, -1.0])),
        Layer(
            np.array(
                [[1.0, 0, 1], [1.0, 1, 0], [1.0, -1, 0], [1.0, 0, 1], [-1.0, -1, 1]],
            ),
            np.array([-1.0, -1, 0, -1, -1]),
        ),
        Layer(np.array([[0.0, 0, -1, 1, -1], [-1.0, -1, 1, -1, 1]]), np.array([-1.0, 0]), "linear"),
    ]
    m = MLP(layers)
    want, _ = normalize(m, "canonical")
    rng = np.random.default_rng(0)
    assert all(normalize(permuted(m, rng), "canonical")[0].id == want.id for _ in range(40))


# -- tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", [2.0**-6, 2.0**-30, 0.1, 3.0])
def test_tokens_of_extreme_values_match_the_grammar(step):
    from roon.ingest.tokenize import token_kind, tokenize

    rng = np.random.default_rng(int(step * 2**30) % 2**32)
    for exponent in (-12, 0, 12, 30):
        w = rng.normal(size=(3, 4)) * 10.0**exponent
        w[rng.random(w.shape) < 0.3] = -0.0  # the grammar has no '-0'
        b = rng.normal(size=3) * 10.0**exponent
        m32 = MLP([Layer(w.astype(np.float32), b.astype(np.float32))])
        m64 = MLP([Layer(m32.layers[0].weight.astype(np.float64), m32.layers[0].bias)])
        tokens = tokenize(m32, step=step)
        assert [token_kind(t) for t in tokens] == ["layer", "neuron", "neuron", "neuron"]
        if np.log2(step).is_integer():  # value / step is exact: float32 and float64 agree
            assert tokenize(m64, step=step) == tokens
