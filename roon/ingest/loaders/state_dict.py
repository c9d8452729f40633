"""PyTorch state_dict files (``.pt``, ``.pth``, ``.bin``), read with ``weights_only=True``.

Nothing in a file is ever executed. Before torch sees it, roon reads the pickle's opcodes
(``pickletools``, which runs nothing) and lists every Python object it would import: a
file naming anything beyond tensors, their storages and plain containers (a pickled
module, a class of the user's, ``os.system``) is refused in plain words, whatever torch
version is installed. What passes is loaded with ``torch.load(..., weights_only=True)``,
torch's own restricted unpickler, so the check is a second wall, not the only one.
A TorchScript archive is refused too (recognised by its ``code/`` folder before torch
reads it).

Training checkpoints nest the state_dict: ``{"model": ..., "epoch": 3}``,
``{"state_dict": ...}`` (Lightning, whose keys carry the ``model.`` prefix of the
LightningModule's attribute), ``{"model_state_dict": ..., "optimizer_state_dict": ...}``.
The one entry that is a dict of tensors is read (by name when several are), and the
provenance says which (``state_dict_key``).

A state_dict stores no activations. Hidden layers get ``activation`` (default
``relu``, recorded as assumed) and the last layer ``output_activation`` (default
``linear``), the usual classifier convention. Layer order comes from the key names
(numerically: ``fc2`` before ``fc10``), see :func:`._common.layers_from_tensors`.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import ModelFormatError
from roon.ingest.loaders._common import Loaded, first_line, layers_from_tensors

__all__ = ["check_torch_archive", "read_state_dict"]

# Keys under which training checkpoints commonly nest the model's state_dict, preferred
# in this order when a checkpoint holds several dicts of tensors (e.g. "model" and "ema").
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", re.S)
# torch.save stores archive members uncompressed, so what torch.load allocates is about
# the file's size. A deflated member can expand ~1000x (10 MB of zeros → 10 GB): refuse
# archives that declare more than this many times their size, above a floor that no
# small file can hurt with.
_MAX_EXPANSION = 4
_EXPANSION_FLOOR = 64 << 20  # bytes


def read_state_dict(
    path: Path,
    activation: str | Sequence[str] | None = None,
    output_activation: str | None = None,
    *,
    layers: Sequence[str] | None = None,
) -> Loaded:
    """Read a state_dict (or a checkpoint dict wrapping one) into dense layers.

    Args:
        path: the ``.pt``/``.pth``/``.bin`` file.
        activation: hidden-layer activation, or one name per layer; default ``relu``.
        output_activation: last-layer activation; default ``linear``.

    Raises:
        ModelFormatError: unreadable, truncated or corrupt file, a pickled object that
            is not a dict of tensors, NaN or infinite values.
        UnsupportedArchitectureError: a non-dense layer, or shapes that do not chain.
    """
    obj = _torch_load(path)
    state, key = _unwrap(obj)
    tensors = {str(k): _to_numpy(str(k), value) for k, value in state.items()}
    found, assumed = layers_from_tensors(
        tensors,
        None,
        file_order=True,  # torch keeps registration order in the dict
        activation=activation,
        output_activation=output_activation,
        order=layers,
    )
    return Loaded(found, activation_assumed=assumed, state_dict_key=key)


def check_torch_archive(path: Path) -> None:
    """Refuse a zip-format torch file whose members would expand far beyond its size.

    Reads only the zip's central directory (the sizes torch's reader allocates from).
    Files that are not zip archives (the legacy format, garbage) pass: torch reports them.

    Raises:
        ModelFormatError: the members declare more than ``4x`` the file's size (and
            more than 64 MiB): a compressed archive that torch.save does not write.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            declared = sum(member.file_size for member in archive.infolist())
        size = path.stat().st_size
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return  # torch.load reports unreadable archives in its own words
    if declared > max(_MAX_EXPANSION * size, _EXPANSION_FLOOR):
        raise ModelFormatError(
            f"is a zip archive of {size:,} bytes whose members expand to {declared:,} bytes "
            "(a zip bomb?); torch.save writes uncompressed archives, roon reads only those"
        )


