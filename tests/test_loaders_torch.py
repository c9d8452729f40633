"""Loaders for PyTorch: state_dict files (.pt/.pth/.bin) and in-memory nn.Modules."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import one_line_error
from torch import nn
from typer.testing import CliRunner

import roon
from roon import InvalidArgumentError, ModelFormatError, UnsupportedArchitectureError
from roon.cli import app
from roon.ingest.loaders import load_model


def tiny_sequential(seed: int = 0, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), act(), nn.Linear(7, 4), act(), nn.Linear(4, 3))


def torch_out(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """The module's own output, computed in float64 on a copy (eval mode)."""
    ref = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return ref(torch.from_numpy(x)).numpy()


def assert_same_weights(mlp: roon.MLP, linears: list[nn.Linear]) -> None:
    assert len(mlp.layers) == len(linears)
    for layer, lin in zip(mlp.layers, linears, strict=True):
        w = lin.weight.detach().numpy()
        assert layer.weight.dtype == w.dtype and np.array_equal(layer.weight, w)
        b = lin.bias.detach().numpy() if lin.bias is not None else np.zeros(w.shape[0])
        assert np.array_equal(layer.bias, b)


def rand(n_in: int, seed: int = 1, rows: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, n_in)) * 2.0


# -- state_dict files ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_state_dict_round_trip(tmp_path, suffix):
    model = tiny_sequential()
    path = tmp_path / f"net{suffix}"
    torch.save(model.state_dict(), path)
    mlp = roon.load_model(path)
    assert_same_weights(mlp, [model[0], model[2], model[4]])
    assert mlp.activations == ("relu", "relu", "linear")
    assert mlp.name == "net"
    assert mlp.provenance == (
        {
            "step": "load",
            "format": "state_dict",
            "source": str(path.resolve()),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "activation_assumed": True,
        },
    )
    x = rand(5)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), rtol=0, atol=1e-6)


def test_state_dict_activation_arguments(tmp_path):
    model = tiny_sequential(act=nn.Tanh)
    path = tmp_path / "tanh.pt"
    torch.save(model.state_dict(), path)
    mlp = load_model(path, activation="tanh", name="given")
    assert mlp.activations == ("tanh", "tanh", "linear") and mlp.name == "given"
    assert mlp.provenance[0]["activation_assumed"] is False
    x = rand(5)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), atol=1e-6)
    assert load_model(path, output_activation="sigmoid").activations == ("relu", "relu", "sigmoid")
    per_layer = load_model(path, ["elu", "gelu", "softplus"])
    assert per_layer.activations == ("elu", "gelu", "softplus")
    with pytest.raises(UnsupportedArchitectureError, match=r"tanh\.pt: .*2 names .* 3 layers"):
        load_model(path, ["relu", "relu"])
    with pytest.raises(UnsupportedArchitectureError, match="unknown activation 'leaky'"):
        load_model(path, "leaky")


def _chain_tensors(names: list[str], widths: list[int]) -> OrderedDict:
    """Layers named ``names`` (forward order) with widths that chain only in that order."""
    gen = torch.Generator().manual_seed(0)
    sd = OrderedDict()
    for name, fan_in, width in zip(names, widths[:-1], widths[1:], strict=True):
        sd[f"{name}.weight"] = torch.randn(width, fan_in, generator=gen)
        sd[f"{name}.bias"] = torch.randn(width, generator=gen)
    return sd


def test_keys_ordered_numerically_not_lexicographically(tmp_path):
    names = [f"fc{i}" for i in range(1, 12)]  # fc1 … fc11: "fc10" < "fc2" as text
    widths = list(range(2, 14))
    sd = _chain_tensors(names, widths)
    scrambled = OrderedDict(sorted(sd.items(), key=lambda kv: kv[0]))  # fc1, fc10, fc11, fc2 …
    torch.save(scrambled, tmp_path / "m.pt")
    mlp = load_model(tmp_path / "m.pt")
    assert mlp.widths == tuple(widths)
    for i, layer in enumerate(mlp.layers):
        assert np.array_equal(layer.weight, sd[f"fc{i + 1}.weight"].numpy())


def test_keys_fc2_fc10_fc1(tmp_path):
    sd = _chain_tensors(["fc1", "fc2", "fc10"], [3, 4, 5, 2])
    order = ["fc2", "fc10", "fc1"]
    torch.save(
        OrderedDict((f"{n}.{p}", sd[f"{n}.{p}"]) for n in order for p in ("weight", "bias")),
        tmp_path / "m.pt",
    )
    assert load_model(tmp_path / "m.pt").widths == (3, 4, 5, 2)


