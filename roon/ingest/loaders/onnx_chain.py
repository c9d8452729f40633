"""ONNX graphs that are a chain of dense layers and element-wise activations.

Read with ``onnx.load`` and ``onnx.numpy_helper`` only (no onnxruntime). The graph
must run from its one input to its one output through a single path, each node
taking the previous node's output plus constants:

- a dense layer is ``Gemm`` (``transA=0``; ``transB``, ``alpha``, ``beta`` honoured)
  or ``MatMul`` by a constant ``[in, out]`` matrix, optionally followed by ``Add`` or
  ``Sub`` of a constant bias;
- an activation is ``Relu``, ``Sigmoid``, ``Tanh``, ``Softplus``, ``Elu`` (alpha 1)
  or ``Gelu`` (exact); a dense layer with none is ``linear``;
- ``Identity``, ``Dropout``, ``Flatten`` (axis 1) and a ``Reshape`` to ``[-1, n]``
  pass values through on a batch of feature vectors;
- an ``Add``/``Sub`` of a constant *before* a dense layer (the ACAS Xu files subtract
  an input mean) is folded into that layer's bias, ``W(x - c) + b = Wx + (b - Wc)``;
  the model's metadata records each fold as ``onnx.folded_offsets[layer] = c``.

The graph input's declared shape, when it is one static vector per sample
(``[N, n]``, ``[1, 1, 1, n]``), fixes the input width every Reshape must keep.
Anything else — a convolution, a node fed by two computed values, a value feeding
two nodes, an operator from a custom domain (``com.microsoft``'s ``Gelu`` …), a
Dropout whose ``training_mode`` is true — raises
:class:`~roon.errors.UnsupportedArchitectureError` naming the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import ModelFormatError, UnsupportedArchitectureError
from roon.ingest.loaders._common import Loaded, check_chain, first_line, make_layer
from roon.mlp import Layer

__all__ = ["read_onnx"]

_ACTIVATION_OPS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Elu": "elu",
    "Gelu": "gelu",
}
_PASS_THROUGH_OPS = ("Identity", "Dropout")
# The default operator set ("" or its explicit name); anything else is a custom op.
_STANDARD_DOMAINS = ("", "ai.onnx")
_SUPPORTED = "chains of Gemm or MatMul+Add and element-wise activations (Relu, Sigmoid, …)"


def read_onnx(path: Path) -> Loaded:
    """Read an ONNX file whose graph is a chain of dense layers.

    Raises:
        ModelFormatError: truncated or corrupt file, NaN or infinite values.
        UnsupportedArchitectureError: any node that does not fit a dense chain.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, OSError for missing external data, …
        raise ModelFormatError(f"truncated or corrupt ONNX file ({first_line(exc)})") from exc
    graph = model.graph
    # Required fields of every real ONNX file. Bytes that merely happen to decode as a
    # protobuf lack them. (onnx.checker is stricter than runtimes, e.g. about missing
    # output shapes, so it is not used to judge files.)
    if model.ir_version <= 0 or not model.opset_import or not graph.node:
        raise ModelFormatError(
            "truncated or corrupt ONNX file (no IR version, opset or graph nodes)"
        )

    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.domain not in _STANDARD_DOMAINS:  # a custom op may reuse a standard name
            raise UnsupportedArchitectureError(
                f"node {_label(node)!r} is {node.op_type} from operator set {node.domain!r}; "
                "roon reads standard ONNX operators only"
            )
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(node, numpy_helper)
        elif node.op_type in ("Identity", "Transpose") and all(i in consts for i in node.input):
            value = consts[node.input[0]]
            if node.op_type == "Transpose":
                perm = _attrs(node).get("perm")
                value = np.transpose(value, perm if perm else None)
            consts[node.output[0]] = value
        else:
            nodes.append(node)

    inputs = [i.name for i in graph.input if i.name not in consts]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedArchitectureError(
            f"the graph has {len(inputs)} inputs and {len(outputs)} outputs; "
            "roon reads single-input, single-output chains"
        )
    consumers: dict[str, list[Any]] = {}
    for node in nodes:
        for name in dict.fromkeys(node.input):  # a node using a value twice is one user
            if name and name not in consts:
                consumers.setdefault(name, []).append(node)

    declared = next(i for i in graph.input if i.name == inputs[0])
    chain = _Chain(_declared_width(declared))
    current, visited = inputs[0], 0
    while True:
        users = consumers.get(current, [])
        if len(users) > 1 or (users and current == outputs[0]):
            named = ", ".join(f"{_label(n)!r} ({n.op_type})" for n in users)
            also = " and the graph output" if current == outputs[0] else ""
            raise UnsupportedArchitectureError(
                f"value {current!r} feeds {named}{also}; "
                "roon reads chains only, not branching graphs"
            )
        if current == outputs[0]:
            break
        if not users or visited > len(nodes):
            raise UnsupportedArchitectureError(
                f"value {current!r} leads nowhere: it is not the graph output and no node uses it"
            )
        node = users[0]
        dynamic = [name for name in node.input if name and name not in consts]
        if dynamic != [current]:
            raise UnsupportedArchitectureError(
                f"node {_label(node)!r} ({node.op_type}) takes computed values {dynamic}; "
                f"roon reads {_SUPPORTED} where other operands are constants"
            )
        extra = [o for o in node.output[1:] if o and (o in consumers or o in outputs)]
        if extra:
            raise UnsupportedArchitectureError(
                f"node {_label(node)!r} ({node.op_type}) has a second output {extra[0]!r} in use"
            )
        chain.apply(node, current, consts)
        visited += 1
        current = node.output[0]
    if visited != len(nodes):
        off = next(n for n in nodes if not chain.saw(n))
        raise UnsupportedArchitectureError(
            f"node {_label(off)!r} ({off.op_type}) is off the input-to-output chain"
        )
    layers, labels = chain.finish()
    check_chain(labels, layers)
    metadata = {"onnx.folded_offsets": chain.folded} if chain.folded else {}
    return Loaded(layers, activation_assumed=False, metadata=metadata)