def _is_torchscript(path: Path) -> bool:
    """Whether a zip-format torch file is a TorchScript archive (it carries ``code/``)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return any("/code/" in name or name.endswith("/constants.pkl") for name in names)


_TORCHSCRIPT = (
    "is a TorchScript archive, not a state_dict; roon does not load TorchScript: save "
    "its weights with torch.save(torch.jit.load(path).state_dict(), 'weights.pt') and "
    "ingest that with --activation"
)


# What a state_dict pickle may import: tensors rebuilt from their storages, and plain
# containers. Everything else is a Python object whose loading could run code.
_SAFE_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "torch.Size",
        "torch.device",
        "torch.serialization._get_layout",
        "torch._tensor._rebuild_from_type_v2",
        "_codecs.encode",  # protocol 2 writes bytes as _codecs.encode(text, 'latin1')
    }
    # plain containers; protocol 2 names the builtins module by its Python 2 name
    | {f"{m}.{n}" for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "slice")}
    | {f"{m}.{n}" for m in ("builtins", "__builtin__") for n in ("complex", "bytearray")}
)
_SAFE_PATTERNS = (
    re.compile(r"torch\.\w*Storage"),  # torch.FloatStorage, torch.BFloat16Storage, ...
    re.compile(r"torch\._utils\._rebuild_\w+"),  # _rebuild_tensor_v2, _rebuild_parameter, ...
    re.compile(r"torch\.storage\.(Untyped|Typed)Storage"),
)
# torch's legacy (non-zip) format is up to five pickles in a row (magic number, protocol,
# system info, the object, storage keys), then raw storage bytes.
_LEGACY_PICKLES = 5
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_STRING_OPS |= {"SHORT_BINSTRING", "BINSTRING", "STRING"}
# Opcodes that push nothing a later STACK_GLOBAL could take as its module or name.
_SILENT_OPS = frozenset({"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "PROTO", "FRAME"})


def _safe_global(name: str) -> bool:
    if name in _SAFE_GLOBALS or any(p.fullmatch(name) for p in _SAFE_PATTERNS):
        return True
    module, _, attr = name.rpartition(".")
    if module != "torch":
        return False
    import torch

    value = getattr(torch, attr, None)  # dtypes, layouts, quantization schemes
    return isinstance(value, torch.dtype | torch.layout | torch.qscheme)


def _imports(stream: Any) -> tuple[list[str], Any]:
    """The ``module.name`` of every global one pickle imports, and its first value when
    that is a plain integer (the legacy format's magic number); reads one pickle.

    Raises:
        ValueError: the bytes are not a pickle (pickletools' own error).
    """
    found: list[str] = []
    strings: list[str | None] = []  # string constants pushed, None for other pushes
    memo: dict[int, str | None] = {}
    first: Any = None
    for op, arg, _ in pickletools.genops(stream):
        if first is None and op.name in ("BININT", "BININT1", "BININT2", "LONG1", "INT", "LONG"):
            first = arg
        if op.name in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            module, name = (strings[-2], strings[-1]) if len(strings) >= 2 else (None, None)
            found.append(f"{module}.{name}" if module and name else "<a computed global>")
        if op.name in _STRING_OPS:
            strings.append(str(arg))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(str(arg))] = strings[-1] if strings else None
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            strings.append(memo.get(int(str(arg))))
        elif op.name not in _SILENT_OPS and op.stack_after:
            strings.append(None)
    return found, first


def pickled_imports(path: Path) -> list[str] | None:
    """Every global the pickles of a torch file would import, read without running any.

    Returns None when the file is not one roon can read this way (torch reports it).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == "data.pkl"]
                found: list[str] = []
                for member in members:
                    with archive.open(member) as stream:
                        found += _imports(stream)[0]
                return found
        with open(path, "rb") as stream:
            found, first = _imports(stream)
            if first != _LEGACY_MAGIC:
                return found  # one plain pickle, not torch's legacy format
            for _ in range(_LEGACY_PICKLES - 1):
                found += _imports(stream)[0]
            return found
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, IndexError):
        return None  # not a pickle roon can read; torch.load says what it is


