"""safetensors files: reading any state_dict-style file, and roon's own writer.

Keys follow the state_dict conventions (``fc1.weight``, ``net.0.bias``, …). roon
writes ``layers.<i>.weight`` / ``layers.<i>.bias`` and three header entries, which
the reader trusts over any ``activation`` argument:

- ``roon.activations``: comma-separated activation per layer, e.g. ``relu,relu,linear``;
- ``roon.name``: the model's name;
- ``roon.metadata``: the model's metadata as JSON.

Without ``roon.activations`` a file is treated like a state_dict: hidden layers get
``activation`` (default ``relu``, recorded as assumed), the last ``output_activation``.
Reading needs no torch, except for bfloat16 tensors (numpy has no bfloat16).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from roon.errors import ModelFormatError
from roon.ingest.loaders._common import Loaded, first_line, layers_from_tensors
from roon.mlp import MLP

__all__ = ["read_safetensors", "read_safetensors_bytes", "save_safetensors", "write_safetensors"]

ACTIVATIONS_KEY = "roon.activations"
NAME_KEY = "roon.name"
METADATA_KEY = "roon.metadata"
FORMAT_KEY = "roon.format"
FORMAT_VERSION = "mlp-1"
# safetensors dtypes numpy holds exactly (BF16 is read through torch); F8_*, F4, C64, …
# have no exact numpy counterpart.
_READABLE_DTYPES = frozenset(
    {"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"}
)


def read_safetensors(
    path: Path,
    activation: str | Sequence[str] | None = None,
    output_activation: str | None = None,
    *,
    layers: Sequence[str] | None = None,
) -> Loaded:
    """Read a safetensors file into dense layers, honouring roon's header entries.

    Args:
        path: the ``.safetensors`` file.
        activation: hidden-layer activation (or one per layer) when the file records none.
        output_activation: last-layer activation when the file records none.

    Raises:
        ModelFormatError: truncated or corrupt file, a bad ``roon.*`` header entry,
            NaN or infinite values.
        UnsupportedArchitectureError: a non-dense layer, or shapes that do not chain.
    """
    from safetensors import safe_open

    unsupported: list[tuple[str, str]] = []  # (key, dtype) numpy cannot hold exactly
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = dict(f.metadata() or {})
            tensors = {}
            bf16 = []
            names = f.keys()  # a safe_open handle is not iterable itself
            for key in names:
                dtype = f.get_slice(key).get_dtype()
                if dtype == "BF16":
                    bf16.append(key)
                elif dtype not in _READABLE_DTYPES:
                    unsupported.append((key, dtype))
                elif not unsupported:
                    tensors[key] = f.get_tensor(key)
        if bf16 and not unsupported:  # numpy has no bfloat16: via torch, widened exactly
            with safe_open(str(path), framework="pt") as f:
                for key in bf16:
                    tensors[key] = f.get_tensor(key).float().numpy()
    except Exception as exc:  # SafetensorError, OSError, ValueError for bad bytes
        raise ModelFormatError(
            f"truncated or corrupt safetensors file ({first_line(exc)})"
        ) from exc
    if unsupported:
        key, dtype = unsupported[0]
        raise ModelFormatError(
            f"tensor {key!r} has dtype {dtype}; roon reads float (F16, BF16, F32, F64), "
            "integer and boolean tensors"
        )

    return _loaded(tensors, header, activation, output_activation, layers)


def _loaded(
    tensors: dict[str, np.ndarray],
    header: dict[str, str],
    activation: str | Sequence[str] | None,
    output_activation: str | None,
    layers: Sequence[str] | None,
) -> Loaded:
    """Dense layers from a file's tensors and header entries."""
    activations = None
    if ACTIVATIONS_KEY in header:
        activations = [a.strip() for a in header[ACTIVATIONS_KEY].split(",")]
    metadata = {}
    if METADATA_KEY in header:
        try:
            metadata = json.loads(header[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ModelFormatError(
                f"header entry {METADATA_KEY!r} is not valid JSON ({exc})"
            ) from exc
        if not isinstance(metadata, dict):
            raise ModelFormatError(f"header entry {METADATA_KEY!r} is not a JSON object")
    found, assumed = layers_from_tensors(
        tensors,
        activations,
        file_order=False,  # the format sorts tensors by dtype and name; order is lost
        activation=activation,
        output_activation=output_activation,
        order=layers,
    )
    return Loaded(found, activation_assumed=assumed, metadata=metadata, name=header.get(NAME_KEY))


def save_safetensors(mlp: MLP, path: str | os.PathLike[str]) -> Path:
    """Write ``mlp`` to a safetensors file that :func:`roon.load_model` reads back exactly.

    Weights and biases keep their dtype and bits; activations, name and metadata go to
    the header (metadata as JSON, so tuples come back as lists). The write is atomic: a
    temporary file in the same directory, fsync, then ``os.replace``.

    Args:
        mlp: the model.
        path: destination file (conventionally ``*.safetensors``).

    Returns:
        The path written.

    Raises:
        ModelFormatError: the metadata is not JSON-serializable, or the file cannot be written.

    Example:
        >>> save_safetensors(mlp, "model.safetensors")  # doctest: +SKIP
        >>> roon.load_model("model.safetensors") == mlp  # doctest: +SKIP
        True
    """
    path = Path(path)
    head, arrays = _encode(mlp, path)
    try:
        _atomic_write(path, head, arrays)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def write_safetensors(handle: BinaryIO, mlp: MLP) -> int:
    """Append ``mlp`` as a whole safetensors file (the bytes :func:`save_safetensors`
    writes) to an open binary file; returns the bytes written. Nothing is fsynced.

    Raises:
        ModelFormatError: the metadata is not JSON-serializable.
        OSError: the write failed.
    """
    head, arrays = _encode(mlp, "<model>")
    written = handle.write(head)
    for array in arrays:  # little-endian, C order, straight from memory
        written += handle.write(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).data)
    return written


def read_safetensors_bytes(data: bytes) -> Loaded:
    """Read a safetensors file held in memory (one model of a catalogue's weights file).

    Raises:
        ModelFormatError: truncated or corrupt data, or a bad ``roon.*`` header entry.
    """
    from safetensors.numpy import load

    try:
        size = int.from_bytes(data[:8], "little")
        if len(data) < 8 + size:
            raise ValueError(f"{len(data)} bytes, the header alone says {8 + size}")
        header = dict(json.loads(data[8 : 8 + size]).get("__metadata__") or {})
        tensors = load(data)
    except Exception as exc:  # SafetensorError, ValueError, JSONDecodeError
        raise ModelFormatError(
            f"truncated or corrupt safetensors data ({first_line(exc)})"
        ) from exc
    return _loaded(tensors, header, None, None, None)


def _encode(mlp: MLP, where: object) -> tuple[bytes, list[np.ndarray]]:
    """The header bytes and the arrays, in file order, of ``mlp``'s safetensors file."""
    try:
        meta_json = json.dumps(dict(mlp.metadata))
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"{where}: cannot write: metadata is not JSON-serializable ({exc})"
        ) from exc
    header = {
        FORMAT_KEY: FORMAT_VERSION,
        ACTIVATIONS_KEY: ",".join(mlp.activations),
        NAME_KEY: mlp.name,
        METADATA_KEY: meta_json,
    }
    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(mlp.layers):
        tensors[f"layers.{i}.weight"] = layer.weight
        tensors[f"layers.{i}.bias"] = layer.bias
    head, order = _layout(tensors, header)
    return head, [tensors[name] for name in order]


# safetensors dtype names of the arrays an MLP holds, and their rank in the library's
# data order (larger dtypes first).
_DTYPES = {np.dtype("float64"): ("F64", 1), np.dtype("float32"): ("F32", 0)}


def _layout(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> tuple[bytes, list[str]]:
    """The file's header (length prefix and JSON) and the order the data follows it.

    The bytes are those of the safetensors library's ``save`` with the header's keys
    sorted (its Rust hash map changes their order from call to call, so equal models
    would not give equal bytes): data ordered by dtype, largest first, then by name;
    the JSON compact, padded with spaces to a multiple of 8. Writing it here lets the
    arrays go to the file straight from memory, with no serialized copy of the model.
    """
    order = sorted(tensors, key=lambda name: (-_DTYPES[tensors[name].dtype][1], name))
    entries: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name in order:
        array = tensors[name]
        size = array.size * array.dtype.itemsize
        entries[name] = {
            "dtype": _DTYPES[array.dtype][0],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw = text.encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, order


def _atomic_write(path: Path, head: bytes, arrays: Sequence[np.ndarray]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is not a secret
            f.write(head)
            for array in arrays:  # little-endian, C order, straight from memory
                f.write(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
