"""``ingest_models``: files in, catalogue rows out.

For each source: load → (normalize) → structural rows and derived tables (signatures,
tokens, restricted, input_space) → one atomic commit through :mod:`roon.store`. A source
that fails (a path that names no model file included) is reported with its reason and the
others go on; a model already in the catalogue is skipped before any expensive work; a new
catalogue is created only when its first model is stored.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roon.errors import CatalogueError, InvalidArgumentError, ModelFormatError, RoonError, one_line
from roon.ingest.derived import SignatureTally
from roon.mlp import MLP
from roon.progress import ProgressCallback, emit

__all__ = [
    "IngestResult",
    "expand_sources",
    "ingest_models",
    "ingest_model",
    "model_input_domain",
    "store_derivation",
    "stored_options_note",
    "with_input_bounds",
]

# The model metadata entry that names the signature domain of its inputs (the zoo and the
# circuit loader write it); an explicit ``input_domain`` argument wins over it.
INPUT_DOMAIN_KEY = "input_domain"
_SKIPPED = "not tried: the disk holding the catalogue is full (see the failure above)"


@dataclass(frozen=True)
class IngestResult:
    """What happened to one source.

    Attributes:
        source: the path (or module description) as given.
        status: ``ingested``, ``present`` (already in the catalogue), ``failed``, or
            ``skipped`` (not tried: the disk filled up on an earlier source).
        model_id: id of the stored model (the normalized one with ``--normalize``).
        name: model name.
        neurons: non-input neurons of the model.
        notes: facts worth telling the user (assumed activation, normalization).
        reason: the one-line error when ``status == "failed"``.
        parent_id: with ``normalize``, the id of the model as loaded.
        sampled: neurons given approximate (sampled) signatures in this run.
        fallbacks: of them, sampled although an exact method reaches them (over the
            exact budget, or ``exact="never"``); ``exact="always"`` makes them exact.
    """

    source: str
    status: str
    model_id: str | None = None
    name: str | None = None
    neurons: int = 0
    notes: tuple[str, ...] = ()
    reason: str | None = None
    parent_id: str | None = None
    sampled: int = 0
    fallbacks: int = 0


def expand_sources(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files, folders (searched recursively for model files) and glob patterns → files.

    Raises:
        CatalogueError: a path that does not exist and matches nothing, or a folder
            without model files.
    """
    found: list[Path] = []
    for raw in paths:
        found.extend(_expand_one(raw))
    return list(dict.fromkeys(found))


def _expand_one(raw: str | os.PathLike[str]) -> list[Path]:
    """The model files one path, folder or glob pattern stands for (see expand_sources)."""
    from roon.ingest.loaders import MODEL_SUFFIXES

    text = os.fspath(raw)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
        )
        if not files:
            kinds = ", ".join(MODEL_SUFFIXES)
            raise CatalogueError(f"{path}: no model files ({kinds}) in this folder")
        return files
    if path.exists():
        return [path]
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise CatalogueError(f"{text}: the pattern matches no files")
        return [m for m in matches if m.is_file()]
    raise CatalogueError(f"{text}: no such file or directory")


def model_input_domain(mlp: MLP, input_domain: str | None = None) -> str:
    """The signature domain of ``mlp``'s inputs: ``input_domain`` if given, else the
    model's ``input_domain`` metadata entry, else ``binary``.

    Raises:
        ModelFormatError: the metadata names a domain roon does not know.
    """
    from roon.ingest.rows import INPUT_DOMAINS

    if input_domain is not None:
        return input_domain
    value = mlp.metadata.get(INPUT_DOMAIN_KEY, "binary")
    if value not in INPUT_DOMAINS:
        raise ModelFormatError(
            f"model metadata {INPUT_DOMAIN_KEY!r} is {value!r}; expected one of "
            f"{', '.join(INPUT_DOMAINS)} (or pass --input-domain)"
        )
    return str(value)