def _refuse_code(path: Path) -> None:
    """Refuse a file whose pickles import anything but tensors and plain containers."""
    found = pickled_imports(path)
    if found is None:
        return
    unsafe = list(dict.fromkeys(name for name in found if not _safe_global(name)))
    modules = [name for name in unsafe if name.startswith("torch.nn.modules.")]
    if modules:
        raise ModelFormatError(
            f"holds a whole pickled model ({modules[0].rsplit('.', 1)[-1]}, saved with "
            "torch.save(model)); roon will not unpickle it, since that runs code: save "
            "model.state_dict() and ingest that with --activation, or pass the module "
            "itself to roon.load_model in Python"
        )
    if unsafe:
        shown = ", ".join(unsafe[:3]) + (", ..." if len(unsafe) > 3 else "")
        raise ModelFormatError(
            f"holds pickled Python objects ({shown}) that could run code when loaded; roon "
            "refuses to load it and ran nothing. If it is your model, save its weights "
            "instead: torch.save(model.state_dict(), path), and ingest that file with "
            "--activation (or pass the module to roon.load_model from Python)"
        )


def _torch_load(path: Path) -> Any:
    import warnings

    import torch

    check_torch_archive(path)
    if _is_torchscript(path):
        raise ModelFormatError(_TORCHSCRIPT)
    _refuse_code(path)
    try:
        with warnings.catch_warnings():
            # torch warns before handing a TorchScript archive it did not spot to jit.load
            warnings.filterwarnings("ignore", message=".*TorchScript.*")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        refused = _REFUSED_GLOBAL.search(text)
        if refused and refused.group(1).startswith("torch.nn.modules."):
            raise ModelFormatError(
                f"holds a whole pickled model ({refused.group(1).rsplit('.', 1)[-1]}, saved "
                "with torch.save(model)); roon will not unpickle it, since that runs code: "
                "save model.state_dict() and ingest that with --activation, or pass the "
                "module itself to roon.load_model in Python"
            ) from exc
        if refused:
            raise ModelFormatError(
                f"holds a pickled {refused.group(1)} object, not a dict of tensors; "
                "roon loads with weights_only=True and will not unpickle it "
                "(save model.state_dict() instead)"
            ) from exc
        detail = _UNPICKLER_DETAIL.search(text)
        why = " ".join(detail.group(1).split()) if detail else first_line(exc)
        raise ModelFormatError(f"truncated or corrupt PyTorch file ({why})") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, … for bad bytes
        if "TorchScript" in str(exc):
            raise ModelFormatError(_TORCHSCRIPT) from exc
        raise ModelFormatError(f"truncated or corrupt PyTorch file ({first_line(exc)})") from exc


def _is_tensor_dict(value: Any) -> bool:
    import torch

    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def _unwrap(obj: Any) -> tuple[Mapping[Any, Any], str | None]:
    """The state_dict, and the checkpoint key it was nested under (None: the file itself).

    A dict whose values are all tensors is the state_dict. Otherwise the entries that are
    dicts of tensors are candidates: the only one, or the first of :data:`_WRAPPER_KEYS`.
    """
    if not isinstance(obj, Mapping):
        raise ModelFormatError(
            f"holds type {type(obj).__name__}, not a state_dict (a dict of tensors)"
        )
    if _is_tensor_dict(obj):
        return obj, None
    candidates = [str(k) for k, v in obj.items() if _is_tensor_dict(v)]
    preferred = [k for k in _WRAPPER_KEYS if k in candidates]
    if len(candidates) == 1 or preferred:
        key = preferred[0] if preferred else candidates[0]
        return obj[key], key
    if candidates:
        shown = ", ".join(repr(k) for k in candidates)
        raise ModelFormatError(
            f"is a checkpoint with several state_dicts ({shown}); save the one to analyse "
            "on its own with torch.save(checkpoint[KEY], 'weights.pt')"
        )
    return obj, None  # not a checkpoint: the entries are reported one by one


def _to_numpy(key: str, value: Any) -> np.ndarray:
    import torch

    if not isinstance(value, torch.Tensor):
        raise ModelFormatError(
            f"entry {key!r} is not a tensor but {type(value).__name__}; "
            "expected a state_dict (a dict of tensors)"
        )
    t = value.detach().cpu()
    try:
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        if t.dtype == torch.bfloat16:
            t = t.float()  # numpy has no bfloat16; widening to float32 is exact
        return t.numpy()
    except (RuntimeError, TypeError) as exc:
        raise ModelFormatError(
            f"entry {key!r} ({t.dtype}) cannot be read as numbers ({first_line(exc)})"
        ) from exc
