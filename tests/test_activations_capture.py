"""roon.capture: hooks bound to their own names and always removed, every input form,
streaming statistics equal to the brute-force ones, memory that does not grow with the
sample."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from fixtures import random_mlp

import roon
from roon import MLP, Layer
from roon.errors import InvalidArgumentError
from roon.query.activations.moments import Moments


def _inputs(n: int = 300, width: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width))


def _layer_outputs(mlp: MLP, x: np.ndarray) -> dict[str, np.ndarray]:
    """Brute force: every layer's pre- and post-activation by hand."""
    out, h = {}, x
    for i, layer in enumerate(mlp.layers):
        z = h @ layer.weight.astype(np.float64).T + layer.bias
        h = np.maximum(z, 0) if layer.activation == "relu" else z
        out[f"layer{i}.pre"], out[f"layer{i}"] = z, h
    return out


def test_mlp_statistics_equal_the_brute_force_ones_for_any_batch_size():
    mlp, x = random_mlp(), _inputs()
    truth = _layer_outputs(mlp, x)
    names = ["layer0", "layer1.pre", "layer1", "layer2"]
    for batch_size in (7, 64, 1000):
        cap = roon.capture(mlp, x, layers=names, batch_size=batch_size)
        assert cap.n_samples == 300 and cap.layers == (tuple(names),)
        for name in names:
            np.testing.assert_allclose(cap.mean(name), truth[name].mean(axis=0), atol=1e-12)
            np.testing.assert_allclose(
                cap.covariance(name), np.cov(truth[name], rowvar=False), atol=1e-12
            )
            live = cap.live(name)
            expected = np.corrcoef(truth[name][:, live], rowvar=False)
            np.testing.assert_allclose(cap.correlation(name), expected, atol=1e-12)


def test_default_mlp_layers_are_every_layer_output():
    cap = roon.capture(random_mlp(), _inputs())
    assert cap.layers == (("layer0", "layer1", "layer2"),)


def test_unknown_layer_name_lists_the_valid_ones():
    with pytest.raises(InvalidArgumentError) as info:
        roon.capture(random_mlp(), _inputs(), layers=["layer7"])
    msg = str(info.value)
    assert "'layer7'" in msg and "layer0, layer0.pre, layer1" in msg and "\n" not in msg
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    with pytest.raises(InvalidArgumentError, match=r"no layer 'fc'.*layers are 0, 1"):
        roon.capture(net, _inputs(), layers="fc")


