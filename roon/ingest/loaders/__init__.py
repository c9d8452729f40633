"""Model loaders (placeholder until the loaders land)."""
