"""Loading models, normalizing them and writing them to the catalogue."""

from roon.ingest.pipeline import IngestResult, expand_sources, ingest_models

__all__ = ["IngestResult", "expand_sources", "ingest_models"]
