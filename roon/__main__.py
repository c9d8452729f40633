"""``python -m roon`` runs the command line."""

from roon.cli import main

main()
