"""compare_activations: a model against a hidden-unit permutation of itself, against an
independent model, torch modules, layer pairing; the figure and its embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures import permuted, random_mlp

import roon
from roon.errors import InvalidArgumentError
from roon.query.activations import plot_comparison
from roon.query.activations.plot import neuron_embedding

WIDTHS = (6, 16, 12, 4)


def _inputs(n: int = 1500, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, WIDTHS[0]))


def _truth(a, b) -> list[np.ndarray]:
    """Per layer, B's neuron j is A's neuron truth[j] (biases are distinct random floats)."""
    out = []
    for la, lb in zip(a.layers, b.layers, strict=True):
        where = {float(v): i for i, v in enumerate(la.bias)}
        assert len(where) == la.width
        out.append(np.array([where[float(v)] for v in lb.bias]))
    return out


@pytest.fixture(scope="module")
def self_vs_permuted():
    a = random_mlp(WIDTHS, seed=11)
    b = permuted(a, 5)
    return a, b, roon.compare_activations(a, b, _inputs(), batch_size=100)


def test_a_permutation_of_itself_is_recovered_exactly(self_vs_permuted):
    a, b, result = self_vs_permuted
    truth = _truth(a, b)
    assert any((t != np.arange(len(t))).any() for t in truth)  # the shuffle did something
    assert [c.layer_a for c in result.layers] == ["layer0", "layer1", "layer2"]
    for k, layer in enumerate(result.layers):
        assert layer.cka == pytest.approx(1.0, abs=1e-9)
        assert len(layer.pairs) == WIDTHS[k + 1] and not layer.unmatched_a
        for pair in layer.pairs:
            assert truth[k][pair.b] == pair.a
            assert pair.correlation == pytest.approx(1.0, abs=1e-9)
            assert pair.signatures_equal is True
    np.testing.assert_allclose(np.diag(result.cka), 1.0, atol=1e-9)


def test_matched_signatures_equal_an_independent_signature_computation(self_vs_permuted):
    a, b, result = self_vs_permuted
    layer = result.layers[1]
    mine = roon.signatures(a.layers[1].weight, a.layers[1].bias).hash
    theirs = roon.signatures(b.layers[1].weight, b.layers[1].bias).hash
    assert all(mine[p.a] == theirs[p.b] for p in layer.pairs)
    assert len(set(mine)) > 1  # the check is not vacuous: neurons differ from each other


def test_debiased_cka_of_the_permutation_is_one_too():
    a = random_mlp(WIDTHS, seed=11)
    result = roon.compare_activations(a, permuted(a, 5), _inputs(400), debiased=True)
    assert result.debiased
    np.testing.assert_allclose(np.diag(result.cka), 1.0, atol=1e-9)


def test_independent_untrained_models_score_clearly_lower(self_vs_permuted):
    result = roon.compare_activations(
        random_mlp(WIDTHS, seed=1), random_mlp(WIDTHS, seed=2), _inputs()
    )
    assert np.all(np.diag(result.cka) < 0.8), result.cka
    for layer in result.layers:
        assert layer.mean_correlation < 0.75
        assert layer.signature_agreement < len(layer.pairs) / 2
    same = self_vs_permuted[2]
    assert np.all(np.diag(result.cka) < np.diag(same.cka) - 0.2)


def test_torch_modules_match_by_module_path():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    b = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    p = torch.randperm(10)
    with torch.no_grad():
        b[0].weight.copy_(a[0].weight[p])
        b[0].bias.copy_(a[0].bias[p])
        b[2].weight.copy_(a[2].weight[:, p])
        b[2].bias.copy_(a[2].bias)
    result = roon.compare_activations(
        a, b, torch.from_numpy(_inputs(500)).float(), layers=["1", "2"]
    )
    assert result.model_a == "Sequential (A)" and result.model_b == "Sequential (B)"
    relu = result.layers[0]
    assert relu.cka == pytest.approx(1.0, abs=1e-5)
    assert all(p[pair.b] == pair.a for pair in relu.pairs)
    assert all(pair.signatures_equal is None for pair in relu.pairs)


def test_layers_pair_by_position_when_named_differently():
    a = random_mlp(WIDTHS, seed=3)
    result = roon.compare_activations(
        a, a, _inputs(300), layers=["layer0", "layer1"], layers_b=["layer1.pre", "layer1"]
    )
    assert [(c.layer_a, c.layer_b) for c in result.layers] == [
        ("layer0", "layer1.pre"),
        ("layer1", "layer1"),
    ]
    assert result.cka.shape == (2, 2)
    assert result.layers[1].cka == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(InvalidArgumentError, match="differ in number"):
        roon.compare_activations(
            a, a, _inputs(50), layers=["layer0"], layers_b=["layer0", "layer1"]
        )


def test_bad_parameters_are_refused_before_capturing():
    a = random_mlp(WIDTHS)
    for kwargs in ({"threshold": 2.0}, {"group_method": "ward"}, {"input_domain": "real"}):
        with pytest.raises(InvalidArgumentError):
            roon.compare_activations(a, a, _inputs(50), **kwargs)


def test_result_is_json_serialisable(self_vs_permuted):
    data = json.loads(json.dumps(self_vs_permuted[2].to_dict()))
    assert data["cka"]["rows"] == ["layer0", "layer1", "layer2"]
    assert data["layers"][0]["pairs"][0]["signatures_equal"] is True
    assert data["n_samples"] == 1500


def test_figure_has_the_expected_size_and_is_not_blank(self_vs_permuted, tmp_path):
    import matplotlib.image

    path = plot_comparison(self_vs_permuted[2], tmp_path / "fig.png", dpi=50)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (3 * 5 * 50, 13 * 50)  # three layer pairs, 5 x 13 inches
    assert float(image[..., :3].var()) > 0.01
    one = plot_comparison(self_vs_permuted[2], tmp_path / "one.png", layers=["layer1"], dpi=40)
    assert matplotlib.image.imread(one).shape[:2] == (5 * 40, 13 * 40)
    with pytest.raises(InvalidArgumentError, match="no matched layer pair"):
        plot_comparison(self_vs_permuted[2], tmp_path / "x.png", layers=["layer9"])
    made = plot_comparison(self_vs_permuted[2], tmp_path / "new" / "deeper" / "x.png", dpi=20)
    assert made.is_file()  # its missing folders were created
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidArgumentError, match="cannot create its folder"):
        plot_comparison(self_vs_permuted[2], tmp_path / "file" / "x.png")


def test_embedding_is_pca_of_the_z_scored_activation_profiles():
    from sklearn.decomposition import PCA

    mlp = random_mlp(WIDTHS, seed=4)
    cap = roon.capture(mlp, _inputs(200), layers=["layer1"], keep=200)
    raw = cap.samples[(0, "layer1")][:, cap.live("layer1")]
    profiles = ((raw - raw.mean(axis=0)) / raw.std(axis=0, ddof=1)).T  # [neurons, samples]
    expected = PCA(n_components=2).fit_transform(profiles) / np.sqrt(len(raw) - 1)
    coords, share = neuron_embedding(cap.correlation("layer1"))
    for k in range(2):  # equal up to the sign of each axis
        sign = np.sign(coords[:, k] @ expected[:, k])
        np.testing.assert_allclose(sign * coords[:, k], expected[:, k], atol=1e-8)
    pca = PCA(n_components=2).fit(profiles)
    np.testing.assert_allclose(share, pca.explained_variance_ratio_, atol=1e-10)
