"""Loaders for safetensors, .nnet and ONNX files, and roon's safetensors writer."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fixtures import one_line_error
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from roon import MLP, Layer, ModelFormatError, UnsupportedArchitectureError
from roon.ingest.loaders import load_model, save_safetensors

DATA = Path(__file__).parent / "data"
ACAS_NNET = DATA / "ACASXU_experimental_v2a_1_1.nnet"
ACAS_ONNX = DATA / "ACASXU_experimental_v2a_1_1.onnx"


def torch_out(module: nn.Module, x: np.ndarray) -> np.ndarray:
    ref = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return ref(torch.from_numpy(x)).numpy()


def rand(n_in: int, seed: int = 1, rows: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, n_in)) * 2.0


# -- safetensors ---------------------------------------------------------------------


def test_safetensors_from_torch_state_dict(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    mlp = load_model(tmp_path / "m.safetensors")
    for layer, lin in zip(mlp.layers, [model[0], model[2], model[4]], strict=True):
        assert np.array_equal(layer.weight, lin.weight.detach().numpy())
        assert np.array_equal(layer.bias, lin.bias.detach().numpy())
    assert mlp.activations == ("relu", "relu", "linear") and mlp.name == "m"
    load = mlp.provenance[0]
    assert load["format"] == "safetensors" and load["activation_assumed"] is True
    x = rand(4)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), atol=1e-6)


def test_safetensors_bfloat16_widens_exactly(tmp_path):
    from safetensors.torch import save_file

    w = torch.randn(3, 2).to(torch.bfloat16)
    save_file({"fc1.weight": w, "fc1.bias": torch.zeros(3)}, tmp_path / "bf.safetensors")
    mlp = load_model(tmp_path / "bf.safetensors")
    assert mlp.layers[0].weight.dtype == np.float32
    assert np.array_equal(mlp.layers[0].weight, w.float().numpy())


def test_safetensors_names_without_numbering(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    shapes = {"input": (8, 3), "hidden": (8, 8), "output": (2, 8)}  # chains one way only
    tensors = {f"{k}.weight": rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    save_file(tensors, str(tmp_path / "named.safetensors"))
    mlp = load_model(tmp_path / "named.safetensors")
    assert mlp.widths == (3, 8, 8, 2)
    assert np.array_equal(mlp.layers[1].weight, tensors["hidden.weight"])
    square = {f"{k}.weight": rng.normal(size=(4, 4)).astype(np.float32) for k in shapes}
    save_file(square, str(tmp_path / "square.safetensors"))
    one_line_error(
        UnsupportedArchitectureError, tmp_path / "square.safetensors", "cannot tell the layer order"
    )


def test_save_safetensors_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=(5, 3))
    w0[0, 0] = -0.0
    mlp = MLP(
        [
            Layer(w0, rng.normal(size=5), "tanh"),
            Layer(rng.normal(size=(4, 5)).astype(np.float32), np.zeros(4, np.float32), "sigmoid"),
            Layer(rng.normal(size=(2, 4)), rng.normal(size=2), "linear"),
        ],
        name="ränder, v2",
        metadata={"nnet.means": [0.1, 1e-300, -2.5], "note": "x,y", "nested": {"a": [1, None]}},
    )
    path = save_safetensors(mlp, tmp_path / "out.safetensors")
    assert path == tmp_path / "out.safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["out.safetensors"]  # no temp file left
    back = load_model(path, activation="relu")  # the file's own activations win
    assert back == mlp and back.id == mlp.id
    assert back.activations == ("tanh", "sigmoid", "linear")
    assert back.name == mlp.name and back.metadata == mlp.metadata
    assert back.provenance[0]["activation_assumed"] is False
    for a, b in zip(back.layers, mlp.layers, strict=True):
        assert a.weight.dtype == b.weight.dtype
        assert a.weight.tobytes() == b.weight.tobytes() and a.bias.tobytes() == b.bias.tobytes()
    # overwriting works, and a failed write leaves the old file in place
    save_safetensors(mlp.replace(name="second"), path)
    assert load_model(path).name == "second"
    with pytest.raises(ModelFormatError, match="not JSON-serializable"):
        save_safetensors(mlp.replace(metadata={"bad": object()}), path)
    assert load_model(path).name == "second"
    assert len(list(tmp_path.iterdir())) == 1


def test_save_safetensors_writes_the_same_bytes_every_time(tmp_path):
    # the safetensors library orders its header from a hash map, anew on every call
    rng = np.random.default_rng(3)
    mlp = MLP(
        [Layer(rng.normal(size=(3, 2)), rng.normal(size=3)), Layer(np.ones((1, 3)), [0.0])],
        name="twice",
        metadata={"input_domain": "signed", "input_bounds": [-1.0, 1.0], "z": 1, "a": 2},
    )
    files = [save_safetensors(mlp, tmp_path / f"m{i}.safetensors") for i in range(6)]
    blobs = {f.read_bytes() for f in files}
    assert len(blobs) == 1
    (blob,) = blobs
    header_size = int.from_bytes(blob[:8], "little")
    assert header_size % 8 == 0  # the format's alignment, kept
    back = load_model(files[0])
    assert back == mlp and back.name == "twice" and back.metadata == mlp.metadata


def test_save_safetensors_writes_what_the_library_writes(tmp_path):
    """roon writes the format itself (no serialized copy of the model in memory); its
    bytes are the library's, header keys sorted: mixed dtypes, 12 layers (layers.10 sorts
    before layers.2), a name and metadata with non-ASCII text."""
    import json

    from safetensors.numpy import save

    rng = np.random.default_rng(11)
    widths = [3, 5, 4, 6, 2, 3, 4, 5, 3, 2, 4, 3, 1]
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        dtype = np.float32 if i % 3 else np.float64
        layers.append(
            Layer(rng.normal(size=(b, a)).astype(dtype), rng.normal(size=b).astype(dtype))
        )
    mlp = MLP(layers, name="größe", metadata={"k": "ü", "n": [1, 2]})
    ours = save_safetensors(mlp, tmp_path / "m.safetensors").read_bytes()
    tensors = {}
    for i, layer in enumerate(mlp.layers):
        tensors[f"layers.{i}.weight"] = layer.weight
        tensors[f"layers.{i}.bias"] = layer.bias
    header = {
        "roon.format": "mlp-1",
        "roon.activations": ",".join(mlp.activations),
        "roon.name": mlp.name,
        "roon.metadata": json.dumps(mlp.metadata),
    }
    theirs = save(tensors, metadata=header)
    size = int.from_bytes(theirs[:8], "little")
    entries = json.loads(theirs[8 : 8 + size])
    raw = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    raw += b" " * (-len(raw) % 8)
    assert ours == len(raw).to_bytes(8, "little") + raw + theirs[8 + size :]


def test_safetensors_bad_roon_header(tmp_path):
    from safetensors.numpy import save_file

    t = {"layers.0.weight": np.eye(2, dtype=np.float32), "layers.0.bias": np.zeros(2, np.float32)}
    save_file(t, str(tmp_path / "a.safetensors"), metadata={"roon.activations": "relu,linear"})
    one_line_error(ModelFormatError, tmp_path / "a.safetensors", "records 2 activations")
    save_file(t, str(tmp_path / "b.safetensors"), metadata={"roon.activations": "prelu"})
    one_line_error(UnsupportedArchitectureError, tmp_path / "b.safetensors", "'prelu'")
    save_file(t, str(tmp_path / "c.safetensors"), metadata={"roon.metadata": "{oops"})
    one_line_error(ModelFormatError, tmp_path / "c.safetensors", "not valid JSON")


# -- .nnet -----------------------------------------------------------------------------


def write_nnet(path: Path, mlp: MLP, mins, maxes, means, ranges) -> None:
    widths = mlp.widths
    lines = [
        "// a test network, written by the test, with commas",
        f"{len(mlp.layers)},{widths[0]},{widths[-1]},{max(widths)},",
        ",".join(map(str, widths)) + ",",
        "0,",
    ]
    lines += [",".join(repr(float(v)) for v in row) + "," for row in (mins, maxes, means, ranges)]
    for layer in mlp.layers:
        lines += [",".join(repr(float(v)) for v in row) + "," for row in layer.weight]
        lines += [f"{float(b)!r}," for b in layer.bias]
    path.write_text("\n".join(lines) + "\n")


def test_nnet_round_trip(tmp_path):
    rng = np.random.default_rng(11)
    mlp = MLP(
        [
            Layer(rng.normal(size=(4, 3)), rng.normal(size=4), "relu"),
            Layer(rng.normal(size=(4, 4)), rng.normal(size=4), "relu"),
            Layer(rng.normal(size=(2, 4)), rng.normal(size=2), "linear"),
        ]
    )
    header = ([0.0, -1.0, -2.0], [1.0, 1.0, 2.5], [0.5, 0.0, 0.25, 7.0], [1.0, 2.0, 4.5, 3.0])
    write_nnet(tmp_path / "tiny.nnet", mlp, *header)
    back = load_model(tmp_path / "tiny.nnet")
    assert back == mlp and back.activations == ("relu", "relu", "linear")
    for a, b in zip(back.layers, mlp.layers, strict=True):
        assert a.weight.dtype == np.float64 and np.array_equal(a.weight, b.weight)
        assert np.array_equal(a.bias, b.bias)
    assert back.metadata == dict(
        zip(["nnet.mins", "nnet.maxes", "nnet.means", "nnet.ranges"], header, strict=True)
    )
    json.dumps(back.metadata)
    assert back.provenance[0]["format"] == "nnet" and not back.provenance[0]["activation_assumed"]


def test_nnet_dtype_follows_the_digits_written(tmp_path):
    head = "1,2,1,2,\n2,1,\n0,\n0,0,\n1,1,\n0,0,0,\n1,1,1,\n"
    (tmp_path / "six.nnet").write_text(head + "0.123456,-2.5e-03,\n1.00000,\n")
    six = load_model(tmp_path / "six.nnet")
    assert six.dtype == np.float32
    # the nearest float32 of each number prints back as the number written
    assert [float(f"{v:.6g}") for v in six.layers[0].weight.ravel()] == [0.123456, -2.5e-03]
    (tmp_path / "seven.nnet").write_text(head + "0.1234567,-2.5e-03,\n1.0,\n")
    assert load_model(tmp_path / "seven.nnet").dtype == np.float64
    (tmp_path / "tiny.nnet").write_text(head + "1e-40,1,\n1,\n")  # below float32's normal range
    assert load_model(tmp_path / "tiny.nnet").dtype == np.float64


def test_nnet_errors_name_the_line(tmp_path):
    rng = np.random.default_rng(0)
    mlp = MLP(
        [
            Layer(rng.normal(size=(5, 5)), np.zeros(5), "relu"),
            Layer(np.ones((1, 5)), np.zeros(1), "linear"),
        ]
    )
    write_nnet(tmp_path / "ok.nnet", mlp, [0] * 5, [1] * 5, [0] * 6, [1] * 6)
    lines = (tmp_path / "ok.nnet").read_text().splitlines()

    def variant(name: str, edit) -> Path:
        new = list(lines)
        edit(new)
        (tmp_path / name).write_text("\n".join(new) + "\n")
        return tmp_path / name

    # line 9 is the first weight row (1 comment + 7 header lines)
    short = variant("short.nnet", lambda ls: ls.__setitem__(8, "1.0,2.0,3.0,"))
    msg = one_line_error(ModelFormatError, short)
    assert msg == f"{short}: line 9: expected 5 numbers, found 3"
    word = variant("word.nnet", lambda ls: ls.__setitem__(8, "1,2,x,4,5,"))
    one_line_error(ModelFormatError, word, "line 9: 'x' is not a number")
    nan = variant("nan.nnet", lambda ls: ls.__setitem__(9, "1,2,nan,4,5,"))
    one_line_error(ModelFormatError, nan, "line 10: 'nan' is not a finite number")
    cut = variant("cut.nnet", lambda ls: ls.__delitem__(slice(12, None)))
    one_line_error(ModelFormatError, cut, "file ends early")
    extra = variant("extra.nnet", lambda ls: ls.append("1.0,"))
    one_line_error(ModelFormatError, extra, f"line {len(lines) + 1}: unexpected data")
    sizes = variant("sizes.nnet", lambda ls: ls.__setitem__(2, "4,5,1,"))
    one_line_error(ModelFormatError, sizes, "line 3: layer sizes run 4→1")


# -- ACAS Xu: the same network as .nnet and as ONNX ---------------------------------------


def test_acasxu_nnet_and_onnx_agree():
    nnet, onx = load_model(ACAS_NNET), load_model(ACAS_ONNX)
    assert nnet.widths == onx.widths == (5, 50, 50, 50, 50, 50, 50, 5)
    assert nnet.activations == onx.activations == ("relu",) * 6 + ("linear",)
    for a, b in zip(nnet.layers, onx.layers, strict=True):
        # 6 significant digits per number: the .nnet loads as float32, and the ONNX file
        # holds exactly those float32 values, so the two files are one model
        assert a.weight.dtype == b.weight.dtype == np.float32
        assert np.array_equal(a.weight, b.weight)
        assert np.array_equal(a.bias, b.bias)
    assert nnet.id == onx.id
    x = rand(5, rows=200)
    out = nnet.forward(x)
    np.testing.assert_allclose(onx.forward(x), out, rtol=1e-5, atol=1e-5 * np.abs(out).max())
    assert len(nnet.metadata["nnet.mins"]) == 5 and len(nnet.metadata["nnet.means"]) == 6
    assert nnet.metadata["nnet.ranges"][-1] == 373.94992
    assert onx.metadata == {"onnx.folded_offsets": {"0": [0.0] * 5}}
    assert nnet.name == onx.name == "ACASXU_experimental_v2a_1_1"


# -- ONNX ------------------------------------------------------------------------------


def test_onnx_from_torch_export(tmp_path):
    torch.manual_seed(9)
    model = nn.Sequential(
        nn.Linear(4, 6),
        nn.ReLU(),
        nn.Linear(6, 5),
        nn.Tanh(),
        nn.Linear(5, 5),
        nn.Sigmoid(),
        nn.Linear(5, 3),
    ).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in 2.9+
        # dynamo=False: the default exporter needs onnxscript, which is not installed
        torch.onnx.export(model, (torch.randn(2, 4),), str(tmp_path / "seq.onnx"), dynamo=False)
    mlp = load_model(tmp_path / "seq.onnx")
    assert mlp.activations == ("relu", "tanh", "sigmoid", "linear")
    for layer, lin in zip(mlp.layers, model[::2], strict=True):
        assert np.array_equal(layer.weight, lin.weight.detach().numpy())
        assert np.array_equal(layer.bias, lin.bias.detach().numpy())
    assert mlp.metadata == {}
    x = rand(4)
    np.testing.assert_allclose(mlp.forward(x), torch_out(model, x), atol=1e-6)


def save_graph(
    path: Path, nodes, inits: dict, n_in: int, out: str = "y", rank4: bool = False
) -> Path:
    shape = [1, 1, 1, n_in] if rank4 else [None, n_in]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=[
            numpy_helper.from_array(np.asarray(a, np.float32), k) for k, a in inits.items()
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_offset_fold_matmul_and_gemm_attributes(tmp_path):
    rng = np.random.default_rng(5)
    c = rng.normal(size=(1, 1, 1, 3))
    w1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)  # MatMul stores [in, out]
    g2, c2 = rng.normal(size=(4, 2)), rng.normal(size=2)  # Gemm B without transB
    inits = {"c": c, "w1": w1, "b1": b1, "g2": g2, "c2": c2}
    nodes = [
        helper.make_node("Sub", ["x", "c"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w1"], ["m"], name="dense1"),
        helper.make_node("Add", ["m", "b1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Gemm", ["r", "g2", "c2"], ["y"], alpha=2.0, beta=0.5, name="dense2"),
    ]
    mlp = load_model(save_graph(tmp_path / "g.onnx", nodes, inits, 3, rank4=True))
    f32 = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in inits.items()}
    x = rand(3)
    h = np.maximum((x - f32["c"].reshape(3)) @ f32["w1"] + f32["b1"], 0)
    expected = 2.0 * h @ f32["g2"] + 0.5 * f32["c2"]
    np.testing.assert_allclose(mlp.forward(x), expected, rtol=1e-6, atol=1e-6)
    assert mlp.activations == ("relu", "linear")
    assert mlp.metadata["onnx.folded_offsets"]["0"] == f32["c"].reshape(3).tolist()


def _dense(tmp_path, name, extra_nodes, extra_inits=None, out="y"):
    rng = np.random.default_rng(1)
    inits = {"w": rng.normal(size=(3, 3)), "b": rng.normal(size=3), **(extra_inits or {})}
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1), *extra_nodes]
    return save_graph(tmp_path / name, nodes, inits, 3, out=out)


def test_onnx_unsupported_graphs(tmp_path):
    conv = _dense(
        tmp_path,
        "conv.onnx",
        [helper.make_node("Conv", ["h", "k"], ["y"], name="conv1")],
        {"k": np.ones((1, 1, 3, 3))},
    )
    one_line_error(UnsupportedArchitectureError, conv, "node 'conv1' is Conv")
    branch = _dense(
        tmp_path,
        "branch.onnx",
        [
            helper.make_node("Relu", ["h"], ["r"], name="act"),
            helper.make_node("Add", ["h", "r"], ["y"], name="skip"),
        ],
    )
    one_line_error(UnsupportedArchitectureError, branch, "value 'h' feeds", "branching")
    matmul = _dense(tmp_path, "mm.onnx", [helper.make_node("MatMul", ["h", "h"], ["y"], name="sq")])
    one_line_error(UnsupportedArchitectureError, matmul, "node 'sq' (MatMul) takes computed values")
    leaky = _dense(tmp_path, "leaky.onnx", [helper.make_node("LeakyRelu", ["h"], ["y"], name="lk")])
    one_line_error(UnsupportedArchitectureError, leaky, "node 'lk' is LeakyRelu")


def test_onnx_truncated_or_corrupt(tmp_path):
    data = ACAS_ONNX.read_bytes()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    one_line_error(ModelFormatError, tmp_path / "half.onnx", "truncated or corrupt ONNX file")
    flipped = bytearray(data)
    flipped[10:400] = bytes(390)
    (tmp_path / "zeros.onnx").write_bytes(bytes(flipped))
    one_line_error(ModelFormatError, tmp_path / "zeros.onnx")


def test_onnx_reshape_to_vectors_passes_weird_reshape_refused(tmp_path):
    def graph(name: str, shape: list[int]) -> Path:
        rng = np.random.default_rng(2)
        inits = {"shape": np.array(shape, np.int64), "w": rng.normal(size=(3, 2))}
        nodes = [
            helper.make_node("Reshape", ["x", "shape"], ["v"], name="rs"),
            helper.make_node("Dropout", ["v"], ["d"]),
            helper.make_node("MatMul", ["d", "w"], ["y"], name="fc"),
        ]
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
            initializer=[
                numpy_helper.from_array(inits["shape"], "shape"),
                numpy_helper.from_array(inits["w"].astype(np.float32), "w"),
            ],
        )
        path = tmp_path / name
        onnx.save(helper.make_model(graph), str(path))
        return path

    mlp = load_model(graph("ok.onnx", [-1, 3]))
    assert mlp.widths == (3, 2) and mlp.activations == ("linear",)
    one_line_error(
        UnsupportedArchitectureError, graph("weird.onnx", [3, -1, 1]), "node 'rs' is Reshape"
    )
    # the declared input [None, 3] fixes the width the reshape must keep
    one_line_error(
        UnsupportedArchitectureError, graph("wide.onnx", [-1, 4]), "reshapes 3 features to 4"
    )
