"""Querying the catalogue: DuckDB over Parquet, Neo4j, matching."""