def ingest_model(
    mlp: MLP,
    catalogue: Path,
    *,
    input_domain: str | None = None,
    min_weight: float = 0.0,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    force: bool = False,
    input_space: Any = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    tally: SignatureTally | None = None,
) -> bool:
    """Compute the rows of one model and commit it. False if it was already present.

    Args:
        mlp: the model.
        catalogue: an opened catalogue (:func:`roon.store.open_catalogue`).
        input_domain: signature domain of the model inputs (``binary``, ``signed`` or
            ``box``); None takes the model's own (:func:`model_input_domain`).
        min_weight: store only edges with ``|w| >= min_weight``.
        backend: signature backend.
        progress: ``neurons`` events while its signatures are computed.
        force: rebuild and replace the model if it is present.
        input_space: the space of its input-space signatures
            (:func:`roon.ingest.spaces.resolve_space`; default ``auto``).
        exact: exact policy of wide neurons (``auto``, ``always``, ``never``).
        exact_budget: estimated seconds of exact work for the model under ``auto``.
        tally: adds up its signatures' neurons, sampled ones and fallbacks.
    """
    from roon.ingest.derived import DERIVED_TABLES, derived_tables
    from roon.ingest.rows import layer_domains, model_tables
    from roon.store import has_model, write_model

    if has_model(catalogue, mlp.id) and not force:
        return False
    input_domain = model_input_domain(mlp, input_domain)
    domains = layer_domains(mlp, input_domain)
    tables = model_tables(mlp, min_weight=min_weight, input_domain=input_domain, stream=True)
    derived = derived_tables(
        mlp,
        domains,
        backend=backend,
        progress=progress,
        input_space=input_space,
        stream=True,
        exact=exact,
        exact_budget=exact_budget,
        tally=tally,
    )
    tables.update(derived)
    return write_model(catalogue, mlp, tables, derived=DERIVED_TABLES, replace=force)


def stored_options_note(
    catalogue: Path,
    model_id: str,
    *,
    input_domain: str,
    min_weight: float,
    mlp: MLP | None = None,
    input_space: Any = "auto",
) -> str | None:
    """What differs between a stored model and the options it is ingested with again.

    The input domain is layer 0's in the ``layers`` table; ``min_weight`` is in its
    ``provenance`` row. Given ``mlp`` (the model as it is ingested now, its
    ``--input-bounds`` in its metadata), its input bounds are compared with the stored
    metadata's and the space ``input_space`` resolves to with the stored ``input_space``
    rows (by ``space_id``: the same points). Derived tables from an older roon are named too.

    Returns:
        None when the stored model was built with these options and is current; else a
        one-line note saying what differs and how to rebuild it.
    """
    from roon.ingest.derived import DERIVED_TABLES
    from roon.store import read_model_table
    from roon.store.migrate import stale_tables

    layers = read_model_table(catalogue, model_id, "layers").to_pylist()
    provenance = read_model_table(catalogue, model_id, "provenance").to_pylist()
    stored_domain = next((r["input_domain"] for r in layers if r["layer"] == 0), None)
    stored_weight = provenance[0]["min_weight"] if provenance else None
    differs = []
    if stored_domain is not None and stored_domain != input_domain:
        differs.append(f"input domain {stored_domain}, not {input_domain}")
    if stored_weight is not None and float(stored_weight) != float(min_weight):
        differs.append(f"min_weight {stored_weight:g}, not {min_weight:g}")
    if mlp is not None:
        differs.extend(_space_differences(catalogue, model_id, mlp, input_domain, input_space))
    if differs:
        return (
            f"stored with other options ({'; '.join(differs)}): nothing changed; "
            "re-ingest with --force to rebuild it with these"
        )
    stale = stale_tables(catalogue, model_id, DERIVED_TABLES)
    if stale:
        return f"{', '.join(stale)} computed by an older roon: 'roon reindex' recomputes them"
    return None


