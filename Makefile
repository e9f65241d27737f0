# evopot: `make demo` and `make test` work on a fresh machine with Python ≥ 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.evopot-installed
# The CPU build of torch, installed first so the open range torch>=2.2 pulls no CUDA wheels.
TORCH_PIN ?= torch==2.13.0

.PHONY: install lint demo test test-all browser bench docs gallery clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/evopot search examples/silicon_pair.yaml --overwrite

# docs/config.md from the pydantic schemas (a test fails when it is stale)
docs: install
	$(PY) -m evopot.inspect.reference > docs/config.md

# the README's gallery: the report of make demo's run
gallery: demo
	rm -rf examples/gallery/silicon_pair
	$(VENV)/bin/evopot report runs/silicon_pair --output examples/gallery/silicon_pair
	$(VENV)/bin/evopot validate runs/silicon_pair --reference examples/data/Si/training.extxyz \
		--output examples/gallery/silicon_pair/validation

# style (ruff) and the one-way flow of imports (import-linter) first: a violation fails the test
lint: install
	$(VENV)/bin/ruff check evopot tests benchmarks
	$(VENV)/bin/ruff format --check evopot tests benchmarks
	$(VENV)/bin/lint-imports

test: install lint
	$(PY) -m pytest -q -m "not slow"

# headless Chromium for the slow test that renders the HTML report (Debian package)
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

test-all: install browser
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/evaluator.py
	$(PY) benchmarks/rediscovery.py
	$(PY) benchmarks/silicon.py
	$(PY) benchmarks/hybrid.py

clean:
	rm -rf $(VENV) runs .pytest_cache
