"""Bad sources: each raises the intended RoonError with a one-line message naming it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fixtures import one_line_error

import roon
import roon.ingest.loaders as loaders
from roon import ModelFormatError, RoonError, UnsupportedArchitectureError
from roon.ingest.loaders import MODEL_SUFFIXES, load_model


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