def store_derivation(
    catalogue: Path,
    parent: MLP,
    child: MLP,
    steps: Sequence[Any],
    *,
    input_domain: str | None = None,
    min_weight: float = 0.0,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    force: bool = False,
    input_space: Any = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    tally: SignatureTally | None = None,
) -> tuple[bool, bool, int]:
    """Store a model, a model derived from it by normalizer steps, and the lineage rows.

    What ``roon ingest --normalize`` and ``roon normalize --store`` both do; ``force``
    rebuilds both models if present.

    Returns:
        ``(parent written, child written, lineage rows added)``.
    """
    from roon.ingest.normalize import lineage_table
    from roon.store import write_rows

    wrote_parent, wrote_child = (
        ingest_model(
            m,
            catalogue,
            input_domain=input_domain,
            min_weight=min_weight,
            backend=backend,
            progress=progress,
            force=force and (m is parent or child.id != parent.id),
            input_space=input_space,
            exact=exact,
            exact_budget=exact_budget,
            tally=tally,
        )
        for m in (parent, child)
    )
    added = write_rows(catalogue, "lineage", lineage_table(steps)) if steps else 0
    return wrote_parent, wrote_child, added


def _space_differences(
    catalogue: Path, model_id: str, mlp: MLP, input_domain: str, input_space: Any
) -> list[str]:
    """How the stored input bounds and input space differ from ``mlp``'s with these options."""
    from roon.ingest.normalize.bounds import METADATA_KEY
    from roon.ingest.rows import layer_domains
    from roon.ingest.spaces import resolve_space
    from roon.store import read_model_table
    from roon.store.migrate import derived_versions

    out = []
    [row] = read_model_table(catalogue, model_id, "models").to_pylist() or [{"metadata": "{}"}]
    stored_bounds = json.loads(row["metadata"] or "{}").get(METADATA_KEY)
    bounds = json.loads(json.dumps(mlp.metadata.get(METADATA_KEY)))  # as JSON stores it
    if stored_bounds != bounds:
        out.append(f"input bounds {_bounds_text(stored_bounds)}, not {_bounds_text(bounds)}")
    if "input_space" not in derived_versions(catalogue, model_id):
        return out  # never computed (an older roon): stale_tables names it for reindex
    stored = read_model_table(catalogue, model_id, "input_space")
    stored_id = stored.column("space_id")[0].as_py() if stored.num_rows else None
    stored_text = (
        f"{stored.column('space')[0].as_py()} ({stored.column('points')[0].as_py():,} points)"
        if stored.num_rows
        else "none"
    )
    try:
        space = resolve_space(mlp, input_space, input_domain=layer_domains(mlp, input_domain)[0])
    except RoonError as exc:
        return [*out, f"input space {stored_text}; the new one fails: {one_line(exc)}"]
    if (None if space is None else space.id) != stored_id:
        out.append(
            f"input space {stored_text}, not {'none' if space is None else space.describe()}"
        )
    return out


def _bounds_text(bounds: Any) -> str:
    return "none" if bounds is None else json.dumps(bounds)


def with_input_bounds(mlp: MLP, input_bounds: Any) -> MLP:
    """``mlp`` with ``input_bounds`` recorded in its metadata (the id does not change), so
    that the ``box`` domain and space find the same box again at ``roon reindex``.

    Raises:
        InvalidArgumentError: a malformed box.
    """
    if input_bounds is None:
        return mlp
    from roon.ingest.normalize.bounds import METADATA_KEY, compact_bounds, resolve_input_bounds

    lo, hi = resolve_input_bounds(mlp, input_bounds)
    return mlp.replace(metadata={**mlp.metadata, METADATA_KEY: compact_bounds(lo, hi)})


def _label(source: Path | Any) -> str:
    return str(source) if isinstance(source, Path) else f"<module {type(source).__name__}>"


# An ingest commits its models in batches, one segment and one manifest generation each
# (a fixed number of fsyncs per batch, not per model). A batch is committed when it holds
# BATCH_MODELS models or BATCH_WEIGHTS weights (its rows wait in memory until then), or
# BATCH_SECONDS after its first model was ready: an interrupted ingest loses at most that
# much work, and a reader sees new models at least that often.
BATCH_MODELS = 512
BATCH_WEIGHTS = 1 << 22
BATCH_SECONDS = 1.0
# A model with more weights than this is committed alone, its rows streamed as they are
# computed (memory stays bounded: benchmarks/bench_memory.py).
STREAM_WEIGHTS = 1 << 20
# `jobs=None` (the CLI's default) starts worker processes only for this many sources or
# more: a worker takes about a second to start.
AUTO_JOBS_MIN_SOURCES = 16