def test_each_hook_records_its_own_module():
    """The seed's hooks all closed over the last name; here each module keeps its output."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.Tanh()
    ).double()
    x = _inputs(50)
    cap = roon.capture(net, x, layers=["0", "1", "2", "3"], batch_size=16, keep=50)
    with torch.no_grad():
        h0 = net[0](torch.from_numpy(x))
        h = [h0, net[1](h0)]
        h.append(net[2](h[1]))
        h.append(net[3](h[2]))
    for k, name in enumerate(["0", "1", "2", "3"]):
        np.testing.assert_allclose(cap.samples[(0, name)], h[k].numpy(), atol=1e-12)
        np.testing.assert_allclose(cap.mean(name), h[k].numpy().mean(axis=0), atol=1e-12)
    assert cap.width("0") == 5 and cap.width("3") == 3
    assert all(not m._forward_hooks for m in net.modules())


class _FailsOnSecondBatch(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.act = torch.nn.ReLU()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom inside forward")
        return self.act(self.fc(x))


def test_hooks_are_removed_and_modes_restored_when_the_forward_pass_raises():
    net = _FailsOnSecondBatch()
    net.train()
    with pytest.raises(InvalidArgumentError, match="boom inside forward"):
        roon.capture(net, _inputs(40), batch_size=10)
    assert net.calls == 2
    assert all(not m._forward_hooks for m in net.modules())
    assert all(m.training for m in net.modules())  # eval() during capture only


def test_hooks_are_removed_when_the_input_stream_raises():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())

    def stream():
        yield torch.zeros(5, 4)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        roon.capture(net, stream())
    assert all(not m._forward_hooks for m in net.modules())


def test_module_that_is_not_called_or_returns_a_tuple_is_an_error():
    class Partial(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
            self.rnn = torch.nn.GRU(4, 2, batch_first=True)

        def forward(self, x):
            self.rnn(x[:, None, :])
            return self.used(x)

    net = Partial()
    with pytest.raises(InvalidArgumentError, match="'unused' of Partial did not run"):
        roon.capture(net, _inputs(8), layers=["used", "unused"])
    with pytest.raises(InvalidArgumentError, match="'rnn' of Partial returns tuple"):
        roon.capture(net, _inputs(8), layers=["rnn"])
    assert all(not m._forward_hooks for m in net.modules())


def test_batches_of_changing_shape_or_batch_last_outputs_are_errors():
    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.ReLU())
    stream = [torch.zeros(4, 1, 10), torch.zeros(4, 1, 12)]
    with pytest.raises(InvalidArgumentError, match="gave 40 features on this batch but 32"):
        roon.capture(conv, stream)

    class Transposed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x).T

    class Outer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Transposed()

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(InvalidArgumentError, match="returns shape \\(3, 6\\) for a batch of 6"):
        roon.capture(Outer(), _inputs(6), layers=["inner"])


def test_every_input_form_gives_the_same_statistics(tmp_path):
    mlp, x = random_mlp(), _inputs(90)
    reference = roon.capture(mlp, x, batch_size=90)
    np.save(tmp_path / "x.npy", x)
    torch.save(torch.from_numpy(x), tmp_path / "x.pt")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.zeros(90)), batch_size=20
    )
    forms = {
        "npy": tmp_path / "x.npy",
        "pt": str(tmp_path / "x.pt"),
        "tensor": torch.from_numpy(x),
        "loader": loader,
        "generator": (x[i : i + 13] for i in range(0, 90, 13)),
        "list of batches": [x[:50], x[50:]],
        "nested lists": x.tolist(),
    }
    for form, inputs in forms.items():
        cap = roon.capture(mlp, inputs, batch_size=32)
        assert cap.n_samples == 90, form
        assert cap.inputs_digest == reference.inputs_digest, form
        for name in ("layer0", "layer2"):
            np.testing.assert_allclose(
                cap.covariance(name), reference.covariance(name), atol=1e-12, err_msg=form
            )


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p / "missing.npy", "no such inputs file"),
        (lambda p: _write(p / "x.csv", b"1,2"), "unknown type"),
        (lambda p: _write(p / "x.npy", b"not numpy"), "not a readable .npy"),
        (lambda p: _torch_save(p / "x.pt", {"x": torch.zeros(3, 4)}), "holds dict, not a tensor"),
        (lambda p: _write(p / "x.pt", b"garbage"), "weights_only=True"),
        (lambda p: _np_save(p / "x.npy", np.zeros(5)), "shape (5,)"),
        (lambda p: _np_save(p / "x.npy", np.zeros((5, 3))), "3 features per sample"),
        (lambda p: _np_save(p / "x.npy", np.zeros((1, 4))), "1 samples"),
    ],
)
def test_bad_inputs_raise_one_line(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(InvalidArgumentError) as info:
        roon.capture(random_mlp(), path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _np_save(path, value):
    np.save(path, value)
    return path


def _torch_save(path, value):
    torch.save(value, path)
    return path


def test_pickled_code_in_a_pt_input_is_refused(tmp_path):
    torch.save({"callable": print}, tmp_path / "x.pt")  # weights_only refuses the global
    with pytest.raises(InvalidArgumentError, match="weights_only=True"):
        roon.capture(random_mlp(), tmp_path / "x.pt")


def test_the_inputs_digest_tells_samples_apart():
    x = _inputs(50)
    first = roon.capture(random_mlp(), x).inputs_digest
    assert len(first) == 32
    assert roon.capture(random_mlp(seed=9), x, batch_size=7).inputs_digest == first
    changed = x.copy()
    changed[49, 3] += 1e-9
    assert roon.capture(random_mlp(), changed).inputs_digest != first
    assert roon.capture(random_mlp(), x[::-1]).inputs_digest != first


def test_bad_parameters_are_invalid_arguments():
    for kwargs in ({"batch_size": 0}, {"batch_size": 2.5}, {"keep": -1}):
        with pytest.raises(InvalidArgumentError):
            roon.capture(random_mlp(), _inputs(), **kwargs)
    with pytest.raises(InvalidArgumentError, match="type dict"):
        roon.capture(random_mlp(), {"x": 1})
    with pytest.raises(InvalidArgumentError, match="model of type int"):
        roon.capture(3, _inputs())


def test_keep_holds_exactly_the_first_samples():
    mlp, x = random_mlp(), _inputs(100)
    cap = roon.capture(mlp, x, batch_size=30, keep=45)
    truth = _layer_outputs(mlp, x)
    assert cap.samples[(0, "layer1")].shape == (45, 5)
    np.testing.assert_allclose(cap.samples[(0, "layer1")], truth["layer1"][:45], atol=1e-12)
    assert roon.capture(mlp, x).samples == {}


def test_dead_and_constant_neurons_have_no_correlation_and_no_nan():
    w = np.array([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 2.0]])
    b = np.array([0.0, 0.0, 0.5, 0.0])  # neuron 1 is dead, neuron 2 is constant 0.5
    mlp = MLP([Layer(w, b, "relu"), Layer(np.ones((1, 4)), np.zeros(1), "linear")])
    cap = roon.capture(mlp, _inputs(200, 2))
    assert cap.dead("layer0").tolist() == [1]
    assert cap.constant("layer0").tolist() == [1, 2]
    assert cap.live("layer0").tolist() == [0, 3]
    r = cap.correlation("layer0")
    assert r.shape == (2, 2) and np.all(np.isfinite(r))
    groups = cap.groups("layer0")
    assert groups.dead == (1,) and groups.constant == (2,) and groups.constant_values == (0.5,)


def test_nan_activations_are_refused():
    with pytest.raises(InvalidArgumentError, match="NaN or infinite activations"):
        roon.capture(random_mlp(), np.full((4, 4), np.nan))


def test_shifted_sums_keep_precision_far_from_zero():
    """Activations around 1e6 with unit spread: the naive Σx² - (Σx)²/n loses every digit."""
    rng = np.random.default_rng(1)
    x = 1e6 + rng.normal(size=(5000, 3))
    moments = Moments([["x"]], [[3]])
    for start in range(0, 5000, 128):
        moments.update([x[start : start + 128]])
    expected = ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(moments.variance_sums(0), expected, rtol=1e-8)
    naive = (x**2).sum(axis=0) - x.sum(axis=0) ** 2 / len(x)
    assert np.max(np.abs(naive - expected) / expected) > 1e-4  # why the shift is needed


def _peak_bytes(n: int, batch: int = 500) -> int:
    mlp = random_mlp((8, 32, 32, 4), seed=5)

    def stream():
        rng = np.random.default_rng(0)
        for _ in range(n // batch):
            yield rng.normal(size=(batch, 8))

    tracemalloc.start()
    try:
        cap = roon.capture(mlp, stream(), batch_size=batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cap.n_samples == n
    return peak


def test_memory_of_a_streamed_capture_does_not_grow_with_the_sample():
    small, large = _peak_bytes(5_000), _peak_bytes(60_000)
    held = 60_000 * (8 + 32 + 32 + 4) * 8  # bytes of the large sample's activations
    assert large < 1.25 * small, (small, large)
    assert large < held / 20, (large, held)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_module_on_the_gpu_gives_the_cpu_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    net = net.double()
    x = _inputs(500)
    on_cpu = roon.capture(net, x, batch_size=64)
    on_gpu = roon.capture(net.cuda(), x, batch_size=64)
    for name in ("0", "1", "2"):
        np.testing.assert_allclose(on_gpu.covariance(name), on_cpu.covariance(name), atol=1e-10)
    assert all(not m._forward_hooks for m in net.modules())