class TutorialNet(nn.Module):
    """The PyTorch quickstart network: keys linear_relu_stack.0/2/4."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 3)
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def test_linear_relu_stack_keys_and_module(tmp_path):
    torch.manual_seed(3)
    net = TutorialNet()
    torch.save(net.state_dict(), tmp_path / "tut.pt")
    stack = net.linear_relu_stack
    from_file = load_model(tmp_path / "tut.pt")
    assert_same_weights(from_file, [stack[0], stack[2], stack[4]])
    from_module = load_model(net)  # not a Sequential: read by watching a forward pass
    assert from_module == from_file and from_module.activations == ("relu", "relu", "linear")
    assert from_module.name == "TutorialNet"


def test_mixed_names_follow_registration_order(tmp_path):
    # "classifier" sorts before "features" alphabetically; the file order is the truth
    sd = _chain_tensors(["features.0", "features.2", "classifier.1"], [4, 6, 6, 2])
    torch.save(sd, tmp_path / "m.pt")
    mlp = load_model(tmp_path / "m.pt")
    assert np.array_equal(mlp.layers[2].weight, sd["classifier.1.weight"].numpy())
    assert np.array_equal(mlp.layers[1].weight, sd["features.2.weight"].numpy())


@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict"])
def test_checkpoint_wrapper_and_missing_bias(tmp_path, wrapper):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    torch.save({wrapper: model.state_dict(), "epoch": 7, "lr": 0.1}, tmp_path / "ck.pth")
    mlp = load_model(tmp_path / "ck.pth")
    assert_same_weights(mlp, [model[0], model[2]])
    assert np.array_equal(mlp.layers[0].bias, np.zeros(4, np.float32))


def lightning_checkpoint(model: nn.Module) -> dict:
    """What pytorch-lightning saves: the LightningModule's state_dict (its ``model``
    attribute gives the ``model.`` prefix) beside training state."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.2.0",
        "state_dict": state,
        "loops": {"fit_loop": {"epoch_progress": {"current": 3}}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}],
        "lr_schedulers": [],
    }


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda m: {"model": m.state_dict(), "epoch": 3}, "model"),
        (lambda m: {"state_dict": m.state_dict()}, "state_dict"),
        (lightning_checkpoint, "state_dict"),
        (
            lambda m: {
                "model_state_dict": m.state_dict(),
                "optimizer_state_dict": torch.optim.SGD(m.parameters(), lr=0.1).state_dict(),
                "epoch": 3,
                "loss": 0.25,
            },
            "model_state_dict",
        ),
        (lambda m: {"ema": m.state_dict(), "model": m.state_dict(), "step": 9}, "model"),
    ],
)
def test_checkpoint_dicts_read_the_nested_state_dict_and_say_which(tmp_path, build, key):
    from roon.ingest.loaders import load_notes

    model = tiny_sequential(seed=3)
    torch.save(build(model), tmp_path / "ck.pt")
    mlp = load_model(tmp_path / "ck.pt")
    assert_same_weights(mlp, [model[0], model[2], model[4]])
    assert mlp.provenance[0]["state_dict_key"] == key
    assert f"weights read from checkpoint entry {key!r}" in load_notes(mlp)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    assert "state_dict_key" not in load_model(plain).provenance[0]
    assert load_model(plain).id == mlp.id


def test_a_checkpoint_with_two_unnamed_state_dicts_is_refused(tmp_path):
    model = tiny_sequential()
    torch.save({"student": model.state_dict(), "teacher": model.state_dict()}, tmp_path / "k.pt")
    one_line_error(
        ModelFormatError, tmp_path / "k.pt", "several state_dicts ('student', 'teacher')"
    )


def test_a_whole_pickled_model_is_refused_with_the_safe_alternatives(tmp_path):
    torch.save(tiny_sequential(), tmp_path / "whole.pt")
    one_line_error(
        ModelFormatError,
        tmp_path / "whole.pt",
        "a whole pickled model (Sequential",
        "save model.state_dict() and ingest that with --activation",
        "pass the module itself to roon.load_model",
    )