@dataclass
class _Prepared:
    """One source loaded and its rows computed, waiting for its batch to be committed."""

    label: str
    final: MLP
    parent_id: str | None
    notes: list[str]
    staged: list[Any]  # roon.store.write.StagedModel
    lineage: Any  # pyarrow.Table | None
    was_present: bool
    weights: int
    tally: SignatureTally
    input_space: Any


def _weights(mlp: MLP) -> int:
    return sum(layer.weight.size for layer in mlp.layers)


def _prepare(
    mlp: MLP,
    label: str,
    catalogue: Path,
    exists: bool,
    *,
    normalize: Sequence[str] | None,
    input_domain: str | None,
    min_weight: float,
    backend: str,
    progress: ProgressCallback | None,
    force: bool = False,
    input_space: Any = "auto",
    exact: str = "auto",
    exact_budget: float | None = None,
    stream_ok: bool = True,
) -> _Prepared | None:
    """Compute the rows of one source's models (those not stored yet, or all with
    ``force``), without writing anything. None when a model is big enough to stream
    its rows and ``stream_ok`` is False (a worker process: generators cannot travel)."""
    from roon.ingest.derived import DERIVED_TABLES, derived_tables
    from roon.ingest.loaders import load_notes
    from roon.ingest.rows import layer_domains, model_tables
    from roon.store import has_model
    from roon.store.write import StagedModel

    notes = load_notes(mlp)
    lineage = None
    if not normalize:
        final = mlp
        wanted = [(mlp, force)]
    else:
        from roon.ingest.normalize import domain_note, lineage_table
        from roon.ingest.normalize import normalize as run_rules

        final, steps = run_rules(mlp, list(normalize), backend=backend)
        notes.append(f"normalized by {','.join(normalize)} from {mlp.id[:12]}")
        box = domain_note(mlp, list(normalize))
        notes.extend([box] if box else [])
        wanted = [(mlp, force), (final, force and final.id != mlp.id)]
        lineage = lineage_table(steps) if steps else None
    was_present = exists and has_model(catalogue, final.id)
    todo: list[MLP] = []
    for m, rebuild in wanted:
        if (rebuild or not (exists and has_model(catalogue, m.id))) and all(
            t.id != m.id for t in todo
        ):
            todo.append(m)
    if normalize:
        emit(progress, "neurons", 0, sum(m.n_neurons for m in todo), mlp.name or "")
    if not stream_ok and any(_weights(m) > STREAM_WEIGHTS for m in todo):
        return None
    staged = []
    tally = SignatureTally()
    for m in todo:
        domain = model_input_domain(m, input_domain)
        stream = _weights(m) > STREAM_WEIGHTS
        tables = model_tables(m, min_weight=min_weight, input_domain=domain, stream=stream)
        tables.update(
            derived_tables(
                m,
                layer_domains(m, domain),
                backend=backend,
                progress=progress,
                input_space=input_space,
                stream=stream,
                exact=exact,
                exact_budget=exact_budget,
                tally=tally,
            )
        )
        versions = {t: v for t, v in DERIVED_TABLES.items() if t in tables}
        staged.append(StagedModel(m, tables, versions))
    return _Prepared(
        label,
        final,
        mlp.id if normalize else None,
        notes,
        staged,
        lineage,
        was_present,
        sum(_weights(s.mlp) for s in staged),
        tally,
        input_space,
    )


