"""Normalizers (placeholder until the rules land)."""
