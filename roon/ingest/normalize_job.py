"""``roon normalize`` as one library call: normalize a model, write it and its report.

The model comes from a file or the catalogue (:func:`roon.store.load_model_ref`); the
result is written as safetensors with a JSON report beside it, both staged so that
nothing is written when either cannot be; ``store`` also commits both models and the
lineage to the catalogue (the same path as ``roon ingest --normalize``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from roon.errors import InvalidArgumentError, ModelFormatError

__all__ = ["normalize_model"]


def _stage(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` (fsynced); the caller renames it."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is not a secret
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return Path(tmp)


def _make_parents(paths: list[Path]) -> None:
    """Create the folders the outputs go into (``-o new/dir/x.safetensors``)."""
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFormatError(
                f"{path}: cannot create its folder ({exc.strerror or exc})"
            ) from None


def _check_outputs(output: Path | None, report: Path | None) -> Path | None:
    if output is not None:
        report = report or output.with_suffix(".json")
        if report.resolve() == output.resolve():
            raise InvalidArgumentError(
                f"{output}: the report would overwrite the model; name OUT *.safetensors "
                "or give --report another path"
            )
    for path in (output, report):
        if path is not None and path.is_dir():
            raise InvalidArgumentError(f"{path}: is a directory; give a file name")
    return report


def normalize_model(
    ref: str | os.PathLike[str],
    rules: str = "exact",
    *,
    catalogue: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    store: bool = False,
    activation: str | None = None,
    backend: str = "auto",
    **params: Any,
) -> dict[str, Any]:
    """Normalize a model; write the result and a JSON report; optionally store both.

    Args:
        ref: a model file, or a model of ``catalogue`` (id, id prefix or name).
        rules: normalizer rules (:func:`roon.normalize`).
        catalogue: where references are looked up, and where ``store`` writes.
        output: write the normalized model here (safetensors); missing folders are made.
        report: the JSON report path (default: ``output`` with its suffix replaced by
            ``.json``: ``net.norm.safetensors`` → ``net.norm.json``).
        store: also commit the model, the normalized model and the lineage.
        activation: hidden activation for files that store none.
        backend: signature backend.
        **params: rule parameters (``input_bounds``, ``dead_threshold``, ...).

    Returns:
        The report (:func:`~roon.ingest.normalize.normalization_report`) plus ``notes``
        (e.g. that the activation was assumed), ``written`` (the paths written) and,
        with ``store``, ``lineage_rows_added``.
    """
    from roon.ingest.loaders import load_notes
    from roon.ingest.normalize import domain_note, normalization_report, normalize
    from roon.store import load_model_ref

    out = None if output is None else Path(output)
    report_path = _check_outputs(out, None if report is None else Path(report))
    parent = load_model_ref(ref, catalogue, activation=activation)
    child, steps = normalize(parent, rules, backend=backend, **params)
    summary = normalization_report(parent, child, steps, input_bounds=params.get("input_bounds"))
    box = domain_note(parent, rules, params.get("input_bounds"))
    summary["notes"] = [*load_notes(parent), *([box] if box else [])]
    written: list[str] = []
    staged = None
    _make_parents([p for p in (out, report_path) if p is not None])
    if report_path is not None:
        staged = _stage(report_path, json.dumps(summary, indent=2) + "\n")
    try:
        if out is not None:
            from roon.ingest.loaders import save_safetensors

            save_safetensors(child, out)
            written.append(str(out))
        if report_path is not None and staged is not None:
            os.replace(staged, report_path)
            written.append(str(report_path))
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)  # still there only when something failed
    if store:
        from roon.ingest.pipeline import store_derivation
        from roon.store import open_catalogue

        if catalogue is None:
            raise InvalidArgumentError("store=True needs a catalogue to store into")
        root = open_catalogue(catalogue, create=True)
        _, _, added = store_derivation(root, parent, child, steps, backend=backend)
        summary["lineage_rows_added"] = added
        written.append(str(root))
    summary["written"] = written
    return summary
