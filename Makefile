# Everything a newcomer needs: `make demo` and `make test` set themselves up from nothing.
PYTHON_BOOT := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: setup test lint typecheck leakcheck demo bench fuzz load api-fuzz clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON_BOOT)" || { echo "error: Python >= 3.12 is required; see scripts/find-python" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m deploy.ddl --check
	$(VENV)/bin/cfn-lint infra/analytics.yaml
	$(VENV)/bin/lint-imports --no-cache

# No credential or secret may be tracked (docs/security.md).
leakcheck: setup
	git ls-files -z | xargs -0 $(VENV)/bin/detect-secrets-hook

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck leakcheck
	$(VENV)/bin/pytest

# The reliability suite's heavy runs (docs/reliability.md); not part of `make test`.
fuzz: setup
	SWEEP_FUZZ_EXAMPLES=10000 $(VENV)/bin/pytest tests/integration/test_fuzz.py -n 2 --timeout 7200

load: setup
	$(PY) -m scripts.load

# schemathesis on a running local stage, against the OpenAPI document made from the one schema.
api-fuzz: setup
	$(PY) -m scripts.api_fuzz --max-examples 200 --phases examples,fuzzing

demo: setup
	$(PY) -m scripts.demo

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .sweep-data .mypy_cache .pytest_cache .ruff_cache .hypothesis
