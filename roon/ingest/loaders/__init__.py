"""Model loaders: a file or an in-memory torch module in, a validated :class:`~roon.MLP` out.

``load_model`` picks the reader by extension:

=====================  =====================================================
``.pt .pth .bin``      PyTorch state_dict (or a checkpoint nesting one), read with
                       ``weights_only=True``
``.safetensors``       safetensors (``roon.*`` header entries honoured)
``.nnet``              Reluplex/Marabou text format (ReLU hidden, linear out)
``.onnx``              ONNX graphs that are a chain of dense layers
=====================  =====================================================

Reference circuits (small hand-written MLPs in JSON, and the library roon ships) load with
``load_circuit`` (:mod:`roon.ingest.loaders.circuit`).

Every failure on a bad source is a :class:`~roon.errors.RoonError`
(:class:`~roon.errors.ModelFormatError` or
:class:`~roon.errors.UnsupportedArchitectureError`) whose one-line message starts
with the file as given (or ``<module ClassName>``), e.g.
``model.pt: layer 'fc3' is Conv2d-shaped (4-D weight); roon reads dense layers only (Linear)``.

This module's top level stays free of torch, onnx and safetensors: the CLI imports
:data:`MODEL_SUFFIXES` from here while building ``roon --help``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from roon.errors import InvalidArgumentError, ModelFormatError, RoonError
from roon.ingest.loaders._common import Loaded, sha256_file
from roon.ingest.loaders.circuit import Circuit, circuit_names, list_circuits, load_circuit
from roon.ingest.loaders.safetensors_io import save_safetensors
from roon.mlp import MLP

__all__ = [
    "MODEL_SUFFIXES",
    "Circuit",
    "assumed_activation_note",
    "load_notes",
    "circuit_names",
    "list_circuits",
    "load_circuit",
    "load_model",
    "load_model_bytes",
    "save_safetensors",
    "special_file_kind",
]

# extension → format name recorded in provenance
_FORMATS = {
    ".pt": "state_dict",
    ".pth": "state_dict",
    ".bin": "state_dict",
    ".safetensors": "safetensors",
    ".nnet": "nnet",
    ".onnx": "onnx",
}
MODEL_SUFFIXES: tuple[str, ...] = tuple(_FORMATS)
"""File extensions :func:`load_model` reads (lower case, with the dot)."""

_T = TypeVar("_T")

_READS = ".pt, .pth, .bin (PyTorch state_dict), .safetensors, .nnet, .onnx"


def load_model(
    source: str | os.PathLike[str] | Any,
    activation: str | Sequence[str] | None = None,
    *,
    output_activation: str | None = None,
    name: str | None = None,
    layers: Sequence[str] | None = None,
) -> MLP:
    """Load a model file or an in-memory ``torch.nn.Module`` as an :class:`~roon.MLP`.

    Activations come from the source wherever it records them (.nnet, ONNX,
    ``nn.Sequential``, safetensors written by roon); there ``activation`` and
    ``output_activation`` are ignored. Sources that store none (state_dict files,
    other safetensors) get ``activation`` on hidden layers — default ``relu``, and
    then the provenance says ``activation_assumed: True`` — and ``output_activation``
    (default ``linear``, the classifier convention) on the last layer. For other
    modules see :mod:`roon.ingest.loaders.module`.

    Args:
        source: a path to a ``.pt``/``.pth``/``.bin``/``.safetensors``/``.nnet``/``.onnx``
            file, or a ``torch.nn.Module``.
        activation: hidden-layer activation name, or one name per layer (last included).
        output_activation: the last layer's activation when the source records none.
        name: the model's name; default the file stem (or ``roon.name`` in a roon
            safetensors file), or the module's class name.
        layers: the layer names (key prefixes, e.g. ``["fc1", "fc2", "out"]``) of a
            state_dict or safetensors file in forward order. Without it their names must
            form a plain chain: names of branches (``shortcut``, ``downsample``, ``attn``,
            ...) and numbered blocks of several layers (residual blocks) are refused.

    Returns:
        The model, with one provenance step ``{"step": "load", "format", "source",
        "sha256", "activation_assumed"}``.

    Raises:
        ModelFormatError: missing, unreadable, truncated or corrupt file, unknown
            extension, NaN or infinite values.
        UnsupportedArchitectureError: anything that is not a chain of dense layers, or
            layer names that do not say the layers form one.
        InvalidArgumentError: ``source`` is neither a path nor a ``torch.nn.Module``.

    Example:
        >>> import roon
        >>> m = roon.load_model("tests/data/ACASXU_experimental_v2a_1_1.nnet")
        >>> m.widths
        (5, 50, 50, 50, 50, 50, 50, 5)
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_file(
            Path(source), os.fspath(source), activation, output_activation, name, layers
        )
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(source, torch.nn.Module):
        raise InvalidArgumentError(
            f"load_model takes a file path or a torch.nn.Module, not a {type(source).__name__}"
        )
    from roon.ingest.loaders.module import read_module

    cls = type(source).__name__
    label = f"<module {cls}>"
    loaded = _guarded(label, lambda: read_module(source, activation, output_activation))
    return _assemble(label, loaded, "module", label, None, name or cls)


