"""``ingest_models``: files in, catalogue rows out.

For each source: load → (normalize) → signatures per layer → tokens → one atomic commit.
A source that fails is reported with its reason and the others go on; a model already in
the catalogue is skipped before any expensive work.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from roon.errors import CatalogueError, RoonError
from roon.mlp import MLP

__all__ = ["IngestResult", "IngestProgress", "expand_sources", "ingest_models", "ingest_model"]


@dataclass(frozen=True)
class IngestResult:
    """What happened to one source.

    Attributes:
        source: the path (or module description) as given.
        status: ``ingested``, ``present`` (already in the catalogue) or ``failed``.
        model_id: id of the stored model (the normalized one with ``--normalize``).
        name: model name.
        neurons: non-input neurons of the model.
        notes: facts worth telling the user (assumed activation, normalization).
        reason: the one-line error when ``status == "failed"``.
        parent_id: with ``normalize``, the id of the model as loaded.
    """

    source: str
    status: str
    model_id: str | None = None
    name: str | None = None
    neurons: int = 0
    notes: tuple[str, ...] = ()
    reason: str | None = None
    parent_id: str | None = None


class IngestProgress(Protocol):
    """Callbacks the CLI implements to draw progress bars (all optional no-ops)."""

    def model_started(self, source: str, neurons: int) -> None: ...

    def neurons_done(self, count: int) -> None: ...

    def model_finished(self, result: IngestResult) -> None: ...


def expand_sources(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files, folders (searched recursively for model files) and glob patterns → files.

    Raises:
        CatalogueError: a path that does not exist and matches nothing, or a folder
            without model files.
    """
    from roon.ingest.loaders import MODEL_SUFFIXES

    found: list[Path] = []
    for raw in paths:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
            )
            if not files:
                kinds = ", ".join(MODEL_SUFFIXES)
                raise CatalogueError(f"{path}: no model files ({kinds}) in this folder")
            found.extend(files)
        elif path.exists():
            found.append(path)
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                raise CatalogueError(f"{text}: the pattern matches no files")
            found.extend(m for m in matches if m.is_file())
        else:
            raise CatalogueError(f"{text}: no such file or directory")
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def _signature_table(mlp: MLP, domains: Sequence[str], backend: str, progress: Any) -> Any:
    import pyarrow as pa

    from roon.ingest.rows import neuron_ids
    from roon.kernels import signatures

    parts = []
    for i, layer in enumerate(mlp.layers):
        report = None
        if progress is not None:
            done = [0]

            def report(total: int, done: list[int] = done) -> None:
                # signatures() reports a running total; the bar wants increments
                progress.neurons_done(total - done[0])
                done[0] = total

        batch = signatures(
            layer.weight, layer.bias, domain=domains[i], backend=backend, progress=report
        )
        table = batch.to_arrow()
        n = layer.width
        head = {
            "neuron_id": neuron_ids(mlp.id, i, range(n)),
            "model_id": pa.array([mlp.id] * n),
            "layer": pa.array([i] * n, type=pa.int32()),
            "neuron": pa.array(range(n), type=pa.int32()),
        }
        for pos, (name, column) in enumerate(head.items()):
            table = table.add_column(pos, name, column)
        parts.append(table)
    return pa.concat_tables(parts)


def ingest_model(
    mlp: MLP,
    catalogue: Path,
    *,
    input_domain: str = "binary",
    min_weight: float = 0.0,
    backend: str = "auto",
    progress: IngestProgress | None = None,
) -> bool:
    """Compute signatures and tokens of one model and commit it. False if already present."""
    from roon.ingest.catalogue import has_model, write_model
    from roon.ingest.rows import layer_domains
    from roon.ingest.tokenize import tokens_table

    if has_model(catalogue, mlp.id):
        return False
    domains = layer_domains(mlp, input_domain)
    extra = {
        "signatures": _signature_table(mlp, domains, backend, progress),
        "tokens": tokens_table(mlp),
    }
    return write_model(
        catalogue, mlp, min_weight=min_weight, input_domain=input_domain, extra_tables=extra
    )


