# roon's one task runner. The README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CATALOGUE ?= roon-catalogue
ROON := $(BIN)/roon

.PHONY: run test install dev lint format bench test-neo4j neo4j-test-server clean

# The Neo4j test server (docker/neo4j-test-server: Neo4j Community embedded in one Java
# class, built with Maven). `make test` starts one on a free port for the whole run and
# stops it afterwards, also when tests fail; without Java 17+ and Maven the neo4j tests
# skip with the reason shown. MAVEN_REPO_LOCAL moves Maven's jar cache (~160 MB; default
# ~/.m2/repository), e.g. `make test MAVEN_REPO_LOCAL=/tmp/m2`.
NEO4J_TEST_SERVER := docker/neo4j-test-server/server.sh
MAVEN_REPO_LOCAL ?=
export MAVEN_REPO_LOCAL

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 (the tested version) goes first. pip takes PyPI's CUDA build: several GB
# of packages (.venv is ~5 GB); for CPU only, install it from PyTorch's CPU index first.
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

# The main job: `roon demo`. It trains the demo zoo into $(ZOO) (or reuses it), ingests it
# into $(CATALOGUE) with --normalize exact, searches every model for every library
# circuit (roon where) with a planted-circuit control and the shuffled-label controls,
# lists the recurring functions, and ends by printing where the report and the figure
# are ($(DEMO)/report.json, $(DEMO)/summary.png). The example networks (ACAS Xu, MNIST)
# are no longer part of it: a fresh clone's install and demo alone take the two minutes
# `make run` has on the 2-core VM, and in the demo's catalogue every `where` would search
# them too. `roon ingest examples --catalogue examples-catalogue` (4 s) catalogues them
# (README, "Examples").
ZOO ?= zoo
DEMO ?= demo

run: install
	$(ROON) demo --zoo $(ZOO) --catalogue $(CATALOGUE) --out $(DEMO)

test: dev
	$(NEO4J_TEST_SERVER) run $(BIN)/pytest -q

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests marked `neo4j` alone. Where a Docker engine answers: against a throw-away
# Neo4j from docker/compose.yaml (own project name, ports and volume, so a server you
# already run is left alone). Elsewhere: against the embedded test server, as `make test`.
NEO4J_TEST_COMPOSE = docker compose -p roon-test -f docker/compose.yaml
NEO4J_TEST_PORTS = NEO4J_HTTP_PORT=17474 NEO4J_BOLT_PORT=17687

test-neo4j: dev
	@if docker info >/dev/null 2>&1; then \
	  test -f docker/neo4j.env || cp docker/neo4j.env.example docker/neo4j.env; \
	  $(NEO4J_TEST_PORTS) $(NEO4J_TEST_COMPOSE) up -d --wait || exit 1; \
	  NEO4J_URI=neo4j://127.0.0.1:17687 NEO4J_USER=neo4j \
	    NEO4J_PASSWORD="$$(sed -n 's|^NEO4J_AUTH=neo4j/||p' docker/neo4j.env)" \
	    ROON_NEO4J_TEST_WIPE=1 $(BIN)/pytest -m neo4j; \
	  status=$$?; $(NEO4J_TEST_PORTS) $(NEO4J_TEST_COMPOSE) down -v; exit $$status; \
	else \
	  echo "no Docker engine: the neo4j tests run against the embedded test server"; \
	  $(NEO4J_TEST_SERVER) run $(BIN)/pytest -m neo4j; \
	fi

# Build the test server (fetches Neo4j's jars into Maven's local repository once).
neo4j-test-server:
	$(NEO4J_TEST_SERVER) build

bench: install
	$(BIN)/python benchmarks/bench_signatures.py

clean:
	rm -rf $(CATALOGUE) $(ZOO) $(DEMO) build *.egg-info .pytest_cache .ruff_cache .mypy_cache \
	  docker/neo4j-test-server/target
