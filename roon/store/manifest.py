"""The manifest: which segments (and which of their files) make up the catalogue.

One JSON file per generation, ``manifests/<generation>.json``, never changed once written.
A commit (under the catalogue lock) writes the next generation by one rename; the
highest generation present is the current one. Readers *lease* a generation: they hold a
shared flock on its file while they read the files it names (:class:`Snapshot`). After
each commit, :func:`collect_garbage` deletes the older generations that no reader leases
(taking an exclusive flock first, so a reader that is still there keeps it), and then the
files named by the deleted generations that no remaining generation names. So a file is
removed only when no reader can still need it, and a crash at any point leaves either
the old generation or the new one current, with every file either names still there.

A version-1 catalogue has no manifest: :func:`legacy_manifest` lists its model folders
(each a segment of one model) and row files, as readers see them; its readers lease the
marker file instead (see :mod:`roon.store.upgrade`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from roon.errors import CatalogueError, one_line
from roon.store import layout

__all__ = [
    "MANIFEST_FORMAT",
    "TableFile",
    "Segment",
    "Manifest",
    "Snapshot",
    "generations",
    "read_manifest",
    "current_manifest",
    "legacy_manifest",
    "take_snapshot",
    "write_manifest",
    "commit",
    "collect_garbage",
    "sweep",
]

MANIFEST_FORMAT = "roon-manifest"
_NAME = re.compile(r"^(\d{12})\.json$")
# Parsed manifests kept per process, by (catalogue, generation): a generation never
# changes, so a cached one is always right. A few: the current one and its predecessor.
_CACHE_SIZE = 4
_cache: dict[tuple[str, int], Manifest] = {}


@dataclass(frozen=True)
class TableFile:
    """One table's rows in a segment.

    Attributes:
        path: the Parquet file, relative to the catalogue; None when there are no rows.
        rows: its row count (None where unknown: version-1 files).
        version: the definition version its rows were computed with (derived tables).
    """

    path: str | None
    rows: int | None = None
    version: int | None = None


@dataclass(frozen=True)
class Segment:
    """A set of models (or none: rows of catalogue tables) and the files holding them.

    Attributes:
        id: unique name.
        dir: the folder its files were written to, relative to the catalogue.
        models: model ids, sorted; the rows of every model table are in this order.
        tables: table name → :class:`TableFile`.
        weights: the weights file (relative), its models' safetensors files end to end.
        sizes: the length of each model's safetensors file in ``weights``, in model order.
    """

    id: str
    dir: str
    models: tuple[str, ...] = ()
    tables: Mapping[str, TableFile] = field(default_factory=dict)
    weights: str | None = None
    sizes: tuple[int, ...] = ()

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {m: i for i, m in enumerate(self.models)}

    def blob(self, model_id: str) -> tuple[int, int]:
        """``(offset, length)`` of a model's safetensors file inside ``weights``."""
        i = self._positions[model_id]
        return sum(self.sizes[:i]), self.sizes[i]

    def files(self) -> list[str]:
        """Every file it names (relative paths)."""
        found = [t.path for t in self.tables.values() if t.path is not None]
        return found + ([self.weights] if self.weights else [])

    def to_dict(self) -> dict[str, object]:
        tables: dict[str, dict[str, object]] = {}
        for name, entry in self.tables.items():
            item: dict[str, object] = {}
            if entry.path is not None and entry.path != f"{self.dir}/{name}.parquet":
                item["file"] = entry.path
            if entry.rows is not None:
                item["rows"] = entry.rows
            if entry.version is not None:
                item["version"] = entry.version
            if entry.path is None:
                item["rows"] = 0
            tables[name] = item
        return {
            "id": self.id,
            "dir": self.dir,
            "models": list(self.models),
            "weights": self.weights,
            "sizes": list(self.sizes),
            "tables": tables,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Segment:
        folder = str(data["dir"])
        tables = {}
        for name, item in dict(data.get("tables") or {}).items():  # type: ignore[call-overload]
            rows = item.get("rows")
            path = None if rows == 0 else item.get("file", f"{folder}/{name}.parquet")
            tables[str(name)] = TableFile(path, rows, item.get("version"))
        return cls(
            id=str(data["id"]),
            dir=folder,
            models=tuple(data.get("models") or ()),  # type: ignore[arg-type]
            tables=tables,
            weights=data.get("weights"),  # type: ignore[arg-type]
            sizes=tuple(data.get("sizes") or ()),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Manifest:
    """The catalogue at one generation: its segments, in commit order.

    Attributes:
        generation: its number (0 for a version-1 catalogue read in place).
        segments: the live segments.
        legacy: True when synthesized from a version-1 layout.
    """

    generation: int
    segments: tuple[Segment, ...]
    legacy: bool = False

    @cached_property
    def by_model(self) -> dict[str, Segment]:
        """Model id → the segment holding it."""
        return {m: s for s in self.segments for m in s.models}

    def segment(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def files(self, table: str, *, models: Sequence[str] | None = None) -> list[str]:
        """The files holding ``table``'s rows (of ``models``' segments, when given)."""
        wanted = None if models is None else set(models)
        return [
            entry.path
            for s in self.segments
            if (entry := s.tables.get(table)) is not None and entry.path is not None
            if wanted is None or wanted.intersection(s.models)
        ]

    def all_files(self) -> set[str]:
        return {f for s in self.segments for f in s.files()}

    def to_json(self) -> bytes:
        body = {
            "format": MANIFEST_FORMAT,
            "generation": self.generation,
            "segments": [s.to_dict() for s in self.segments],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, where: Path) -> Manifest:
        try:
            body = json.loads(data)
            if body.get("format") != MANIFEST_FORMAT:
                raise ValueError("not a roon manifest")
            return cls(int(body["generation"]), tuple(map(Segment.from_dict, body["segments"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CatalogueError(
                f"catalogue manifest {where} is damaged ({one_line(exc)}); "
                "restore it from a backup of the catalogue"
            ) from None


def generations(root: Path) -> list[int]:
    """The generations whose manifest files exist, ascending."""
    try:
        names = os.listdir(layout.manifests_dir(root))
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := _NAME.match(n)))


def read_manifest(root: Path, generation: int, data: bytes | None = None) -> Manifest:
    """The manifest of one generation (parsed once per process).

    Raises:
        CatalogueError: the file is gone (retired) or damaged.
    """
    key = (str(root), generation)
    found = _cache.get(key)
    if found is not None:
        return found
    path = layout.manifest_path(root, generation)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CatalogueError(f"cannot read {path}: {one_line(exc.strerror or exc)}") from None
    manifest = Manifest.from_json(data, path)
    while len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = manifest
    return manifest


def current_manifest(root: Path) -> Manifest:
    """The current manifest (of a version-1 catalogue: its folders as segments).

    Raises:
        CatalogueError: a version-2 catalogue without a manifest.
    """
    if layout.format_version(root) < 2:
        return legacy_manifest(root)
    for _ in range(100):  # a generation retired between listing and reading: list again
        found = generations(root)
        if not found or found[-1] == 0:
            raise CatalogueError(
                f"catalogue {root} has no manifest ({layout.manifests_dir(root)} is empty); "
                "restore it from a backup of the catalogue"
            )
        try:
            return read_manifest(root, found[-1])
        except CatalogueError:
            if layout.manifest_path(root, found[-1]).exists():
                raise
    raise CatalogueError(f"catalogue {root}: its manifest changes too fast to read")


def legacy_manifest(root: Path) -> Manifest:
    """A version-1 catalogue as segments: each model folder one, each row file one.

    A model folder counts when it holds ``models.parquet`` (the version-1 commit rule);
    derived tables take their versions from its ``derived.json`` (1 where it is missing).
    """
    from roon.ingest.derived import DERIVED_TABLES
    from roon.store.write import read_derived

    segments = []
    models = layout.v1_model_dirs(root)
    names = sorted(os.listdir(models)) if models.is_dir() else []
    for model_id in names:
        folder = models / model_id
        try:
            present = {e.name: e for e in os.scandir(folder)}
        except (NotADirectoryError, FileNotFoundError):
            continue
        if "models.parquet" not in present:
            continue
        versions = read_derived(folder / layout.DERIVED_FILE)
        rel = f"models/{model_id}"
        tables = {
            t: TableFile(
                f"{rel}/{t}.parquet", None, versions.get(t, 1) if t in DERIVED_TABLES else None
            )
            for t in layout.MODEL_TABLES
            if f"{t}.parquet" in present
        }
        weights = present.get(layout.WEIGHTS_FILE)
        size = weights.stat().st_size if weights is not None else 0
        segments.append(
            Segment(
                f"v1-{model_id}", rel, (model_id,), tables, f"{rel}/{layout.WEIGHTS_FILE}", (size,)
            )  # fmt: skip
        )
    for table in layout.CATALOGUE_TABLES:
        folder = layout.rows_dir(root, table)
        files = sorted(p.name for p in folder.glob("*.parquet")) if folder.is_dir() else []
        for name in files:
            segments.append(
                Segment(
                    f"v1-{table}-{name[:-8]}", table, tables={table: TableFile(f"{table}/{name}")}
                )  # fmt: skip
            )
    return Manifest(0, tuple(segments), legacy=True)


def _same_file(path: Path, fd: int) -> bool:
    try:
        here, there = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class Snapshot:
    """A manifest and the lease that keeps its files: a shared flock on its file.

    Close it (or use it as a context manager, or :meth:`keep_with` an object whose life
    it should last) to let later commits delete what it names.
    """

    def __init__(self, root: Path, manifest: Manifest, fd: int | None) -> None:
        self.root = root
        self.manifest = manifest
        self._fd = fd

    def files(self, table: str, *, models: Sequence[str] | None = None) -> list[Path]:
        return [self.root / f for f in self.manifest.files(table, models=models)]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lease
            self._fd = None

    def keep_with(self, owner: object) -> None:
        """Hold the lease until ``owner`` is garbage collected."""
        weakref.finalize(owner, self.close)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def take_snapshot(root: Path) -> Snapshot:
    """Lease the current generation (of a version-1 catalogue: its marker) and read it.

    Raises:
        CatalogueError: no manifest, or a damaged one.
    """
    for _ in range(100):
        version = layout.format_version(root)
        path = layout.marker_path(root) if version < 2 else None
        if path is None:
            found = generations(root)
            if not found or found[-1] == 0:
                current_manifest(root)  # raises the "no manifest" error
            path = layout.manifest_path(root, found[-1])
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # retired, or the marker replaced: look again
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if not _same_file(path, fd):
                os.close(fd)  # replaced between open and lock: look again
                continue
            if version < 2:
                if layout.format_version(root) >= 2:
                    os.close(fd)  # upgraded meanwhile
                    continue
                return Snapshot(root, legacy_manifest(root), fd)
            generation = int(path.name[:12])
            with open(os.dup(fd), "rb") as handle:
                return Snapshot(root, read_manifest(root, generation, handle.read()), fd)
        except BaseException:
            os.close(fd)
            raise
    raise CatalogueError(f"catalogue {root}: its manifest changes too fast to read")


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write one generation's file atomically and durably (call under the lock)."""
    from roon.store.write import fsync_dir, writing

    folder = layout.manifests_dir(root)
    path = layout.manifest_path(root, manifest.generation)
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    try:
        with writing(path), open(tmp, "wb") as handle:
            handle.write(manifest.to_json())
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(folder)


def commit(root: Path, current: Manifest, segments: Iterable[Segment]) -> Manifest:
    """Make ``segments`` the catalogue: write the generation after ``current``, then
    collect what no reader needs any more. Call under the catalogue lock, with
    ``current`` read under it."""
    new = Manifest(current.generation + 1, tuple(segments))
    write_manifest(root, new)
    _cache[(str(root), new.generation)] = new
    collect_garbage(root, new)
    return new


def _lease_free(path: Path) -> bool:
    """Delete a manifest file if no reader leases it; whether it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def _legacy_files(root: Path) -> set[str]:
    return legacy_manifest(root).all_files()


def _v1_place(rel: str) -> bool:
    """Whether a relative path is in a version-1 location (model folders, row folders)."""
    top = rel.split("/", 1)[0]
    return top == "models" or top in layout.CATALOGUE_TABLES


def collect_garbage(root: Path, current: Manifest) -> int:
    """Delete the older generations no reader leases, and the files only they named.

    Call under the catalogue lock. Returns the number of files deleted.
    """
    retired: list[set[str]] = []
    kept: set[str] = set()
    legacy_leased = False
    for generation in generations(root):
        if generation >= current.generation:
            continue
        path = layout.manifest_path(root, generation)
        old = None
        if generation > 0:
            with contextlib.suppress(CatalogueError):
                old = read_manifest(root, generation).all_files()
        if _lease_free(path):
            retired.append(_legacy_files(root) if generation == 0 else old or set())
        elif generation == 0:
            legacy_leased = True
        else:
            kept |= old or set()
    if not retired:
        return 0
    live = current.all_files() | kept
    doomed = set().union(*retired) - live
    if legacy_leased:  # a version-1 reader may still read every old file in place
        doomed = {f for f in doomed if not _v1_place(f)}
    return _delete(root, doomed, live)


def _delete(root: Path, doomed: Iterable[str], live: set[str]) -> int:
    """Delete files; a segment or version-1 model folder left without a live file goes
    whole (with files no manifest names, such as ``derived.json``)."""
    live_dirs = {f.rsplit("/", 1)[0] for f in live}
    count = 0
    folders: set[str] = set()
    for rel in doomed:
        folder = rel.rsplit("/", 1)[0]
        top = folder.split("/", 1)[0]
        if top in ("segments", "models") and "/" in folder and folder not in live_dirs:
            folders.add(folder)
            continue
        with contextlib.suppress(FileNotFoundError):
            (root / rel).unlink()
            count += 1
    for folder in folders:
        if (root / folder).is_dir():
            count += sum(1 for _ in (root / folder).iterdir())
            shutil.rmtree(root / folder, ignore_errors=True)
    return count


def sweep(root: Path, current: Manifest) -> int:
    """Delete everything in the segment and version-1 folders that no generation present
    names (crash debris: a commit killed between its rename and its manifest). Call
    under the catalogue lock, after :func:`collect_garbage`. Returns files deleted."""
    live = current.all_files()
    legacy_leased = False
    for generation in generations(root):
        if 0 < generation < current.generation:
            with contextlib.suppress(CatalogueError):
                live |= read_manifest(root, generation).all_files()
        elif generation == 0:
            legacy_leased = True
    doomed = []
    places = [layout.segments_dir(root)]
    if not legacy_leased and not current.legacy:
        places.append(layout.v1_model_dirs(root))
    for place in places:
        if not place.is_dir():
            continue
        for folder in place.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                rel = str(path.relative_to(root))
                if rel not in live:
                    doomed.append(rel)
    if not legacy_leased and not current.legacy:
        for table in layout.CATALOGUE_TABLES:
            folder = layout.rows_dir(root, table)
            if folder.is_dir():
                doomed += [
                    f"{table}/{p.name}" for p in folder.iterdir() if f"{table}/{p.name}" not in live
                ]
    return _delete(root, doomed, live)


def replaced(manifest: Manifest, drop: Iterable[str], add: Iterable[Segment]) -> list[Segment]:
    """The segments of ``manifest`` without those whose ids are in ``drop``, then ``add``."""
    gone = set(drop)
    return [s for s in manifest.segments if s.id not in gone] + list(add)


def without_tables(segment: Segment, tables: Iterable[str]) -> Segment:
    """``segment`` minus some of its table files."""
    gone = set(tables)
    return replace(segment, tables={t: e for t, e in segment.tables.items() if t not in gone})


def iter_segments(manifest: Manifest, models: Iterable[str]) -> Iterator[tuple[Segment, list[str]]]:
    """The segments holding ``models``, each with the models of it asked for (in order)."""
    groups: dict[str, tuple[Segment, list[str]]] = {}
    for m in models:
        segment = manifest.by_model.get(m)
        if segment is not None:
            groups.setdefault(segment.id, (segment, []))[1].append(m)
    for segment in manifest.segments:
        if segment.id in groups:
            yield groups[segment.id]
