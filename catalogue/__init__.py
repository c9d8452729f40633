"""roon's library of reference circuits, one ``<name>.json`` file each.

Installed as the package ``roon.circuits``; the files are data, read with
importlib.resources by :mod:`roon.ingest.loaders.circuit`.
"""
