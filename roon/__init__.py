"""roon: a catalogue of circuits in trained MLPs.

The public API is small; heavy modules (torch, duckdb, pyarrow) load on first use so
that ``roon --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from roon.errors import (
    CatalogueError,
    GraphStoreError,
    InvalidArgumentError,
    KernelUnavailableError,
    ModelFormatError,
    QueryError,
    RoonError,
    UnsupportedArchitectureError,
)
from roon.mlp import MLP, Layer

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily, PEP 562)
_LAZY = {
    "load_model": "roon.ingest.loaders",
    "load_circuit": "roon.ingest.loaders",
    "ingest_models": "roon.ingest",
    "read_table": "roon.store",
    "reindex_catalogue": "roon.ingest.reindex",
    "where": "roon.query.match",
    "recurring": "roon.query.recurring",
    "compare": "roon.query.compare",
    "scan_catalogue": "roon.query.scan",
    "normalize": "roon.ingest.normalize",
    "tokenize": "roon.ingest.tokenize",
    "token_similarity": "roon.ingest.tokenize",
    "signatures": "roon.kernels",
    "is_equivalent_to": "roon.kernels",
    "equivalent": "roon.query.equivalent",
    "recurring_input_space": "roon.query.input_space",
    "SignatureBatch": "roon.kernels",
    "capture": "roon.query.activations",
    "compare_activations": "roon.query.activations",
}

__all__ = [
    "MLP",
    "Layer",
    "RoonError",
    "ModelFormatError",
    "UnsupportedArchitectureError",
    "CatalogueError",
    "KernelUnavailableError",
    "GraphStoreError",
    "QueryError",
    "InvalidArgumentError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'roon' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
