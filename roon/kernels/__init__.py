"""Exact excited-state signatures of neurons (see DESIGN: signatures)."""
