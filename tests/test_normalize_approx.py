"""Approximate rules on hand-built networks: exactly the predicted neurons go."""

from __future__ import annotations

import numpy as np
import pytest

from roon import MLP, InvalidArgumentError, Layer, ModelFormatError
from roon.ingest.normalize import load_sample, normalize
from roon.ingest.normalize.bounds import domain_sample


def measured_change(a: MLP, b: MLP) -> float:
    """The change on the documented sample of a model without a declared domain."""
    n = a.input_width
    x = domain_sample(np.full(n, -np.inf), np.full(n, np.inf))
    assert np.all(np.abs(x) <= 1.0) and set(np.unique(x[:128])) <= {-1.0, 0.0, 1.0}
    return float(np.max(np.abs(a.forward(x) - b.forward(x))))


def test_dead_removes_small_neurons_and_folds_act_of_bias():
    w0 = np.array([[1.0, 0.5], [0.02, 0.01], [-0.5, 1.0], [0.3, 0.0]])
    b0 = np.array([0.0, 0.3, 0.1, -0.4])
    # neuron 1: 1.1 * |(0.02, 0.01)| * |(0.5, 1)| = 0.0275 < 0.05 -> dead
    # neuron 3: 1.1 * 0.3 * |(0.1, 0.1)| = 0.0467 < 0.05 -> dead; act(-0.4) = 0 folds nothing
    w1 = np.array([[1.0, 0.5, 2.0, 0.1], [-1.0, 1.0, 0.5, 0.1]])
    b1 = np.array([0.25, -0.5])
    m = MLP([Layer(w0, b0), Layer(w1, b1, "linear")])
    child, [step] = normalize(m, "dead")
    assert step.changes["layers"] == {"0": {"removed": [1, 3]}}
    assert step.params == {"dead_threshold": 0.05, "dead_rescore": False}
    np.testing.assert_array_equal(child.layers[1].bias, b1 + 0.3 * w1[:, 1])
    np.testing.assert_array_equal(child.layers[0].weight, w0[[0, 2]])
    assert step.max_output_change == pytest.approx(measured_change(m, child), rel=1e-12)
    assert 0 < step.max_output_change < 0.05
    # a lower threshold keeps neuron 3
    _, [step] = normalize(m, "dead", dead_threshold=0.03)
    assert step.changes["layers"] == {"0": {"removed": [1]}}


def two_layer_dead_net() -> MLP:
    """Neuron 0 of layer 0 is dead; layer-1 neuron 0 draws almost all its input from it.

    Layer 0: scores 1.1 * 0.01 * 1.0 = 0.011 (dead) and 1.1 * 1.0 * |(0.01, 1)| ~ 1.1.
    Layer 1 on the original weights: 1.1 * |(1, 0.01)| * 0.1 ~ 0.11 (kept) and 1.1;
    re-scored after layer 0's removal: 1.1 * 0.01 * 0.1 = 0.0011 (dead).
    """
    w0 = np.array([[0.01, 0.0], [0.0, 1.0]])
    w1 = np.array([[1.0, 0.01], [0.0, 1.0]])
    w2 = np.array([[0.1, 1.0]])
    return MLP(
        [
            Layer(w0, np.array([0.5, 0.0])),
            Layer(w1, np.array([0.25, 0.0])),
            Layer(w2, np.zeros(1), "linear"),
        ]
    )


def test_dead_scores_every_neuron_on_the_original_weights():
    m = two_layer_dead_net()
    child, [step] = normalize(m, "dead")
    assert step.changes["layers"] == {"0": {"removed": [0]}}  # seed 004's rule
    assert child.widths == (2, 1, 2, 1)
    np.testing.assert_array_equal(child.layers[1].bias, [0.25 + 0.5 * 1.0, 0.0])
    rescored, [again] = normalize(m, "dead", dead_rescore=True)
    assert again.changes["layers"] == {"0": {"removed": [0]}, "1": {"removed": [0]}}
    assert again.params == {"dead_threshold": 0.05, "dead_rescore": True}
    assert rescored.widths == (2, 1, 1, 1)
    with pytest.raises(InvalidArgumentError, match="dead_rescore='yes'"):
        normalize(m, "dead", dead_rescore="yes")


def test_dead_factor_1_1_decides_at_the_boundary():
    # weight products on both sides of t / 1.1 = 0.04545 at t = 0.05: 0.048 is kept
    # (1.1 * 0.048 = 0.0528), 0.044 dropped (0.0484); a factor of 1.0 would drop both.
    w0 = np.array([[0.048, 0.0], [0.0, 0.044], [1.0, 1.0]])
    w1 = np.array([[1.0, 1.0, 1.0]])
    m = MLP([Layer(w0, np.zeros(3)), Layer(w1, np.zeros(1), "linear")])
    _, [step] = normalize(m, "dead", dead_threshold=0.05)
    assert step.changes["layers"] == {"0": {"removed": [1]}}


def test_dead_with_sigmoid_folds_sigmoid_of_bias():
    w0 = np.array([[0.001, 0.001], [1.0, 1.0]])
    m = MLP([Layer(w0, np.array([2.0, 0.0]), "sigmoid"), Layer(np.array([[1.0, 1.0]]), [0.0])])
    child, [step] = normalize(m, "dead")
    assert step.changes["layers"] == {"0": {"removed": [0]}}
    assert child.layers[1].bias[0] == pytest.approx(1.0 / (1.0 + np.exp(-2.0)), rel=1e-15)