def load_notes(mlp: MLP) -> list[str]:
    """What the user should know about how a model file was read: an assumed activation
    (:func:`assumed_activation_note`), the checkpoint entry the weights came from."""
    notes = [assumed_activation_note(mlp)]
    load = mlp.provenance[0] if mlp.provenance else {}
    if load.get("state_dict_key") is not None:
        notes.append(f"weights read from checkpoint entry {load['state_dict_key']!r}")
    return [n for n in notes if n]


def assumed_activation_note(mlp: MLP) -> str | None:
    """What to tell the user when ``mlp``'s activations were assumed, else None.

    A state_dict (or a plain safetensors file) stores no activation: ``load_model`` then
    gives its hidden layers ``relu`` unless told otherwise, and the provenance says so.
    Every command that loads model files prints this note, so a SiLU network read as ReLU
    never goes unnoticed (``--activation`` fixes it).
    """
    load = mlp.provenance[0] if mlp.provenance else {}
    if not load.get("activation_assumed"):
        return None
    hidden = mlp.activations[0] if len(mlp.layers) > 1 else mlp.activations[-1]
    return f"activation {hidden} assumed (the file stores none)"


def _load_file(
    path: Path,
    label: str,
    activation: str | Sequence[str] | None,
    output_activation: str | None,
    name: str | None,
    layers: Sequence[str] | None = None,
) -> MLP:
    if not path.exists():
        raise ModelFormatError(f"{label}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{label}: is a directory, not a model file; roon reads {_READS}")
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelFormatError(f"{label}: cannot read ({exc.strerror or exc})") from exc
    kind = special_file_kind(info.st_mode, path)
    if kind:  # never opened: a FIFO would block, a device would never end
        raise ModelFormatError(f"{label}: is {kind}, not a model file; roon reads {_READS}")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        shown = repr(path.suffix) if path.suffix else "none"
        raise ModelFormatError(
            f"{label}: unknown model file extension {shown}; roon reads {_READS}"
        )
    try:
        if info.st_size == 0:
            raise ModelFormatError(f"{label}: is an empty file")
        digest = sha256_file(path)
    except OSError as exc:
        raise ModelFormatError(f"{label}: cannot read ({exc.strerror or exc})") from exc

    def read() -> Loaded:
        if fmt == "state_dict":
            from roon.ingest.loaders.state_dict import read_state_dict

            return read_state_dict(path, activation, output_activation, layers=layers)
        if fmt == "safetensors":
            from roon.ingest.loaders.safetensors_io import read_safetensors

            return read_safetensors(path, activation, output_activation, layers=layers)
        if layers is not None:
            raise InvalidArgumentError(
                f"--layers orders the tensors of state_dict and safetensors files; a {fmt} "
                "file records its own layer order"
            )
        if fmt == "nnet":
            from roon.ingest.loaders.nnet import read_nnet

            return read_nnet(path)
        from roon.ingest.loaders.onnx_chain import read_onnx

        return read_onnx(path)

    loaded = _guarded(label, read)
    return _assemble(
        label, loaded, fmt, str(path.resolve()), digest, name or loaded.name or path.stem
    )


def load_model_bytes(data: bytes, label: str) -> MLP:
    """An :class:`~roon.MLP` from a safetensors file held in memory (``roon.*`` header
    entries honoured): one model of a catalogue's weights file.

    Raises:
        ModelFormatError: truncated or corrupt data (the message starts with ``label``).
    """
    from roon.ingest.loaders.safetensors_io import read_safetensors_bytes

    loaded = _guarded(label, lambda: read_safetensors_bytes(data))
    return _assemble(label, loaded, "safetensors", label, None, loaded.name or label)


def special_file_kind(mode: int, path: Path) -> str | None:
    """What a path that is not a regular file is (``a named pipe (FIFO)``, ...), or None."""
    import stat

    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return f"a character device ({path.resolve()})"
    if stat.S_ISBLK(mode):
        return f"a block device ({path.resolve()})"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _guarded(label: str, read: Callable[[], _T]) -> _T:
    """Run a reader; give every error the source's name, on one line, as a RoonError."""
    try:
        return read()
    except RoonError as exc:
        raise type(exc)(f"{label}: {' '.join(str(exc).split())}") from exc
    except MemoryError:
        raise
    except Exception as exc:  # a library failed in a way the reader did not foresee
        raise ModelFormatError(
            f"{label}: cannot read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from exc


def _assemble(
    label: str, loaded: Loaded, fmt: str, source: str, digest: str | None, name: str
) -> MLP:
    provenance = {
        "step": "load",
        "format": fmt,
        "source": source,
        "sha256": digest,
        "activation_assumed": loaded.activation_assumed,
    }
    if loaded.state_dict_key is not None:
        provenance["state_dict_key"] = loaded.state_dict_key
    return _guarded(
        label,
        lambda: MLP(
            tuple(loaded.layers), name=name, metadata=loaded.metadata, provenance=(provenance,)
        ),
    )
