# The README's commands. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: run test lint bench clean chromium

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# opentiva: the PK test oracle; its shipped C file predates Python 3.11, so it is built
	# without build isolation (which the dev extra cannot express).
	$(BIN)/python -m pip install --quiet cython setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation opentiva
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: install everything and start the web app on a demo database (users printed at start)
run: $(STAMP)
	$(BIN)/ketapath serve --demo

## chromium: Debian's Chromium for the browser tests (Playwright drives it; it never
## downloads a browser). Installed when missing and apt-get can run as root; otherwise the
## browser tests skip with the reason (they may not skip under CI).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: browser tests will skip"; }

## test: install everything, lint, type-check and run the whole test suite
test: $(STAMP) chromium
	$(BIN)/ruff check src tests $(wildcard benchmarks/*.py)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks/*.py)
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks/*.py)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks/*.py)
	$(BIN)/mypy src

## bench: performance benchmarks (not part of the test suite)
bench: $(STAMP)
	@if ls benchmarks/bench_*.py >/dev/null 2>&1; then for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done; else echo "no benchmarks yet"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