class _Chain:
    """Dense layers built node by node: a pending ``W, b`` until an activation closes it."""

    def __init__(self, width: int | None = None) -> None:
        self.layers: list[Layer] = []
        self.labels: list[str] = []
        self.pending: tuple[str, np.ndarray, np.ndarray] | None = None
        self.shift: np.ndarray | None = None  # added to the next dense layer's input
        self.width = width  # features per sample, once known (the declared input's, if any)
        self.folded: dict[str, list[float]] = {}
        self._seen: set[int] = set()

    def saw(self, node: Any) -> bool:
        return id(node) in self._seen

    def apply(self, node: Any, current: str, consts: dict[str, np.ndarray]) -> None:
        self._seen.add(id(node))
        op, label, attrs = node.op_type, _label(node), _attrs(node)
        if op in ("Gemm", "MatMul"):
            if node.input[0] != current:
                raise UnsupportedArchitectureError(
                    f"node {label!r} ({op}) multiplies a constant by the computed value; "
                    "roon reads x @ W layers"
                )
            self._dense(node, op, label, attrs, consts)
        elif op in ("Add", "Sub"):
            other = next(i for i in node.input if i != current)
            c = np.asarray(consts[other])
            if op == "Sub":
                if node.input[0] != current:
                    raise UnsupportedArchitectureError(
                        f"node {label!r} (Sub) subtracts the computed value from a constant"
                    )
                c = -c
            self._offset(label, op, c)
        elif op in _ACTIVATION_OPS:
            if op == "Elu" and attrs.get("alpha", 1.0) != 1.0:
                raise UnsupportedArchitectureError(f"node {label!r} (Elu) has alpha != 1")
            if op == "Gelu" and attrs.get("approximate", "none") != "none":
                raise UnsupportedArchitectureError(
                    f"node {label!r} (Gelu) is the tanh approximation"
                )
            if self.pending is None:
                raise UnsupportedArchitectureError(
                    f"node {label!r} ({op}) applies an activation with no dense layer before it"
                )
            self._close(_ACTIVATION_OPS[op])
        elif op == "Flatten" and attrs.get("axis", 1) == 1:
            pass  # [batch, …features] → [batch, features]: the chain already sees vectors
        elif op in _PASS_THROUGH_OPS:
            if op == "Dropout" and _drops(node, consts):
                raise UnsupportedArchitectureError(
                    f"node {label!r} (Dropout) runs in training mode (training_mode is true), "
                    "so its output is random; export the model in eval mode"
                )
        elif op == "Reshape" and _is_batch_of_vectors(consts.get(node.input[1])):
            n = int(consts[node.input[1]][1])
            if n > 0 and self.width is not None and n != self.width:
                raise UnsupportedArchitectureError(
                    f"node {label!r} (Reshape) reshapes {self.width} features to {n}"
                )
            if n > 0:
                self.width = n
        else:
            raise UnsupportedArchitectureError(f"node {label!r} is {op}; roon reads {_SUPPORTED}")

    def _dense(self, node: Any, op: str, label: str, attrs: dict, consts: dict) -> None:
        b_op = np.asarray(consts[node.input[1]])
        if b_op.ndim != 2:
            raise UnsupportedArchitectureError(
                f"node {label!r} ({op}) multiplies by a {b_op.ndim}-D constant; "
                "a dense layer needs a 2-D matrix"
            )
        if op == "Gemm" and attrs.get("transA", 0):
            raise UnsupportedArchitectureError(f"node {label!r} (Gemm) transposes its input")
        # ONNX computes x @ B (B: [in, out]) or x @ B.T with transB; roon stores [out, in]
        weight = b_op if op == "Gemm" and attrs.get("transB", 0) else b_op.T
        bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        if alpha != 1.0:  # a float32 x float32 product is exact in float64
            weight = weight.astype(np.float64) * alpha
        if op == "Gemm" and len(node.input) > 2 and node.input[2]:
            c = np.asarray(consts[node.input[2]])
            bias = _as_vector(
                c if beta == 1.0 else c.astype(np.float64) * beta, weight.shape[0], label
            )
        if self.width is not None and weight.shape[1] != self.width:
            raise UnsupportedArchitectureError(
                f"node {label!r} ({op}) takes {weight.shape[1]} inputs but receives "
                f"{self.width} features: shapes do not chain"
            )
        if self.pending is not None:
            self._close("linear")
        if self.shift is not None:
            shift = _as_vector(self.shift, weight.shape[1], label)
            if np.any(shift != 0):
                bias = bias.astype(np.float64) + weight.astype(np.float64) @ shift.astype(
                    np.float64
                )
            self.folded[str(len(self.layers))] = (-shift.astype(np.float64) + 0.0).tolist()
            self.shift = None
        self.pending = (label, weight, bias)
        self.width = int(weight.shape[0])

    def _offset(self, label: str, op: str, c: np.ndarray) -> None:
        if c.ndim and any(d != 1 for d in c.shape[:-1]):
            raise UnsupportedArchitectureError(
                f"node {label!r} ({op}) adds a constant of shape {list(c.shape)}; "
                "roon folds per-feature offsets only"
            )
        c = c.reshape(-1)
        if self.pending is not None:  # a bias after x @ W
            name, weight, bias = self.pending
            self.pending = (name, weight, bias + _as_vector(c, weight.shape[0], label))
        else:  # an offset on the next layer's input, folded into its bias later
            self.shift = c if self.shift is None else self.shift + c

    def _close(self, activation: str) -> None:
        assert self.pending is not None
        label, weight, bias = self.pending
        self.layers.append(make_layer(label, weight, bias, activation))
        self.labels.append(label)
        self.pending = None

    def finish(self) -> tuple[list[Layer], list[str]]:
        if self.pending is not None:
            self._close("linear")
        if not self.layers:
            raise UnsupportedArchitectureError("the graph holds no dense layer (Gemm or MatMul)")
        if self.shift is not None:
            raise UnsupportedArchitectureError(
                "the graph adds a constant after its last activation; roon cannot fold it"
            )
        return self.layers, self.labels