def _finish(
    catalogue: Path,
    prepared: _Prepared,
    written: Mapping[int, bool],
    *,
    input_domain: str | None,
    min_weight: float,
) -> IngestResult:
    """The result of a prepared source once its batch is committed (``written``: whether
    each staged model was written, by ``id()``)."""
    final = prepared.final
    wrote = any(written.get(id(s), False) for s in prepared.staged if s.mlp.id == final.id)
    notes = list(prepared.notes)
    if wrote and prepared.was_present:
        notes.append("rebuilt: replaced the stored model (--force)")
    elif not wrote:
        domain = model_input_domain(final, input_domain)
        differs = stored_options_note(
            catalogue,
            final.id,
            input_domain=domain,
            min_weight=min_weight,
            mlp=final,
            input_space=prepared.input_space,
        )
        notes.extend([differs] if differs else [])
    return IngestResult(
        source=prepared.label,
        status="ingested" if wrote else "present",
        model_id=final.id,
        name=final.name,
        neurons=final.n_neurons,
        notes=tuple(notes),
        parent_id=prepared.parent_id,
        sampled=prepared.tally.sampled,
        fallbacks=prepared.tally.fallbacks,
    )


def _commit(catalogue: Path, batch: Sequence[_Prepared], force: bool) -> dict[int, bool]:
    """Commit a batch of prepared sources in one manifest generation."""
    import pyarrow as pa

    from roon.store.write import commit_models

    models = [s for p in batch for s in p.staged]
    lineage = [p.lineage for p in batch if p.lineage is not None and p.lineage.num_rows]
    rows = {"lineage": pa.concat_tables(lineage)} if lineage else None
    if not models and not rows:
        return {}
    flags = commit_models(catalogue, models, replace=force, rows=rows)
    return {id(s): f for s, f in zip(models, flags, strict=True)}


def _load_and_prepare(
    item: Any,
    label: str,
    catalogue: Path,
    exists: bool,
    options: Mapping[str, Any],
    progress: ProgressCallback | None,
    stream_ok: bool = True,
) -> _Prepared | IngestResult | None:
    """Load one source and compute its rows; a failed result instead of raising (None:
    see :func:`_prepare`)."""
    from roon.ingest.loaders import load_model

    try:
        mlp = with_input_bounds(
            load_model(
                item,
                activation=options["activation"],
                name=options["name"],
                layers=options["layers"],
            ),
            options["input_bounds"],
        )
        if not exists:  # what fails for this model fails before a catalogue is made for it
            _preflight(mlp, options["input_domain"], options["input_space"])
        return _prepare(
            mlp,
            label,
            catalogue,
            exists,
            normalize=options["normalize"],
            input_domain=options["input_domain"],
            min_weight=options["min_weight"],
            backend=options["backend"],
            progress=progress,
            force=options["force"],
            input_space=options["input_space"],
            exact=options["exact"],
            exact_budget=options["exact_budget"],
            stream_ok=stream_ok,
        )
    except RoonError as exc:
        return IngestResult(label, "failed", reason=one_line(exc))


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _worker(
    task: tuple[Any, str, Path, bool, Mapping[str, Any]],
) -> _Prepared | IngestResult | None:
    item, label, catalogue, exists, options = task
    return _load_and_prepare(item, label, catalogue, exists, options, None, stream_ok=False)


def _as_sources(sources: Any) -> list[Any]:
    """One path or module, or an iterable of them, as a list (a string is one path)."""
    if isinstance(sources, str | os.PathLike):
        return [sources]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(sources, torch.nn.Module):
        return [sources]  # an nn.Sequential is iterable, but is one model
    try:
        if isinstance(sources, bytes | Mapping):
            raise TypeError
        return list(sources)
    except TypeError:
        raise InvalidArgumentError(
            f"sources is a {type(sources).__name__}; give a path, a torch.nn.Module, "
            "or a list of them"
        ) from None


def _expanded(sources: list[Any]) -> list[Path | IngestResult | Any]:
    """Sources → model files, modules, and a failed result for each path that names none."""
    items: list[Path | IngestResult | Any] = []
    seen: set[Path] = set()
    for source in sources:
        if not isinstance(source, str | os.PathLike):
            items.append(source)
            continue
        try:
            files = _expand_one(source)
        except CatalogueError as exc:
            items.append(IngestResult(os.fspath(source), "failed", reason=one_line(exc)))
            continue
        for file in files:
            if file not in seen:
                seen.add(file)
                items.append(file)
    return items


