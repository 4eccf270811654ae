# randla: each target does its own set-up, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.deps-stamp
BUILD_STAMP := $(VENV)/.build-stamp
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml pyproject.toml
# Areas of ../shared/API.md that are implemented and checked by check_api.py.
API_AREAS := conventions sketch krylov lowrank sampling dpp structured completion
CHECK_API := $(firstword $(wildcard ../shared/tools/check_api.py) $(wildcard shared/tools/check_api.py))

.PHONY: venv build demo test test-all test-rust test-python test-docs lint bench bench-quick docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.8,<2" numpy scipy scikit-learn pytest randomgen ruff mypy
	touch $(STAMP)

venv: $(STAMP)

# Release build of the extension, installed in editable mode into .venv.
$(BUILD_STAMP): $(STAMP) $(RUST_SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin develop --release --quiet
	touch $(BUILD_STAMP)

build: $(BUILD_STAMP)

demo: build
	$(PY) -m randla demo

test: build test-rust test-python test-docs

test-rust:
	cargo test --release -p randla

# pytest exits 5 when it collected nothing: report it and fail.
test-python: build
	$(PY) -m pytest -q tests --doctest-modules python/randla || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest collected no tests" >&2; exit $$rc; }
	@if [ -n "$(CHECK_API)" ]; then $(PY) $(CHECK_API) $(API_AREAS); else echo "check_api.py not found: skipped"; fi

# The user guide's examples (sphinx's doctest builder).
test-docs: build
	$(PIP) install --quiet sphinx numpydoc pydata-sphinx-theme
	$(PY) -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest

test-all: build test-rust test-docs
	$(PY) -m pytest -q -m "slow or not slow" tests --doctest-modules python/randla

lint: build
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches docs
	$(VENV)/bin/ruff format --check python tests benches docs
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest randla._core

bench-deps: $(STAMP)
	$(PIP) install --quiet scikit-learn threadpoolctl asv dppy fancyimpute

bench: build bench-deps
	$(PY) benches/compare.py

bench-quick: build bench-deps
	$(PY) benches/compare.py --quick

docs: build
	$(PIP) install --quiet sphinx numpydoc pydata-sphinx-theme matplotlib
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	cargo clean
	rm -rf $(VENV) docs/_build
