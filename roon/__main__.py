"""``python -m roon`` runs the command line."""

from roon.cli import main

if __name__ == "__main__":  # not when a worker process of `ingest --jobs` imports it
    main()