def _check_options(
    input_domain: Any, min_weight: Any, normalize: Any, backend: Any, input_space: Any = "auto"
) -> tuple[str, ...] | None:
    """Refuse bad ingest options once, before any source is read; returns the rule names.

    ``normalize`` may be a comma-separated string or a sequence of names.
    """
    import math
    import numbers

    from roon.ingest.rows import INPUT_DOMAINS
    from roon.ingest.spaces import check_space_choice
    from roon.kernels.dispatch import resolve_backend

    check_space_choice(input_space)

    if input_domain is not None and (
        not isinstance(input_domain, str) or input_domain not in INPUT_DOMAINS
    ):
        raise InvalidArgumentError(
            f"input_domain={input_domain!r}; expected one of {', '.join(INPUT_DOMAINS)}"
        )
    number = isinstance(min_weight, numbers.Real) and not isinstance(min_weight, bool)
    if not number or not math.isfinite(min_weight) or min_weight < 0:
        raise InvalidArgumentError(f"min_weight={min_weight!r}; give a finite number >= 0")
    resolve_backend(backend)
    if normalize is None:
        return None
    if isinstance(normalize, str):
        names = tuple(r.strip() for r in normalize.split(",") if r.strip())
    elif isinstance(normalize, Sequence) and all(isinstance(r, str) for r in normalize):
        names = tuple(normalize)
    else:
        raise InvalidArgumentError(
            f"normalize={normalize!r}; give rule names such as 'exact' or ['dead', 'canonical']"
        )
    from roon.ingest.normalize import resolve_rules

    resolve_rules(list(names))  # unknown names fail here, not once per model
    return names or None


def _preflight(mlp: MLP, input_domain: str | None, input_space: Any) -> None:
    """Raise now what computing ``mlp``'s derived tables would raise first: its input
    space (too large, no box) and the box of the ``box`` domain, so that an ingest in
    which every model fails so leaves no empty catalogue behind.

    Raises:
        RoonError: what :func:`ingest_model` would raise for these options.
    """
    from roon.ingest.normalize.bounds import finite_input_bounds
    from roon.ingest.rows import layer_domains
    from roon.ingest.spaces import resolve_space

    domains = layer_domains(mlp, model_input_domain(mlp, input_domain))
    resolve_space(mlp, input_space, input_domain=domains[0])  # first, as ingest_model does
    if "box" in domains:
        finite_input_bounds(mlp, what="the box domain")


def _target(catalogue: str | os.PathLike[str]) -> tuple[Path, bool]:
    """The catalogue to ingest into and whether it exists yet.

    An existing catalogue is opened (and refused when unreadable or too new); a path
    that is a file is refused now. Anything else is created only when the first model
    is about to be stored, so an ingest in which every source fails leaves nothing.
    """
    from roon.store import open_catalogue
    from roon.store.layout import catalogue_path, marker_path

    root = catalogue_path(catalogue)
    if marker_path(root).is_file() or (root.exists() and not root.is_dir()):
        return open_catalogue(root), True
    return root, False


