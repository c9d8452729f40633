"""Upgrading a version-1 catalogue (one folder per model) to version 2, in place.

Nothing is rewritten: the upgrade writes a manifest that lists each model folder as a
segment of one model (its ``model.safetensors`` is a weights file of one model, its
``derived.json`` gives the versions) and each row file of a catalogue table as a segment
of its own, then marks the catalogue version 2. ``roon compact`` later merges them.

Readers of a version-1 catalogue hold a shared flock on its marker file while they read
its files. Before the marker is replaced, the upgrade links the old marker as
``manifests/000000000000.json`` (generation 0): garbage collection deletes a file of the
old layout only once it can lock that generation exclusively, i.e. once no reader of the
old layout is left. A crash at any point leaves the marker at version 1 (and the next
writer upgrades again) or the upgrade complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

from roon.store import layout

__all__ = ["upgrade"]


def upgrade(root: Path) -> bool:
    """Upgrade a version-1 catalogue to the current format (call under the lock).

    Returns:
        Whether anything was upgraded (False for a current catalogue).
    """
    from roon.store.manifest import Manifest, generations, legacy_manifest, write_manifest
    from roon.store.write import fsync_dir, write_atomic, writing

    if layout.format_version(root) >= layout.FORMAT_VERSION:
        return False
    folder = layout.manifests_dir(root)
    with writing(folder):
        folder.mkdir(exist_ok=True)
        layout.segments_dir(root).mkdir(exist_ok=True)
        zero = layout.manifest_path(root, 0)
        marker = layout.marker_path(root)
        if not zero.exists():
            link = folder / f".tmp-{uuid.uuid4().hex}"
            try:
                os.link(marker, link)
            except OSError:  # a file system without hard links: version-1 readers are
                link.write_bytes(marker.read_bytes())  # then not waited for
            os.replace(link, zero)
            with contextlib.suppress(OSError):
                fsync_dir(folder)
    legacy = legacy_manifest(root)
    generation = max([0, *generations(root)]) + 1
    write_manifest(root, Manifest(generation, legacy.segments))
    body = {"format": layout.FORMAT_NAME, "version": layout.FORMAT_VERSION}
    write_atomic(marker, json.dumps(body).encode())
    return True
