"""Models in, catalogue rows out: loaders, normalizers, tokenizers, and the ingest jobs.

Pure parts (never touching the catalogue): :mod:`~roon.ingest.loaders`,
:mod:`~roon.ingest.normalize`, :mod:`~roon.ingest.tokenize`, :mod:`~roon.ingest.rows`
(structural rows) and :mod:`~roon.ingest.derived` (derived tables). Jobs that write
through :mod:`roon.store`: :mod:`~roon.ingest.pipeline` (ingest),
:mod:`~roon.ingest.reindex` and :mod:`~roon.ingest.normalize_job` (``roon normalize``).
"""

from roon.ingest.pipeline import IngestResult, expand_sources, ingest_model, ingest_models

__all__ = ["IngestResult", "expand_sources", "ingest_model", "ingest_models"]
