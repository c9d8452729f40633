# roon's one task runner. The README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CATALOGUE ?= roon-catalogue
ROON := $(BIN)/roon

.PHONY: run test install dev lint format bench test-neo4j clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 goes first: on this project's machines it resolves to the CPU wheel on
# disk (~200 MB); an unpinned torch pulls several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

# The main job: ingest the example networks and summarize what roon found: the models,
# how each neuron's signature was computed, and the exact signatures that recur across models.
run: install
	$(ROON) ingest examples --catalogue $(CATALOGUE)
	$(ROON) models --catalogue $(CATALOGUE)
	$(ROON) sql --catalogue $(CATALOGUE) \
	  "SELECT domain, method, exact, count(*) AS neurons, sum(fragile::INT) AS fragile \
	   FROM signatures GROUP BY ALL ORDER BY ALL"
	$(ROON) sql --catalogue $(CATALOGUE) \
	  "SELECT s.hash[:12] AS signature, any_value(s.fan_in) AS fan_in, any_value(s.chow) AS chow, \
	          count(DISTINCT s.model_id) AS models, count(*) AS neurons, \
	          string_agg(DISTINCT m.name, ', ' ORDER BY m.name) AS found_in \
	   FROM signatures s JOIN models m USING (model_id) WHERE s.exact \
	   GROUP BY s.hash HAVING count(DISTINCT s.model_id) > 1 \
	   ORDER BY models DESC, neurons DESC, signature LIMIT 8"

test: dev
	$(BIN)/pytest -q

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests marked `neo4j`, against a throw-away Neo4j from docker/compose.yaml (own
# project name, ports and volume, so a server you already run is left alone).
NEO4J_TEST_COMPOSE = docker compose -p roon-test -f docker/compose.yaml
NEO4J_TEST_PORTS = NEO4J_HTTP_PORT=17474 NEO4J_BOLT_PORT=17687

test-neo4j: dev
	test -f docker/neo4j.env || cp docker/neo4j.env.example docker/neo4j.env
	$(NEO4J_TEST_PORTS) $(NEO4J_TEST_COMPOSE) up -d --wait
	NEO4J_URI=neo4j://127.0.0.1:17687 NEO4J_USER=neo4j \
	  NEO4J_PASSWORD="$$(sed -n 's|^NEO4J_AUTH=neo4j/||p' docker/neo4j.env)" \
	  ROON_NEO4J_TEST_WIPE=1 $(BIN)/pytest -m neo4j -ra; \
	  status=$$?; $(NEO4J_TEST_PORTS) $(NEO4J_TEST_COMPOSE) down -v; exit $$status

bench: install
	$(BIN)/python benchmarks/bench_signatures.py

clean:
	rm -rf $(CATALOGUE) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
