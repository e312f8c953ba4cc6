# `make demo` and `make test` each set up .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint audit unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/interlink demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# Known vulnerabilities in the installed dependencies (PyPI's advisory data). Fails on any
# finding not accepted in .ci/audit-accepted (one id a line, each with its reason).
audit: $(STAMP)
	$(VENV)/bin/pip-audit --skip-editable --progress-spinner off \
	  $$(grep -o '^[A-Za-z0-9][A-Za-z0-9-]*' .ci/audit-accepted | sed 's/^/--ignore-vuln /')

# Two processes (pytest-xdist), then the tests that restart a shared service, alone.
test: lint
	$(PY) -m pytest -q -p no:cacheprovider -n 2 -m "not serial"
	$(PY) -m pytest -q -p no:cacheprovider -m serial

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

bench: $(STAMP)
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) test-output .pytest_cache .mypy_cache .ruff_cache