def test_torchscript_is_refused_clearly_and_quietly(tmp_path, recwarn):
    from typer.testing import CliRunner

    from roon.cli import app

    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(tiny_sequential()), path)
    one_line_error(
        ModelFormatError, path, "is a TorchScript archive", "jit.load(path).state_dict()"
    )
    assert not [w for w in recwarn if "TorchScript" in str(w.message)]
    result = CliRunner().invoke(app, ["ingest", str(path), "-c", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "Warning" not in result.output and "is a TorchScript archive" in result.output


# -- in-memory modules ----------------------------------------------------------------


def test_sequential_module_round_trip():
    model = tiny_sequential(seed=5)
    mlp = load_model(model)
    assert_same_weights(mlp, [model[0], model[2], model[4]])
    assert mlp.provenance == (
        {
            "step": "load",
            "format": "module",
            "source": "<module Sequential>",
            "sha256": None,
            "activation_assumed": False,
        },
    )
    assert mlp.name == "Sequential"
    x = rand(5)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), atol=1e-6)


def test_nested_sequential_reads_each_activation():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(6, 5), nn.Sigmoid(), nn.Dropout(0.5)),
        nn.Linear(5, 5),
        nn.Identity(),
        nn.Tanh(),
        nn.Sequential(nn.Linear(5, 5), nn.Softplus(), nn.Linear(5, 5), nn.SiLU()),
        nn.Linear(5, 5),
        nn.GELU(),
        nn.Linear(5, 5),
        nn.ELU(),
        nn.Linear(5, 2),
        nn.Identity(),
    )
    mlp = load_model(model)
    assert mlp.activations == ("sigmoid", "tanh", "softplus", "silu", "gelu", "elu", "linear")
    x = rand(6)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(nn.LeakyReLU(), "LeakyReLU"), (nn.BatchNorm1d(4), "BatchNorm1d"), (nn.GELU("tanh"), "GELU")],
)
def test_sequential_refuses_other_modules(bad, shown):
    model = nn.Sequential(nn.Linear(3, 4), bad, nn.Linear(4, 2))
    with pytest.raises(UnsupportedArchitectureError) as info:
        load_model(model)
    msg = str(info.value)
    assert msg.startswith("<module Sequential>: module '1' is " + shown) and "\n" not in msg


class FunctionalNet(nn.Module):
    def __init__(self, act=F.relu, residual: bool = False, registered=None) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.out = nn.Linear(6, 2)  # registered first, called last
        self.fc1 = nn.Linear(3, 6)
        self.fc2 = nn.Linear(6, 6)
        self.act, self.residual = act, residual
        if registered is not None:
            self.extra = registered

    def forward(self, x):
        h = self.act(self.fc1(x))
        h2 = self.act(self.fc2(h))
        return self.out(h2 + h if self.residual else h2)


@pytest.mark.parametrize(
    ("act", "name"),
    [(F.relu, "relu"), (torch.tanh, "tanh"), (F.silu, "silu"), (torch.sigmoid_, "sigmoid")],
)
def test_plain_module_read_by_its_forward(act, name):
    net = FunctionalNet(act)
    mlp = load_model(net)
    assert mlp.activations == (name, name, "linear")
    assert_same_weights(mlp, [net.fc1, net.fc2, net.out])  # call order, not registration
    assert mlp.provenance[0]["activation_assumed"] is False
    x = rand(3)
    np.testing.assert_allclose(mlp.forward(x), torch_out(net, x), atol=1e-6)


def test_plain_module_refuses_what_is_not_a_chain():
    with pytest.raises(
        UnsupportedArchitectureError, match=r"^<module FunctionalNet>: between Linear 'fc2'"
    ):
        load_model(FunctionalNet(residual=True))
    with pytest.raises(UnsupportedArchitectureError, match="between Linear 'fc1' and Linear 'fc2'"):
        load_model(FunctionalNet(act=F.leaky_relu))
    with pytest.raises(UnsupportedArchitectureError, match="module 'extra' is LeakyReLU"):
        load_model(FunctionalNet(registered=nn.LeakyReLU()))
    with pytest.raises(UnsupportedArchitectureError, match="module 'extra' is Conv2d"):
        load_model(FunctionalNet(registered=nn.Conv2d(1, 1, 3)))
    with pytest.raises(InvalidArgumentError, match="file path or a torch.nn.Module"):
        load_model(42)


# -- bad state_dict files ---------------------------------------------------------------


class NotATensorDict:
    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save(NotATensorDict(), path)
    one_line_error(ModelFormatError, path, "NotATensorDict", "could run code", "ran nothing")
    torch.save(torch.zeros(3, 3), tmp_path / "tensor.pt")
    one_line_error(ModelFormatError, tmp_path / "tensor.pt", "holds type Tensor")


