"""Where a circuit appears: patterns, the hash filter, the layered matcher, the checks.

* :mod:`~roon.query.match.pattern` — what to look for, and the keys its neurons accept;
* :mod:`~roon.query.match.candidates` — ``could_appear_in``: the necessary-condition filter
  (hash joins over the ``signatures`` and ``restricted`` tables);
* :mod:`~roon.query.match.layered` — ``embeddings``: the exact layered matcher;
* :mod:`~roon.query.match.verify` — the exact positional check and the functional check;
* :mod:`~roon.query.match.where` — ``where``: the three together over a catalogue.
"""

from roon.query.match.pattern import Pattern, load_pattern
from roon.query.match.where import Match, WhereResult, where

__all__ = ["Match", "Pattern", "WhereResult", "load_pattern", "where"]