def test_duplicates_merges_first_close_pairs_repeatedly():
    w0 = np.array(
        [
            [1.0, 0.0],  # 0
            [0.0, 1.0],  # 1: far from everything
            [1.04, 0.0],  # 2: 0.04 from 0
            [1.0, 0.06],  # 3: 0.06 from 0, and from (0 + 2) / 2 = (1.02, 0): 0.0632
            [0.0005, 0.0],  # 4: close to 5 but tiny: never merged into
            [0.0, 0.0005],  # 5: tiny
        ]
    )
    b0 = np.zeros(6)
    w1 = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    m = MLP([Layer(w0, b0), Layer(w1, np.zeros(1), "linear")])
    child, [step] = normalize(m, "duplicates")
    # (0, 2) merge first -> (1.02, 0) at 0; then (0, 3 -> now 2) -> (1.01, 0.03)
    assert step.changes["layers"] == {"0": {"merged": [[0, 2, 3]]}}
    np.testing.assert_allclose(child.layers[0].weight[0], [(1.02 + 1.0) / 2, 0.03])
    assert child.layers[1].weight.tolist() == [[8.0, 2.0, 5.0, 6.0]]
    assert step.max_output_change == pytest.approx(measured_change(m, child), rel=1e-12)
    # a threshold of 0.05 merges only (0, 2)
    _, [step] = normalize(m, "duplicates", duplicate_threshold=0.05)
    assert step.changes["layers"] == {"0": {"merged": [[0, 2]]}}
    # with eps below the tiny neurons' norm, 5 merges into 4
    _, [step] = normalize(m, "duplicates", duplicate_threshold=0.05, duplicate_eps=1e-4)
    assert step.changes["layers"] == {"0": {"merged": [[0, 2], [4, 5]]}}


def test_low_variance_removes_the_neuron_that_never_varies(tmp_path):
    import torch

    w0 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 2.0]])
    b0 = np.array([0.0, 0.0, 0.5])
    m = MLP([Layer(w0, b0), Layer(np.array([[1.0, 1.0, 1.0]]), np.zeros(1), "linear")])
    rng = np.random.default_rng(0)
    x = rng.random((50, 3))
    x[:, 2] = 0.25  # neuron 2 always outputs relu(0.5 + 0.5) = 1
    np.save(tmp_path / "x.npy", x)
    torch.save(torch.from_numpy(x), tmp_path / "x.pt")
    for sample in (x, tmp_path / "x.npy", str(tmp_path / "x.pt")):
        child, [step] = normalize(m, "low-variance", sample=sample)
        assert step.changes["layers"] == {"0": {"removed": [2]}}
        assert child.layers[1].bias.tolist() == [1.0]
        assert step.params["sample"]["shape"] == [50, 3]
        np.testing.assert_allclose(child.forward(x), m.forward(x))


def test_low_variance_sample_errors(tmp_path):
    import torch

    m = MLP([Layer(np.eye(2), np.zeros(2)), Layer(np.ones((1, 2)), np.zeros(1))])
    torch.save({"x": torch.zeros(3, 2)}, tmp_path / "d.pt")
    with pytest.raises(ModelFormatError, match="dict"):
        load_sample(tmp_path / "d.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save(Evil(), tmp_path / "evil.pt")
    with pytest.raises(ModelFormatError, match="cannot read sample"):
        load_sample(tmp_path / "evil.pt")
    with pytest.raises(ModelFormatError, match=r"\[N >= 2, 2\]"):
        normalize(m, "low-variance", sample=np.zeros((4, 3)))
    with pytest.raises(InvalidArgumentError, match="needs an input sample"):
        normalize(m, "low-variance")
    with pytest.raises(ModelFormatError, match="suffix"):
        load_sample(tmp_path / "x.csv")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_low_variance_refuses_non_finite_samples(tmp_path, bad):
    import torch
    from typer.testing import CliRunner

    from roon.cli import app
    from roon.ingest.loaders import save_safetensors

    # neuron 1 never varies on the finite rows: with the bad value skipped, or the NaN
    # variance read as "not below the threshold", the rule would run quietly
    m = MLP([Layer(np.array([[1.0, 0.0], [0.0, 0.0]]), [0.0, 1.0]), Layer(np.ones((1, 2)), [0.0])])
    x = np.random.default_rng(0).random((8, 2))
    x[3, 1] = bad
    with pytest.raises(ModelFormatError, match=rf"holds {bad} at row 3, input 1"):
        normalize(m, "low-variance", sample=x)
    np.save(tmp_path / "x.npy", x)
    torch.save(torch.from_numpy(x), tmp_path / "x.pt")
    for path in (tmp_path / "x.npy", tmp_path / "x.pt"):
        with pytest.raises(ModelFormatError, match=f"sample {path} holds {bad}"):
            normalize(m, "low-variance", sample=path)
    save_safetensors(m, tmp_path / "m.safetensors")
    out = tmp_path / "o.safetensors"
    args = ["normalize", str(tmp_path / "m.safetensors"), "-r", "low-variance", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--sample", str(tmp_path / "x.npy")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error: sample "), result.output
    assert not out.exists()
    # the finite rows alone are fine: neuron 1 goes, its constant 1 folded into the bias
    child, [step] = normalize(m, "low-variance", sample=np.delete(x, 3, axis=0))
    assert step.changes["layers"] == {"0": {"removed": [1]}}
    assert child.layers[1].bias.tolist() == [1.0]