def ingest_models(
    sources: Iterable[str | os.PathLike[str] | Any] | str | os.PathLike[str] | Any,
    catalogue: str | os.PathLike[str],
    *,
    activation: str | None = None,
    input_domain: str | None = None,
    min_weight: float = 0.0,
    normalize: str | Sequence[str] | None = None,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    force: bool = False,
    name: str | None = None,
    input_space: Any = "auto",
    input_bounds: Any = None,
    layers: Sequence[str] | None = None,
    exact: str = "auto",
    exact_budget: float | None = None,
    jobs: int | None = 1,
) -> list[IngestResult]:
    """Ingest model files (or in-memory ``torch.nn.Module`` objects) into a catalogue.

    Models are committed in batches (:data:`BATCH_MODELS`, :data:`BATCH_SECONDS`), one
    segment and one manifest generation each; ``jobs`` worker processes compute the rows
    while this process commits them in source order, so the catalogue holds the same
    rows whatever ``jobs`` is.

    Args:
        sources: a file, folder, glob pattern or module, or a list of them.
        catalogue: catalogue directory; created when the first model is stored.
        activation: hidden activation to assume for files that store none (default relu).
        input_domain: signature domain of layer 0 (``binary``, ``signed``, or ``box``: every
            layer judged on the corners of its own input box); None takes each model's
            ``input_domain`` metadata entry (the zoo and circuit files record one), else
            ``binary``.
        min_weight: store only edges with ``|w| >= min_weight``.
        normalize: normalizer rules to apply (``"exact"``, ``"dead,canonical"`` or a list
            of names); the original model, the normalized one and the lineage between
            them are stored.
        backend: signature backend (``auto``, ``ref``, ``cpu``, ``triton``).
        layers: the layer names of state_dict and safetensors files in forward order
            (see :func:`roon.load_model`); needed where their names do not form a plain
            chain.
        progress: ``models`` events (one per source) and ``neurons`` events (within the
            model being ingested).
        force: rebuild models already in the catalogue (with these options) and replace
            them; without it a stored model is left as it is, and its result's notes say
            when it was built with other options (``input_domain``, ``min_weight``) or has
            derived tables from an older roon (``roon reindex``).
        name: the model's name (default: the file stem, or the module's class name); only
            for a single source. A model derived by ``normalize`` is named
            ``<name>+<rules>``.
        input_space: the space of the input-space signatures: ``auto`` (default),
            ``none``, ``binary``, ``signed``, ``box``, ``box:K`` or a probe ``.npy`` file
            (:func:`roon.ingest.spaces.resolve_space`).
        input_bounds: the input box ``(lo, hi)`` (or per-input pairs) for the ``box``
            domain and space; recorded in each model's metadata (``input_bounds``) so
            that ``roon reindex`` finds it again. Default: the model's own (metadata, an
            .nnet header), else none (the ``box`` domain and a box grid then fail).
        exact: exact policy of neurons beyond the exhaustive limit: ``auto`` (exact
            within ``exact_budget``, the rest sampled and counted in each result's
            ``fallbacks``), ``always`` (every neuron an exact method reaches: every
            ACAS Xu neuron, ~0.5 s each at fan-in 50) or ``never`` (sampled).
        exact_budget: estimated seconds of exact work per model under ``auto``
            (default :data:`roon.kernels.plan.DEFAULT_EXACT_BUDGET`, 0.25 s).
        jobs: worker processes computing rows (1: this process only; None: one per
            core, for :data:`AUTO_JOBS_MIN_SOURCES` model files or more). Only model
            files go to workers (in-memory modules, and models big enough to stream
            their rows, are ingested here); ``neurons`` progress events come only from
            this process.

    Returns:
        One :class:`IngestResult` per model file or module, in order; a path that names
        no model file (missing, an empty folder, a pattern matching nothing) is one
        ``failed`` result. Failures do not raise.
        When the disk holding the catalogue fills up, the failing model's reason names
        the file that could not be written and the sources after it are ``skipped``;
        what was committed before stays, whole.

    Raises:
        CatalogueError: the catalogue cannot be opened or created.
        InvalidArgumentError: ``sources`` is neither a path, a module nor an iterable, or
            an option is invalid (checked before any source is read), an unknown exact
            policy or a bad budget among them.
        KernelUnavailableError: an explicit backend that cannot run here.
    """
    import time

    from roon.kernels.plan import check_policy
    from roon.store import open_catalogue
    from roon.store.write import is_disk_full

    normalize = _check_options(input_domain, min_weight, normalize, backend, input_space)
    check_policy(exact, exact_budget)
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise InvalidArgumentError(
            f"jobs={jobs!r}; give a whole number >= 1 (or None: one per core)"
        )
    root, exists = _target(catalogue)
    items = _expanded(_as_sources(sources))
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidArgumentError(f"name={name!r}; give a non-empty string")
    if name is not None and len(items) > 1:
        raise InvalidArgumentError(
            f"name={name!r} names one model, but the sources hold {len(items)}; "
            "ingest them one at a time to name each"
        )
    options = {
        "activation": activation,
        "name": name,
        "layers": layers,
        "input_bounds": input_bounds,
        "normalize": normalize,
        "input_domain": input_domain,
        "min_weight": min_weight,
        "backend": backend,
        "force": force,
        "input_space": input_space,
        "exact": exact,
        "exact_budget": exact_budget,
    }
    files = sum(isinstance(i, Path) for i in items)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if files >= AUTO_JOBS_MIN_SOURCES else 1
    jobs = min(jobs, files) if files else 1

    results: list[IngestResult | None] = [None] * len(items)
    batch: list[tuple[int, _Prepared]] = []
    started = 0.0
    disk_full = False

    def flush() -> None:
        nonlocal disk_full
        if not batch:
            return
        try:
            written = _commit(root, [p for _, p in batch], force)
            for index, prepared in batch:
                results[index] = _finish(
                    root, prepared, written, input_domain=input_domain, min_weight=min_weight
                )
        except RoonError as exc:
            disk_full = is_disk_full(exc)
            if disk_full or len(batch) == 1:  # the first fails; after a full disk, skip
                index, prepared = batch[0]
                results[index] = IngestResult(prepared.label, "failed", reason=one_line(exc))
                for index, prepared in batch[1:]:
                    results[index] = IngestResult(prepared.label, "skipped", reason=_SKIPPED)
            else:  # one bad model must not fail the others: commit them one by one
                single = list(batch)
                for item in single:
                    batch[:] = [item]
                    flush()
        batch.clear()

    def prepared_items() -> Iterator[tuple[int, str, _Prepared | IngestResult | None]]:
        """Each item, prepared here or by the workers (None: skipped, the disk is full)."""
        pool = None
        if jobs > 1:
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
            pool = context.Pool(jobs, initializer=_worker_init)
        try:
            remote: Iterator[_Prepared | IngestResult | None] | None = None
            if pool is not None:
                tasks = [
                    (item, _label(item), root, exists, options)
                    for item in items
                    if isinstance(item, Path)
                ]
                remote = pool.imap(
                    _worker, tasks, chunksize=max(1, min(16, len(tasks) // (8 * jobs)))
                )
            for number, item in enumerate(items):
                label = item.source if isinstance(item, IngestResult) else _label(item)
                emit(progress, "models", number, len(items), Path(label).name)
                if isinstance(item, IngestResult):
                    found: _Prepared | IngestResult | None = item
                elif remote is not None and isinstance(item, Path):
                    found = next(remote)
                    if found is None:  # big: its rows are streamed, here
                        found = _load_and_prepare(item, label, root, exists, options, progress)
                elif disk_full:
                    found = None
                else:
                    found = _load_and_prepare(item, label, root, exists, options, progress)
                yield number, label, found
                emit(progress, "models", number + 1, len(items), Path(label).name)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()

    for number, label, found in prepared_items():
        if disk_full or found is None:  # every later commit would fail the same way
            results[number] = IngestResult(label, "skipped", reason=_SKIPPED)
            continue
        if isinstance(found, IngestResult):
            results[number] = found
            continue
        if not exists and found.staged:  # a catalogue-level failure here stops the ingest
            root, exists = open_catalogue(root, create=True), True
        if found.weights > STREAM_WEIGHTS:  # big: alone, its rows streamed
            flush()
            batch.append((number, found))
            flush()
            continue
        if not batch:
            started = time.monotonic()
        batch.append((number, found))
        pending = sum(p.weights for _, p in batch)
        if (
            len(batch) >= BATCH_MODELS
            or pending >= BATCH_WEIGHTS
            or time.monotonic() - started >= BATCH_SECONDS
        ):
            flush()
    flush()
    return [r for r in results if r is not None]
