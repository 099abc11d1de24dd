# The README's commands. `make demo` runs the main job, `make test` the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint setup clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/hiveops demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP)
	$(BIN)/ruff check .
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q

# The edit loop: pure engine and model tests, no Prefect server, no simulator socket.
test-fast: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/engine tests/test_msat.py tests/test_settings.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
