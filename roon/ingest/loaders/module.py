"""In-memory ``torch.nn.Module`` objects.

Two ways in, both taking weights straight from the ``nn.Linear`` modules (bit-exact):

- an ``nn.Sequential`` (nested ones too) is read structurally: Linear modules, each
  followed by at most one activation module (ReLU, Sigmoid, Tanh, Softplus, SiLU,
  GELU, ELU); Identity, Dropout and Flatten(1) pass values through. Any other module,
  LeakyReLU included, is refused by name.
- any other module is read by *watching it run*: one forward pass on a fixed random
  batch, with hooks on its Linear modules, gives the order the layers are called in,
  and each activation is the one element-wise function (of those roon knows) that maps
  a Linear's output onto the next Linear's input — and the last Linear's output onto
  the module's output — on every probe value. This reads ``F.relu(self.fc1(x))`` as
  reliably as a registered ``nn.ReLU``, and it refuses residual connections, input
  normalization or an unknown activation instead of guessing. Only when the probe
  cannot tell candidates apart (e.g. no pre-activation was negative, so ReLU and
  linear agree) does ``activation``/``output_activation`` break the tie, or roon's
  default (ReLU hidden, linear last), which is then recorded as assumed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from roon.errors import UnsupportedArchitectureError
from roon.ingest.loaders._common import Loaded, check_chain, first_line, make_layer
from roon.mlp import ACTIVATIONS, activate, canonical_activation

__all__ = ["read_module"]

# 64 rows of N(0, 3²) inputs: enough sign changes in every trained layer we have seen
# that ReLU, linear and ELU disagree somewhere; fixed seed so a load is reproducible.
_PROBE_ROWS = 64
_PROBE_SCALE = 3.0
_KNOWN = "Linear layers and the activations ReLU, Sigmoid, Tanh, Softplus, SiLU, GELU, ELU"


def read_module(
    module: Any,
    activation: str | Sequence[str] | None = None,
    output_activation: str | None = None,
) -> Loaded:
    """Read an ``nn.Sequential``, a bare ``nn.Linear``, or a module whose Linears chain.

    Raises:
        UnsupportedArchitectureError: a module or computation that is not a dense chain.
        ModelFormatError: NaN or infinite weights.
    """
    from torch import nn

    if isinstance(module, nn.Sequential):
        return _read_sequential(_leaves(module, ""))
    if isinstance(module, nn.Linear):
        return _read_sequential(iter([("0", module)]))
    return _read_by_probe(module, activation, output_activation)


def _leaves(seq: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    from torch import nn

    for name, child in seq.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, full)
        else:
            yield full, child


def _read_sequential(leaves: Iterator[tuple[str, Any]]) -> Loaded:
    from torch import nn

    layers, labels = [], []
    pending: list[Any] | None = None  # [name, Linear, activation or None]

    def close() -> None:
        assert pending is not None
        name, linear, act = pending
        layers.append(make_layer(name, *_linear_arrays(name, linear), act or "linear"))
        labels.append(name)

    for name, mod in leaves:
        if isinstance(mod, nn.Linear):
            if pending is not None:
                close()
            pending = [name, mod, None]
        elif not _passes_through(mod):
            act = _activation_of(name, mod)
            if pending is None:
                raise UnsupportedArchitectureError(
                    f"module {name!r} ({type(mod).__name__}) comes before any Linear layer"
                )
            if pending[2] is not None:
                raise UnsupportedArchitectureError(
                    f"module {name!r} ({type(mod).__name__}) follows another activation; "
                    "roon reads one activation per layer"
                )
            pending[2] = act
    if pending is None:
        raise UnsupportedArchitectureError(f"holds no Linear layer; roon reads {_KNOWN}")
    close()
    check_chain(labels, layers)
    return Loaded(layers, activation_assumed=False)


def _passes_through(mod: Any) -> bool:
    from torch import nn
    from torch.nn.modules.dropout import _DropoutNd

    if isinstance(mod, nn.Flatten):
        # on a [batch, …] input this only joins the feature dims: a vector stays a vector
        return mod.start_dim == 1 and mod.end_dim == -1
    return isinstance(mod, (nn.Identity, _DropoutNd))


def _activation_of(name: str, mod: Any) -> str:
    from torch import nn

    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu"}
    kind = type(mod)
    if kind in simple:
        return simple[kind]
    # torch's Softplus returns x above `threshold`; from 20 on that differs by < 3e-9
    if kind is nn.Softplus and mod.beta == 1 and mod.threshold >= 20:
        return "softplus"
    if kind is nn.GELU and mod.approximate == "none":
        return "gelu"
    if kind is nn.ELU and mod.alpha == 1.0:
        return "elu"
    raise UnsupportedArchitectureError(f"module {name!r} is {kind.__name__}; roon reads {_KNOWN}")


def _linear_arrays(name: str, linear: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from torch.nn.parameter import is_lazy

    if is_lazy(linear.weight):
        raise UnsupportedArchitectureError(
            f"Linear {name!r} is not initialized yet (a LazyLinear before its first call)"
        )

    def to_numpy(t: Any) -> np.ndarray:
        t = t.detach().cpu()
        # numpy has no bfloat16; widening to float32 is exact
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    weight = to_numpy(linear.weight)
    bias = (
        to_numpy(linear.bias)
        if linear.bias is not None
        else np.zeros(weight.shape[0], weight.dtype)
    )
    return weight, bias


def _read_by_probe(
    module: Any, activation: str | Sequence[str] | None, output_activation: str | None
) -> Loaded:
    import torch
    from torch import nn

    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UnsupportedArchitectureError(f"holds no Linear layer; roon reads {_KNOWN}")
    names = {id(m): n for n, m in linears}
    for n, m in module.named_modules():
        if isinstance(m, nn.Linear):
            continue
        if n and not any(True for _ in m.children()) and not _passes_through(m):
            _activation_of(n, m)  # any other leaf (Conv2d, BatchNorm, LeakyReLU) is refused
        own = [p for p, _ in m.named_parameters(recurse=False)]
        if own:  # a bare nn.Parameter used in forward is a computation roon cannot see
            raise UnsupportedArchitectureError(
                f"module {n or '<root>'!r} ({type(m).__name__}) holds parameter {own[0]!r} "
                "outside any Linear layer"
            )

    calls: list[tuple[str, Any, Any, Any]] = []

    def hook(mod: Any, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0] if args else kwargs["input"]
        # clone: an in-place activation would otherwise rewrite the captured output
        calls.append((names[id(mod)], mod, x.detach().clone(), out.detach().clone()))

    # the input width is the first-called Linear's, which need not be the first
    # registered: try each Linear's width until a forward pass goes through
    widths = list(dict.fromkeys(m.in_features for _, m in linears))
    weight = linears[0][1].weight
    modes = [(m, m.training) for m in module.modules()]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for _, m in linears]
    failure: Exception | None = None
    try:
        module.eval()  # dropout off: roon analyses the inference function
        for width in widths:
            gen = torch.Generator().manual_seed(0)
            probe = torch.randn(_PROBE_ROWS, width, generator=gen, dtype=torch.float64)
            x = (probe * _PROBE_SCALE).to(dtype=weight.dtype, device=weight.device)
            calls.clear()
            try:
                with torch.no_grad():
                    y = module(x)
                break
            except Exception as exc:  # the wrong width, or a forward roon cannot drive
                failure = failure or exc
        else:
            assert failure is not None
            raise UnsupportedArchitectureError(
                f"running forward on a random [{_PROBE_ROWS}, {widths[0]}] input failed "
                f"({first_line(failure)}); wrap the layers in nn.Sequential, or save the "
                "state_dict and pass activation="
            ) from failure
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    return _from_calls(calls, x, y, activation, output_activation)


def _from_calls(calls: list, x: Any, y: Any, activation: Any, output_activation: Any) -> Loaded:
    import torch

    if not isinstance(y, torch.Tensor):
        raise UnsupportedArchitectureError(f"forward returned a {type(y).__name__}, not a tensor")
    if not calls:
        raise UnsupportedArchitectureError("forward called no Linear layer")
    tol = max(1e-5, 64 * torch.finfo(x.dtype).eps)

    def as64(t: Any) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)

    if not same(as64(calls[0][2]), as64(x)):
        raise UnsupportedArchitectureError(
            f"the module transforms its input before Linear {calls[0][0]!r}; "
            "roon reads chains that start with a Linear layer"
        )
    per_layer = (
        list(activation)
        if isinstance(activation, Sequence) and not isinstance(activation, str)
        else None
    )
    layers, labels, assumed = [], [], False
    for k, (name, mod, _inp, out) in enumerate(calls):
        last = k == len(calls) - 1
        target = as64(y if last else calls[k + 1][2])
        z = as64(out)
        where = "the output" if last else f"Linear {calls[k + 1][0]!r}"
        fits = [a for a in ACTIVATIONS if same(activate(a, z), target)]
        if not fits:
            raise UnsupportedArchitectureError(
                f"between Linear {name!r} and {where} the module computes something other "
                f"than one element-wise activation roon reads ({', '.join(ACTIVATIONS)})"
            )
        if per_layer is not None and len(per_layer) == len(calls):
            wanted = per_layer[k]
        else:
            wanted = output_activation if last else activation
        default = "linear" if last else "relu"
        if wanted is not None and canonical_activation(wanted) in fits:
            act = canonical_activation(wanted)
        else:
            act = default if default in fits else fits[0]
            assumed = assumed or len(fits) > 1
        layers.append(make_layer(name, *_linear_arrays(name, mod), act))
        labels.append(name)
    check_chain(labels, layers)
    return Loaded(layers, activation_assumed=assumed)
