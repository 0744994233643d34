# Everything a newcomer needs: `make demo` and `make test` set themselves up from nothing.
PYTHON_BOOT := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup test lint typecheck leakcheck demo bench clean

setup: $(STAMP)

# Then the `sweep` command (package client/ only), editable in compat mode: that puts this
# folder on the venv's path, so the command finds chalicelib/ and athena/ from any directory.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "error: Python >= 3.12 is required; see scripts/find-python" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
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

demo: setup
	$(PY) -m scripts.demo

# Lithops (the end-to-end comparison) comes from bench/requirements.txt, installed only here,
# not from requirements-dev.txt.
bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .sweep-data .mypy_cache .pytest_cache .ruff_cache .hypothesis
