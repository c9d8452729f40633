"""The catalogue on disk: the one layer that knows how a catalogue is stored.

* :mod:`~roon.store.layout` — the folder structure and format version (the only code that
  knows where a file lives), and :func:`open_catalogue`;
* :mod:`~roon.store.write` — atomic, idempotent commits of models and catalogue rows;
* :mod:`~roon.store.read` — tables, models and the one resolver of model references;
* :mod:`~roon.store.migrate` — which derived tables of a model are out of date.

Below the store: the MLP type, kernels, loaders, normalizers and tokenizers (none of which
import it). Above it: the ingest pipeline and the query code, which read and write only
through it.
"""

from roon.store.layout import FORMAT_VERSION, open_catalogue
from roon.store.read import (
    has_model,
    list_models,
    load_catalogued_model,
    load_model_ref,
    read_model_table,
    read_table,
    resolve_model,
)
from roon.store.write import catalogue_lock, remove_model, remove_models, write_model, write_rows

__all__ = [
    "FORMAT_VERSION",
    "open_catalogue",
    "catalogue_lock",
    "has_model",
    "list_models",
    "load_catalogued_model",
    "load_model_ref",
    "read_model_table",
    "read_table",
    "remove_model",
    "remove_models",
    "resolve_model",
    "write_model",
    "write_rows",
]
