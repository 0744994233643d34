# Everything a newcomer needs: `make demo` and `make test` set themselves up from nothing.
PYTHON_BOOT := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: bench-scale setup test unit integration e2e deploy-tests generate lint typecheck leakcheck demo bench clean package layer slim deploy smoke rehearse fuzz load api-fuzz

setup: $(STAMP)

# Then the `sweep` command (package sweeps/ only), editable in compat mode: that puts this
# folder on the venv's path, so the command finds chalicelib/ and athena/ from any directory.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "error: Python >= 3.12 is required; see scripts/find-python" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	@rm -f $(VENV)/.installed-* && touch $@

# Every committed file generated from a source of truth (DDL, infra templates with each
# simulation's named queries, per-stage policy files, the settings table in
# docs/configuration.md; deploy/generate.py lists them); `make lint` fails while any is stale.
generate: setup
	$(PY) -m deploy.generate --write

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m deploy.generate --check
	$(VENV)/bin/cfn-lint infra/*.yaml
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/vulture

# No credential or secret may be tracked (docs/security.md): any finding not in the committed
# baseline fails, in tracked and new files alike.
leakcheck: setup
	git ls-files -z --cached --others --exclude-standard -- ':!.secrets.baseline' \
		| xargs -0 $(VENV)/bin/detect-secrets-hook --baseline .secrets.baseline

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck leakcheck
	$(VENV)/bin/pytest

# One tier at a time: no I/O beyond temp files / moto and chalice.test / real chalice local /
# the deploy tier. `make test` runs all four.
unit: setup
	$(VENV)/bin/pytest tests/unit

integration: setup
	$(VENV)/bin/pytest tests/integration

e2e: setup
	$(VENV)/bin/pytest tests/e2e

# The deploy tier (the cookbook's tests/infrastructure): generators, policies, the gateway model,
# both packaged artifacts and the artifact run. Offline; `make package` needs PyPI.
deploy-tests: setup
	$(VENV)/bin/pytest tests/deploy

# Path A: `chalice package` with the generated merge template into build/$(STAGE)/, failing on
# a dependency chalice could not install and on any cfn-lint finding (docs/runbook.md).
STAGE ?= dev
package: setup
	$(PY) -m deploy.package --stage $(STAGE)

# Path B's pieces: the trimmed pyarrow+numpy layer (build/layer.zip) and the function zip
# without them (build/slim-$(STAGE)/package/deployment.zip); both print their sizes.
layer: setup
	$(PY) -m deploy.layer

slim: setup
	$(PY) -m deploy.slim --stage $(STAGE)

# Path B end to end against the account in your shell: layer, data stack, stage config from
# its outputs, chalice deploy, post-deploy step. ARTIFACTS_BUCKET: a bucket you own.
deploy: setup
	$(PY) -m deploy.path_b --stage $(STAGE)

# Right after any deploy: the checklist of what only the deployed stage can answer
# (docs/runbook.md); credentials from the usual chain, names from the stage's data stack.
smoke: setup
	$(PY) -m deploy.smoke --stage $(STAGE)

# Offline: path B deployed to an in-process moto server (scripts/moto_gaps.py lists the
# workarounds), then the deployed worker code + layer run a sweep in a clean python3.12.
rehearse: setup
	$(PY) -m scripts.rehearse

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

# Lithops (the end-to-end comparison) comes from bench/requirements.txt, installed only here,
# not from requirements-dev.txt.
bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(PY) -m bench.run_all

# Just issue 16's rows (the scale table, the worker's memory per shard size); the other rows of
# docs/benchmarks.md are kept as they are.
bench-scale: setup
	$(PY) -m bench.run_all --only scale --only worker_memory

clean:
	rm -rf $(VENV) .sweep-data .mypy_cache .pytest_cache .ruff_cache .hypothesis
