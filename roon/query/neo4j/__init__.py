"""The Neo4j side of roon, by job.

* :mod:`~roon.query.neo4j.connection` — connect, ping, run statements, translate errors;
* :mod:`~roon.query.neo4j.schema` — ``roon graph init`` (``schema/neo4j.cypher``);
* :mod:`~roon.query.neo4j.push` — ``roon graph push``;
* :mod:`~roon.query.neo4j.read` — ``roon cypher`` (read-only user queries);
* :mod:`~roon.query.neo4j.export` — ``roon graph export --format neo4j-admin``;
* :mod:`~roon.query.neo4j.statements` — every statement roon sends, as constants;
* :mod:`~roon.query.neo4j.model` — which catalogue column becomes which graph property.

This module holds only the connection defaults, so that the CLI can show them without
importing the driver.
"""

DEFAULT_URI = "neo4j://localhost:7687"
DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"
# Rows per UNWIND: Neo4j's guidance is 1k-10k maps per transaction; 1000 keeps each
# transaction's memory small on a default-configured server and is still one round
# trip per thousand FEEDS relationships.
DEFAULT_BATCH_SIZE = 1000
# Seconds to wait for a connection; a refused port fails at once regardless.
CONNECT_TIMEOUT_S = 10.0