def test_truncated_state_dict(tmp_path):
    full = tmp_path / "full.pt"
    torch.save(tiny_sequential().state_dict(), full)
    half = tmp_path / "half.pt"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    one_line_error(ModelFormatError, half, "truncated or corrupt PyTorch file")


@pytest.mark.parametrize(("value", "word"), [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_non_finite_weights(tmp_path, value, word):
    sd = tiny_sequential().state_dict()
    sd["2.weight"][1, 3] = value
    torch.save(sd, tmp_path / "bad.pt")
    one_line_error(ModelFormatError, tmp_path / "bad.pt", f"layer '2' weight holds {word} values")
    sd = tiny_sequential().state_dict()
    sd["4.bias"][0] = value
    torch.save(sd, tmp_path / "bad.pt")
    one_line_error(ModelFormatError, tmp_path / "bad.pt", f"layer '4' bias holds {word} values")


def test_unsupported_state_dicts(tmp_path):
    sd = _chain_tensors(["fc1", "fc2"], [3, 4, 2])
    sd["fc2.weight"] = torch.zeros(2, 5)
    torch.save(sd, tmp_path / "chain.pt")
    one_line_error(
        UnsupportedArchitectureError, tmp_path / "chain.pt", "shapes do not chain", "'fc2'"
    )
    sd = _chain_tensors(["fc1", "fc2"], [3, 4, 2])
    sd["fc3.weight"] = torch.zeros(2, 2, 3, 3)
    torch.save(sd, tmp_path / "conv.pt")
    msg = one_line_error(UnsupportedArchitectureError, tmp_path / "conv.pt")
    assert msg == (
        f"{tmp_path / 'conv.pt'}: layer 'fc3' is Conv2d-shaped (4-D weight); "
        "roon reads dense layers only (Linear)"
    )
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    torch.save(bn.state_dict(), tmp_path / "bn.pt")
    one_line_error(UnsupportedArchitectureError, tmp_path / "bn.pt", "BatchNorm")
    torch.save({"fc.weight": torch.zeros(2, 2), "epoch": 3}, tmp_path / "mixed.pt")
    one_line_error(ModelFormatError, tmp_path / "mixed.pt", "entry 'epoch' is not a tensor but int")
    torch.save({}, tmp_path / "empty.pt")
    one_line_error(ModelFormatError, tmp_path / "empty.pt", "holds no tensors")


def test_plain_module_ambiguous_probe_uses_arguments_then_defaults():
    net = FunctionalNet()
    with torch.no_grad():  # all pre-activations positive: ReLU, linear and ELU agree
        for lin in (net.fc1, net.fc2, net.out):
            lin.weight.mul_(0.01)
            lin.bias.fill_(100.0)
    guessed = load_model(net)
    assert guessed.activations == ("relu", "relu", "linear")
    assert guessed.provenance[0]["activation_assumed"] is True
    told = load_model(net, "elu", output_activation="relu")
    assert told.activations == ("elu", "elu", "relu")
    assert told.provenance[0]["activation_assumed"] is False


class _Payload:
    """Unpickling this runs ``touch <canary>``: a real malicious pickle."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.canary}",))


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw pickle", "protocol 0", "nested"])
def test_a_malicious_pickle_is_refused_in_plain_words_and_never_run(tmp_path, kind):
    import pickle

    canary = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = _Payload(canary)
    if kind == "zip":
        torch.save({"fc.weight": torch.zeros(2, 2), "x": payload}, path)
    elif kind == "legacy":
        torch.save({"fc.weight": torch.zeros(2, 2), "x": payload}, path,
                   _use_new_zipfile_serialization=False)  # fmt: skip
    elif kind == "raw pickle":
        path.write_bytes(pickle.dumps(payload, protocol=4))
    elif kind == "protocol 0":
        path.write_bytes(pickle.dumps(payload, protocol=0))
    else:  # hidden inside an otherwise ordinary checkpoint
        torch.save({"state_dict": tiny_sequential().state_dict(), "meta": [{"x": payload}]}, path)
    msg = one_line_error(ModelFormatError, path, "could run code", "ran nothing")
    assert "system" in msg  # names what it would have called (posix.system or nt.system)
    assert "truncated" not in msg and "corrupt" not in msg
    assert not canary.exists()
    result = CliRunner().invoke(app, ["ingest", str(path), "-c", str(tmp_path / "cat"), "--json"])
    assert result.exit_code == 1 and "could run code" in json.loads(result.stdout)[0]["reason"]
    assert not canary.exists()


def test_ordinary_state_dicts_pass_the_pickle_check(tmp_path):
    """Every kind of tensor and container a state_dict or checkpoint holds is allowed."""
    from roon.ingest.loaders.state_dict import _safe_global, pickled_imports

    net = tiny_sequential()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    files = {
        "plain": net.state_dict(),
        "bf16": {"w": torch.zeros(2, 2, dtype=torch.bfloat16)},
        "sparse": {"w": torch.eye(2).to_sparse()},
        "parameter": {"w": nn.Parameter(torch.zeros(2))},
        "checkpoint": {
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": 3,
            "size": torch.Size([2]),
            "device": torch.device("cpu"),
            "dtype": torch.float16,
            "tags": {"a", "b"},
        },  # fmt: skip
    }
    for name, obj in files.items():
        for legacy in (False, True):
            path = tmp_path / f"{name}{int(legacy)}.pt"
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
            found = pickled_imports(path)
            assert found, name
            assert all(_safe_global(g) for g in found), (name, found)


class _ShortcutBlock(nn.Module):
    """relu(fc2(relu(fc1(x))) + shortcut(x)): not a chain of layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.shortcut = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)


class _ResidualMLP(nn.Module):
    """Blocks of two layers each, every block adding its input back (x + f(x))."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"fc1": nn.Linear(4, 4), "fc2": nn.Linear(4, 4)}) for _ in range(2)
        )
        self.head = nn.Linear(4, 2)


@pytest.mark.parametrize(
    ("module", "fragments"),
    [
        (_ShortcutBlock(), ["'shortcut' names a shortcut branch", "--layers"]),
        (_ResidualMLP(), ["numbered blocks of several layers", "residual", "--layers"]),
    ],
)
def test_residual_state_dicts_are_refused(tmp_path, module, fragments):
    path = tmp_path / "res.pt"
    torch.save(module.state_dict(), path)
    one_line_error(UnsupportedArchitectureError, path, *fragments)
    from safetensors.torch import save_file

    from roon.ingest.loaders import save_safetensors  # noqa: F401  (same rule, other format)

    save_file(module.state_dict(), tmp_path / "res.safetensors")
    one_line_error(UnsupportedArchitectureError, tmp_path / "res.safetensors", "--layers")


def test_layers_gives_the_order_of_a_chain(tmp_path):
    layers = OrderedDict(fc1=nn.Linear(3, 4), r1=nn.ReLU(), skip=nn.Linear(4, 4), r2=nn.ReLU())
    net = nn.Sequential(OrderedDict(**layers, out=nn.Linear(4, 2)))
    path = tmp_path / "named.pt"
    torch.save(net.state_dict(), path)
    one_line_error(UnsupportedArchitectureError, path, "'skip' names a skip branch")
    mlp = load_model(path, layers=["fc1", "skip.weight", "out"])
    assert mlp.widths == (3, 4, 4, 2)
    x = np.random.default_rng(0).normal(size=(6, 3))
    assert np.allclose(mlp.forward(x), torch_out(net, x), atol=1e-6)
    for bad, said in [
        (["fc1", "out"], "leaves out 'skip'"),
        (["fc1", "skip", "out", "extra"], "'extra', which is not a layer"),
        (["fc1", "fc1", "skip", "out"], "names 'fc1' twice"),
        (["out", "skip", "fc1"], "shapes do not chain"),
    ]:
        with pytest.raises(UnsupportedArchitectureError, match=said):
            load_model(path, layers=bad)
    result = CliRunner().invoke(
        app,
        ["ingest", str(path), "-c", str(tmp_path / "cat"), "--layers", "fc1,skip,out", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["status"] == "ingested"


def test_plain_chains_need_no_layers(tmp_path):
    for net in (
        tiny_sequential(),
        nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(3, 4),
                r1=nn.ReLU(),
                fc2=nn.Linear(4, 2),
                r2=nn.ReLU(),
                out=nn.Linear(2, 2),
            )  # fmt: skip
        ),
        nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(4, 2)),
    ):
        torch.save(net.state_dict(), tmp_path / "plain.pt")
        mlp = load_model(tmp_path / "plain.pt")
        x = np.random.default_rng(1).normal(size=(5, mlp.input_width))
        assert np.allclose(mlp.forward(x), torch_out(net, x), atol=1e-6)
