"""Loading models, normalizing them and writing them to the catalogue."""
