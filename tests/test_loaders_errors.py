"""Bad sources: each raises the intended RoonError with a one-line message naming it."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fixtures import one_line_error
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch_file

import roon
import roon.ingest.loaders as loaders
from roon import ModelFormatError, RoonError, UnsupportedArchitectureError
from roon.ingest.loaders import MODEL_SUFFIXES, load_model
from roon.ingest.normalize import load_sample


def test_suffixes():
    assert set(MODEL_SUFFIXES) == {".pt", ".pth", ".bin", ".safetensors", ".nnet", ".onnx"}
    assert all(s == s.lower() and s.startswith(".") for s in MODEL_SUFFIXES)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
def test_random_bytes(tmp_path, suffix, seed):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(seed).bytes(64 + 300 * seed))
    one_line_error(ModelFormatError, path)


@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    one_line_error(ModelFormatError, path, "is an empty file")


def test_unknown_extension_missing_file_and_directory(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    msg = one_line_error(
        ModelFormatError, tmp_path / "model.h5", "unknown model file extension '.h5'"
    )
    for suffix in MODEL_SUFFIXES:
        assert suffix in msg
    (tmp_path / "README").write_text("hi")
    one_line_error(ModelFormatError, tmp_path / "README", "extension none")
    one_line_error(ModelFormatError, tmp_path / "absent.pt", "no such file")
    one_line_error(ModelFormatError, tmp_path, "is a directory")
    (tmp_path / "folder.onnx").mkdir()
    one_line_error(ModelFormatError, tmp_path / "folder.onnx", "is a directory")
    # the path is shown as the caller spelled it
    with pytest.raises(ModelFormatError, match=r"^relative/absent\.nnet: no such file$"):
        load_model("relative/absent.nnet")


def test_errors_from_mlp_construction_get_the_file_name(tmp_path, monkeypatch):
    path = tmp_path / "tiny.nnet"
    path.write_text("1,1,1,1,\n1,1,\n0,\n0,\n1,\n0,0,\n1,1,\n2.0,\n0.5,\n")
    assert load_model(path).forward(np.array([[3.0]]))[0, 0] == 6.5

    def refuse(*args, **kwargs):
        raise UnsupportedArchitectureError("layer 0 takes 3 inputs\nbut layer 1 has 2")

    monkeypatch.setattr(loaders, "MLP", refuse)
    msg = one_line_error(UnsupportedArchitectureError, path)
    assert msg == f"{path}: layer 0 takes 3 inputs but layer 1 has 2"


def test_unexpected_library_errors_become_model_format_errors(tmp_path, monkeypatch):
    import roon.ingest.loaders.nnet as nnet

    path = tmp_path / "x.nnet"
    path.write_text("1,1,1,1,\n")

    def boom(_path):
        raise KeyError("surprise")

    monkeypatch.setattr(nnet, "read_nnet", boom)
    msg = one_line_error(ModelFormatError, path, "cannot read (KeyError")
    assert isinstance(ModelFormatError(msg), RoonError)


def test_top_level_api_and_lazy_imports():
    assert roon.load_model is load_model
    code = (
        "import sys, roon, roon.ingest.loaders as l; "
        "assert l.MODEL_SUFFIXES; "
        "heavy = [m for m in ('torch', 'onnx', 'safetensors') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


TINY_NNET = "1,1,1,1,\n1,1,\n0,\n0,\n1,\n0,0,\n1,1,\n2.0,\n0.5,\n"


def deflated_copy(source: Path, target: Path) -> None:
    """``source`` (a torch.save zip) re-packed with every member deflated."""
    with (
        zipfile.ZipFile(source) as zin,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout,
    ):
        for info in zin.infolist():
            with zin.open(info) as src, zout.open(info.filename, "w", force_zip64=True) as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)


def test_a_deflated_torch_archive_is_refused_before_torch_inflates_it(tmp_path):
    # 128 MiB of zero weights deflate to ~0.6 MB: torch.load would allocate all of it
    # (and a 10 MB file would be 20 GB); torch.save never compresses, so roon refuses
    plain = tmp_path / "plain.pt"
    torch.save({"fc.weight": torch.zeros(1, 2**25)}, plain)
    bomb = tmp_path / "bomb.pt"
    deflated_copy(plain, bomb)
    plain.unlink()
    assert bomb.stat().st_size < 2**21
    msg = one_line_error(ModelFormatError, bomb, "zip bomb", "uncompressed")
    assert f"{bomb.stat().st_size:,} bytes" in msg
    # an input sample for low-variance goes through the same torch.load
    with pytest.raises(ModelFormatError, match="zip bomb") as info:
        load_sample(bomb)
    assert "\n" not in str(info.value)


def test_a_small_deflated_archive_still_loads(tmp_path):
    # compression as such is not the problem: below the floor nothing can hurt
    plain = tmp_path / "plain.pt"
    torch.save({"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}, plain)
    small = tmp_path / "small.pt"
    deflated_copy(plain, small)
    assert load_model(small).widths == (3, 2)


def test_npy_sample_declaring_more_data_than_it_holds(tmp_path):
    # the header says 10^13 float64 values; numpy used to try to allocate 73 TiB
    # (MemoryError, a traceback) before noticing the file is 128 bytes long
    path = tmp_path / "sample.npy"
    np.save(path, np.zeros((2, 3)))
    raw = path.read_bytes().replace(b"(2, 3)", b"(1000000, 10000000)")
    path.write_bytes(raw)
    with pytest.raises(ModelFormatError, match=f"^cannot read sample {path}: ") as info:
        load_sample(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("shape", [(0, 3), (2, 0)])
def test_zero_width_layers_are_refused_in_every_format(tmp_path, shape):
    out = shape[0]
    weight, bias = np.ones(shape, np.float32), np.zeros(out, np.float32)
    pt = tmp_path / "empty.pt"
    torch.save({"fc.weight": torch.from_numpy(weight), "fc.bias": torch.from_numpy(bias)}, pt)
    st = tmp_path / "empty.safetensors"
    save_file({"fc.weight": weight, "fc.bias": bias}, str(st))
    for path in (pt, st):
        one_line_error(
            UnsupportedArchitectureError, path, f"weight has shape {shape}", "at least one"
        )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, out])],
        initializer=[numpy_helper.from_array(weight.T.copy(), "w")],
    )
    path = tmp_path / "empty.onnx"
    onnx.save(helper.make_model(graph), str(path))
    one_line_error(UnsupportedArchitectureError, path, "at least one")


def onnx_file(path: Path, nodes, inits: dict, in_shape=(None, 3), out_width=2) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, out_width])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


W = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)


def test_onnx_custom_domain_operator_is_not_read_as_the_standard_one(tmp_path):
    # 'Relu' of a custom operator set may compute anything; it used to load as ReLU
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["z"], name="fc"),
        helper.make_node("Relu", ["z"], ["y"], name="act", domain="com.example"),
    ]
    path = onnx_file(tmp_path / "custom.onnx", nodes, {"w": W})
    one_line_error(UnsupportedArchitectureError, path, "node 'act'", "'com.example'")
    nodes[1] = helper.make_node("Relu", ["z"], ["y"], name="act", domain="ai.onnx")
    assert load_model(onnx_file(tmp_path / "std.onnx", nodes, {"w": W})).activations == ("relu",)


@pytest.mark.parametrize(
    ("training", "ratio", "loads"),
    [(True, 0.5, False), (False, 0.5, True), (True, 0.0, True)],
)
def test_onnx_dropout_in_training_mode_is_refused(tmp_path, training, ratio, loads):
    # with training_mode true, Dropout zeroes random inputs at inference: not a function
    inits = {"w": W, "ratio": np.array(ratio, np.float32), "train": np.array(training)}
    nodes = [
        helper.make_node("Dropout", ["x", "ratio", "train"], ["d"], name="drop"),
        helper.make_node("MatMul", ["d", "w"], ["y"], name="fc"),
    ]
    path = onnx_file(tmp_path / "drop.onnx", nodes, inits)
    if loads:
        assert load_model(path).widths == (3, 2)
    else:
        one_line_error(UnsupportedArchitectureError, path, "node 'drop'", "training mode")


def test_onnx_reshape_of_the_declared_input_is_checked(tmp_path):
    # x [N, 4] reshaped to [2N, 2] and multiplied by W [2, 3] is not a 2-input MLP;
    # roon used to read it as one, ignoring the declared input width
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["v"], name="rs"),
        helper.make_node("MatMul", ["v", "w"], ["y"], name="fc"),
    ]
    inits = {"shape": np.array([-1, 2], np.int64), "w": np.ones((2, 3), np.float32)}
    path = onnx_file(tmp_path / "rs.onnx", nodes, inits, in_shape=(None, 4), out_width=3)
    one_line_error(UnsupportedArchitectureError, path, "node 'rs'", "reshapes 4 features to 2")
    # a first layer that does not take the declared width
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    path = onnx_file(tmp_path / "wide.onnx", nodes, {"w": W}, in_shape=(None, 5))
    one_line_error(UnsupportedArchitectureError, path, "node 'fc'", "takes 3 inputs")
    # [1, 1, 1, 3] (ACAS Xu style) and unknown or non-vector shapes still load
    for shape in [(1, 1, 1, 3), (None, "n"), (None, 2, 3), (3,)]:
        loaded = load_model(onnx_file(tmp_path / "ok.onnx", nodes, {"w": W}, in_shape=shape))
        assert loaded.widths == (3, 2)


def test_nnet_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.nnet"
    path.write_bytes(b"\xef\xbb\xbf" + TINY_NNET.encode())
    assert load_model(path).forward(np.array([[3.0]]))[0, 0] == 6.5


def test_nnet_errors_stay_short_and_say_what_is_wrong(tmp_path):
    path = tmp_path / "long.nnet"
    path.write_text(TINY_NNET.replace("2.0", "1" * 5000 + "x"))
    msg = one_line_error(ModelFormatError, path, "line 8:", "is not a number")
    assert len(msg) < len(str(path)) + 100
    for count in ("0", "-1"):
        path = tmp_path / f"layers{count}.nnet"
        path.write_text(TINY_NNET.replace("1,1,1,1,", f"{count},1,1,1,", 1))
        one_line_error(ModelFormatError, path, "line 1:", f"must be positive, not {count}")


def test_safetensors_float8_is_named_not_called_corrupt(tmp_path):
    path = tmp_path / "f8.safetensors"
    weight = torch.ones(2, 3).to(torch.float8_e4m3fn)
    save_torch_file({"fc.weight": weight, "fc.bias": torch.zeros(2)}, str(path))
    msg = one_line_error(ModelFormatError, path, "'fc.weight'", "F8_E4M3")
    assert "corrupt" not in msg


def _unblocked(call):
    """Run ``call`` with a 10 s alarm: a reader that opens a FIFO blocks forever."""
    import signal

    def blocked(*_):
        raise AssertionError("the read blocked on a special file")

    old = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
def test_a_named_pipe_is_refused_without_opening_it(tmp_path, suffix):
    import os

    path = tmp_path / f"pipe{suffix}"
    os.mkfifo(path)
    _unblocked(lambda: one_line_error(ModelFormatError, path, "is a named pipe (FIFO)"))


@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
def test_a_link_to_dev_urandom_is_refused_as_a_device(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.symlink_to("/dev/urandom")
    _unblocked(lambda: one_line_error(ModelFormatError, path, "character device (/dev/urandom)"))


@pytest.mark.parametrize("kind", ["fifo", "urandom"])
@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_samples_and_probe_sets_refuse_special_files(tmp_path, kind, suffix):
    import os

    from roon.ingest.spaces import load_probe

    path = tmp_path / f"sample{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/urandom")
    want = "a named pipe (FIFO)" if kind == "fifo" else "a character device (/dev/urandom)"
    for load in (load_sample, load_probe):
        with pytest.raises(ModelFormatError, match=r"^[^\n]*" + re.escape(want)):
            _unblocked(lambda load=load: load(path))