def _as_vector(c: np.ndarray, n: int, label: str) -> np.ndarray:
    c = np.asarray(c).reshape(-1)
    if c.size == n:
        return c
    if c.size == 1:
        return np.broadcast_to(c, (n,)).copy()
    raise UnsupportedArchitectureError(
        f"node {label!r}: a constant of {c.size} values does not match {n} features"
    )


def _declared_width(value_info: Any) -> int | None:
    """Features per sample of a graph input declared ``[batch, 1, …, 1, n]``, else None.

    Only a static shape that is one vector per sample counts (``[N, 5]``, ACAS Xu's
    ``[1, 1, 1, 5]``); any other shape leaves the width to the first dense layer.
    """
    tensor = value_info.type.tensor_type if value_info.type.HasField("tensor_type") else None
    if tensor is None or not tensor.HasField("shape") or len(tensor.shape.dim) < 2:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim[1:]]
    if any(d <= 0 for d in dims) or any(d != 1 for d in dims[:-1]):
        return None
    return int(dims[-1])


def _drops(node: Any, consts: dict[str, np.ndarray]) -> bool:
    """Whether a Dropout node's constant ``training_mode`` is true and its ratio non-zero."""
    if len(node.input) < 3 or not node.input[2]:
        return False
    if not bool(np.asarray(consts[node.input[2]]).reshape(-1)[0]):
        return False
    ratio = consts.get(node.input[1]) if node.input[1] else None
    return ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0


def _is_batch_of_vectors(shape: Any) -> bool:
    """A Reshape target ``[-1, n]`` / ``[0, n]`` / ``[1, n]`` keeps one vector per sample."""
    if shape is None:
        return False
    shape = np.asarray(shape).reshape(-1)
    return shape.size == 2 and int(shape[0]) in (-1, 0, 1) and int(shape[1]) != 0


def _label(node: Any) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _constant_value(node: Any, numpy_helper: Any) -> np.ndarray:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_int"):
            return np.asarray(attr.f if attr.name == "value_float" else attr.i)
        if attr.name in ("value_floats", "value_ints"):
            return np.asarray(list(attr.floats if attr.name == "value_floats" else attr.ints))
    raise UnsupportedArchitectureError(
        f"node {_label(node)!r} (Constant) holds a kind of constant roon does not read"
    )
