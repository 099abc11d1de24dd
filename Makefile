# The README's commands. `make demo` runs the main job, `make test` the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint setup clean clone-check ui-check

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

# ruff, then a stranger's install (the committed HEAD cloned where nothing is beside it, its wheel
# in a fresh venv, the demo from an empty folder), then pytest (its summary closes the output).
test: $(STAMP)
	$(BIN)/ruff check .
	$(PY) .ci/clone_check.py
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q --ignore=tests/test_serve.py
	# serve starts its own Prefect server; beside the session's test server its first
	# failure notice went missing (twice in a full run, never in its own process)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q tests/test_serve.py

# The edit loop: pure engine and model tests, no Prefect server, no simulator socket.
test-fast: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/engine tests/test_msat.py tests/test_settings.py

clone-check:
	$(PY) .ci/clone_check.py

# The report artifact in the Prefect UI, in headless Chromium (Debian's `chromium`; Playwright
# drives it and downloads no browser). The screenshot lands beside the report it shows.
ui-check: $(STAMP)
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev,ui]'
	$(BIN)/python .ci/ui_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
