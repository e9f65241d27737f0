# evopot: `make demo` and `make test` work on a fresh machine with Python ≥ 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.evopot-installed
# The CPU build of torch, installed first so the open range torch>=2.2 pulls no CUDA wheels.
TORCH_PIN ?= torch==2.13.0

.PHONY: install lint demo test test-all browser dft mace-anchor bench docs gallery clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# a pair + three-body (Stillinger–Weber form) search on bundled DFT silicon: the front, the
# recommended formula and its crystal (a0, B, C11, C12, C44) against the DFT values
demo: install
	$(VENV)/bin/evopot search examples/silicon_threebody.yaml --overwrite

# docs/config.md from the pydantic schemas (a test fails when it is stale)
docs: install
	$(PY) -m evopot.inspect.reference > docs/config.md

# the README's gallery: the report of the pair search on bundled DFT silicon
gallery: install
	$(VENV)/bin/evopot search examples/silicon_pair.yaml --overwrite
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

# GPAW (real DFT for evopot data / learn): Debian's libxc, FFTW and BLAS, then GPAW and its
# PAW setups (gpaw-data) from PyPI into the virtual environment (GPAW 26 compiles its C as C++)
DFT_STAMP := $(VENV)/.evopot-dft
$(DFT_STAMP): $(STAMP)
	command -v g++ >/dev/null && test -e /usr/include/xc.h && test -e /usr/include/fftw3.h || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		 build-essential libxc-dev libfftw3-dev libopenblas-dev)
	CC=g++ $(PY) -m pip install --quiet "gpaw>=24.1" gpaw-data
	$(PY) -c "import gpaw, gpaw_data; print('GPAW', gpaw.__version__, 'setups', gpaw_data.__file__)"
	touch $(DFT_STAMP)

dft: $(DFT_STAMP)

# MACE (mace-torch), only as the benchmarks' anchor (benchmarks/hybrid.py --anchor mace): a
# virtual environment of its own, so evopot never depends on it
MACE_VENV ?= .venv-mace
MACE_STAMP := $(MACE_VENV)/.evopot-mace
$(MACE_STAMP):
	test -x $(MACE_VENV)/bin/python || $(PYTHON) -m venv $(MACE_VENV)
	$(MACE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MACE_VENV)/bin/python -m pip install --quiet "$(TORCH_PIN)"
	$(MACE_VENV)/bin/python -m pip install --quiet mace-torch
	$(MACE_VENV)/bin/python -c "import mace, torch; print('mace-torch', mace.__version__, 'torch', torch.__version__)"
	touch $(MACE_STAMP)

mace-anchor: $(MACE_STAMP)

test-all: install browser dft
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/evaluator.py
	$(PY) benchmarks/rediscovery.py
	$(PY) benchmarks/silicon.py
	$(PY) benchmarks/hybrid.py

clean:
	rm -rf $(VENV) $(MACE_VENV) runs .pytest_cache