def _ingest_source(
    source: Path | Any,
    catalogue: Path,
    *,
    activation: str | None,
    normalize: Sequence[str] | None,
    options: dict[str, Any],
    progress: IngestProgress | None,
) -> IngestResult:
    from roon.ingest.catalogue import has_model, write_lineage
    from roon.ingest.loaders import load_model

    label = str(source) if isinstance(source, Path) else f"<module {type(source).__name__}>"
    mlp = load_model(source, activation=activation)
    notes = []
    load = mlp.provenance[0] if mlp.provenance else {}
    if load.get("activation_assumed"):
        hidden = mlp.activations[0] if len(mlp.layers) > 1 else mlp.activations[-1]
        notes.append(f"activation {hidden} assumed (the file stores none)")
    targets = [mlp]
    steps: list[Any] = []
    if normalize:
        from roon.ingest.normalize import lineage_table
        from roon.ingest.normalize import normalize as run_rules

        final, steps = run_rules(mlp, list(normalize))
        targets.append(final)
        notes.append(f"normalized by {','.join(normalize)} from {mlp.id[:12]}")
    final = targets[-1]
    if progress:
        pending = sum(m.n_neurons for m in targets if not has_model(catalogue, m.id))
        progress.model_started(label, pending)
    written = [ingest_model(m, catalogue, progress=progress, **options) for m in targets]
    if steps:
        write_lineage(catalogue, lineage_table(steps))
    return IngestResult(
        source=label,
        status="ingested" if written[-1] else "present",
        model_id=final.id,
        name=final.name,
        neurons=final.n_neurons,
        notes=tuple(notes),
        parent_id=mlp.id if normalize else None,
    )


def ingest_models(
    sources: Iterable[str | os.PathLike[str] | Any],
    catalogue: str | os.PathLike[str],
    *,
    activation: str | None = None,
    input_domain: str = "binary",
    min_weight: float = 0.0,
    normalize: Sequence[str] | None = None,
    backend: str = "auto",
    progress: IngestProgress | None = None,
) -> list[IngestResult]:
    """Ingest model files (or in-memory ``torch.nn.Module`` objects) into a catalogue.

    Args:
        sources: files, folders, glob patterns, or modules.
        catalogue: catalogue directory; created if missing.
        activation: hidden activation to assume for files that store none (default relu).
        input_domain: signature domain of layer 0 (``binary`` or ``signed``).
        min_weight: store only edges with ``|w| >= min_weight``.
        normalize: normalizer rule names to apply; the original model, the normalized
            one and the lineage between them are stored.
        backend: signature backend (``auto``, ``ref``, ``cpu``, ``triton``).
        progress: callbacks for progress bars.

    Returns:
        One :class:`IngestResult` per source, in order. Failures do not raise.

    Raises:
        CatalogueError: the catalogue cannot be opened, or a path matches no files.
    """
    from roon.ingest.catalogue import open_catalogue

    root = open_catalogue(catalogue, create=True)
    sources = list(sources)
    paths = [s for s in sources if isinstance(s, str | os.PathLike)]
    modules = [s for s in sources if not isinstance(s, str | os.PathLike)]
    items: list[Any] = [*expand_sources(paths), *modules]
    options = {"input_domain": input_domain, "min_weight": min_weight, "backend": backend}
    results = []
    for item in items:
        try:
            result = _ingest_source(
                item,
                root,
                activation=activation,
                normalize=normalize,
                options=options,
                progress=progress,
            )
        except RoonError as exc:
            label = str(item) if isinstance(item, Path) else f"<module {type(item).__name__}>"
            result = IngestResult(source=label, status="failed", reason=str(exc))
        if progress:
            progress.model_finished(result)
        results.append(result)
    return results
