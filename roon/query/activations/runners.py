"""Run a model on a batch and return its named activations: roon MLPs and torch modules.

A runner is a context manager: inside it, ``run(batch)`` returns ``{name: [batch, width]}``
float64 arrays for the selected layers. For a torch module the runner registers one
forward hook per selected module, each bound to its own name (``functools.partial``: the
seed's lambda closed over the loop variable, so every hook wrote under the last name), puts
the module in eval mode, and on exit — also when the forward pass raised — removes every
hook and restores each submodule's training flag.

Layer names:

* roon :class:`~roon.MLP`: ``layer{i}`` is layer ``i``'s output after its activation,
  ``layer{i}.pre`` the pre-activation ``W x + b``; the default is every ``layer{i}``.
  The MLP is evaluated in float64 with :func:`roon.mlp.activate`, as ``MLP.forward`` does.
* ``torch.nn.Module``: module paths from ``named_modules()``; the default is every leaf
  module (no children). A module's output is flattened to ``[batch, features]`` (a
  convolution's every channel × position is one neuron).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, RoonError, one_line
from roon.mlp import MLP, activate

__all__ = ["MLPRunner", "ModuleRunner", "runner_for", "model_label"]


def model_label(model: Any) -> str:
    """A short name for messages: the MLP's name (or id prefix), or the module's class."""
    if isinstance(model, MLP):
        return model.name or model.id[:12]
    return type(model).__name__


def _choose(label: str, valid: Sequence[str], wanted: Sequence[str] | None, default: list[str]):
    if wanted is None:
        return tuple(default)
    if isinstance(wanted, str):
        wanted = [part.strip() for part in wanted.split(",") if part.strip()]
    wanted = list(wanted)
    unknown = [name for name in wanted if name not in valid]
    if unknown:
        shown = ", ".join(valid[:40]) + (", ..." if len(valid) > 40 else "")
        raise InvalidArgumentError(f"{label} has no layer {unknown[0]!r}; its layers are {shown}")
    if not wanted:
        raise InvalidArgumentError(f"no layers of {label} selected; its layers are {valid}")
    if len(set(wanted)) != len(wanted):
        raise InvalidArgumentError(f"layers {wanted} name a layer of {label} twice")
    return tuple(wanted)


def _as_rows(batch: Any, label: str) -> np.ndarray:
    if hasattr(batch, "detach"):
        batch = batch.detach().cpu().numpy()
    return np.asarray(batch, dtype=np.float64).reshape(len(batch), -1)


class MLPRunner:
    """Evaluates a roon MLP layer by layer in float64 (no torch needed)."""

    def __init__(self, mlp: MLP, layers: Sequence[str] | str | None = None) -> None:
        self.model = mlp
        self.label = model_label(mlp)
        self.valid = [
            f"layer{i}{suffix}" for i in range(len(mlp.layers)) for suffix in ("", ".pre")
        ]
        default = [f"layer{i}" for i in range(len(mlp.layers))]
        self.names = _choose(self.label, self.valid, layers, default)
        self._last = max(int(name[5:].split(".")[0]) for name in self.names)

    def __enter__(self) -> MLPRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        h = _as_rows(batch, self.label)
        if h.shape[1] != self.model.input_width:
            raise InvalidArgumentError(
                f"inputs have {h.shape[1]} features per sample but {self.label} takes "
                f"{self.model.input_width}"
            )
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.model.layers[: self._last + 1]):
            z = h @ layer.weight.astype(np.float64).T + layer.bias.astype(np.float64)
            h = activate(layer.activation, z)
            out[f"layer{i}.pre"], out[f"layer{i}"] = z, h
        return {name: out[name] for name in self.names}


class ModuleRunner:
    """Runs a ``torch.nn.Module`` with one forward hook per selected module."""

    def __init__(self, module: Any, layers: Sequence[str] | str | None = None) -> None:
        self.model = module
        self.label = model_label(module)
        named = [(name, mod) for name, mod in module.named_modules() if name]
        if not named:
            raise InvalidArgumentError(
                f"{self.label} has no submodules to capture; wrap it, e.g. nn.Sequential(model)"
            )
        self.modules = dict(named)
        self.valid = [name for name, _ in named]
        default = [name for name, mod in named if not any(True for _ in mod.children())]
        self.names = _choose(self.label, self.valid, layers, default)
        self._handles: list[Any] = []
        self._training: list[tuple[Any, bool]] = []
        self._seen: dict[str, Any] = {}
        self._errors: list[str] = []

    def _record(self, name: str, module: Any, args: Any, output: Any) -> None:
        if not hasattr(output, "detach") or not hasattr(output, "shape"):
            self._errors.append(
                f"module {name!r} of {self.label} returns {type(output).__name__}, not a "
                "tensor; capture one of its submodules instead"
            )
            return
        if name in self._seen:
            self._errors.append(
                f"module {name!r} of {self.label} runs more than once per forward pass; "
                "capture a module that runs once"
            )
            return
        self._seen[name] = output.detach()

    def __enter__(self) -> ModuleRunner:
        try:
            self._training = [(mod, mod.training) for mod in self.model.modules()]
            self.model.eval()  # dropout off, batch-norm running statistics
            for name in self.names:
                hook = functools.partial(self._record, name)  # bound to its own name
                self._handles.append(self.modules[name].register_forward_hook(hook))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for mod, training in self._training:
            mod.train(training)
        self._training = []

    def _tensor(self, batch: Any) -> Any:
        import torch

        param = next((p for p in self.model.parameters() if p.is_floating_point()), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else "cpu"
        if not isinstance(batch, torch.Tensor):
            batch = torch.from_numpy(np.ascontiguousarray(batch))
        if not batch.is_floating_point():  # token ids and the like stay integers
            return batch.to(device=device)
        return batch.to(device=device, dtype=dtype)

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        import torch

        self._seen, self._errors = {}, []
        x = self._tensor(batch)
        try:
            with torch.no_grad():
                self.model(x)
        except RoonError:
            raise
        except Exception as exc:  # the user's forward pass: wrong input shape, a bug in it
            raise InvalidArgumentError(
                f"{self.label} failed on inputs of shape {tuple(x.shape)}: {one_line(exc)[:200]}"
            ) from exc
        if self._errors:
            raise InvalidArgumentError(self._errors[0])
        missing = [name for name in self.names if name not in self._seen]
        if missing:
            raise InvalidArgumentError(
                f"module {missing[0]!r} of {self.label} did not run in the forward pass"
            )
        for name in self.names:
            if self._seen[name].ndim == 0 or self._seen[name].shape[0] != x.shape[0]:
                raise InvalidArgumentError(
                    f"module {name!r} of {self.label} returns shape "
                    f"{tuple(self._seen[name].shape)} for a batch of {x.shape[0]}; capture "
                    "needs the batch first"
                )
        return {name: _as_rows(self._seen[name].float(), self.label) for name in self.names}


def runner_for(model: Any, layers: Sequence[str] | str | None = None) -> MLPRunner | ModuleRunner:
    """The runner of a roon MLP, a torch module, or a model file (loaded as an MLP).

    Raises:
        InvalidArgumentError: a model of another type, or an unknown layer name.
    """
    import os

    if isinstance(model, (str, os.PathLike)):
        from roon.ingest.loaders import load_model

        model = load_model(model)
    if isinstance(model, MLP):
        return MLPRunner(model, layers)
    if hasattr(model, "named_modules") and hasattr(model, "register_forward_hook"):
        return ModuleRunner(model, layers)
    raise InvalidArgumentError(
        f"model of type {type(model).__name__}; capture reads a roon.MLP, a torch.nn.Module "
        "or a model file"
    )
