# 青浦好办 back end. `make run` starts everything locally; `make test` runs the whole suite.
PYTHON ?= python3.11
# Bytecode is cached for every command here: without it, each test worker and each process the
# tests start (the runner, the embedded AWS) compiles the project and rewrites the tests again.
unexport PYTHONDONTWRITEBYTECODE
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv lock run test static-checks unit integration lint format bench synth verify-audit clean api-contract \
	browser console-vendor

# Locks generated from pyproject.toml by `make lock` (uv, hashes of every file). Both target
# Linux x86_64 with Python 3.11, the Lambda runtime: the Lambda packages are built from
# requirements.lock, the venv from requirements-dev.lock (the same pins plus the tools).
LOCK      := requirements.lock
DEV_LOCK  := requirements-dev.lock
# Named by the lock's content, so a checkout that changes the lock reinstalls whatever the
# file times say.
STAMP     := $(VENV)/.installed-$(shell sha256sum $(DEV_LOCK) 2>/dev/null | cut -c1-16)
LOCK_ARGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_17 \
	--custom-compile-command "make lock" --quiet

# uv (pinned and hashed in the dev lock, installed first by pip) installs the rest: a clean
# install takes seconds where pip takes minutes. pip does it all if uv cannot. Neither compiles
# every file at install: Python writes the bytecode of what is imported on first use.
$(STAMP): $(DEV_LOCK)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "需要 Python 3.11 ($(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	awk '/^uv==/ {p = 1; print; next} p && /^[[:space:]]/ {print; next} {p = 0}' $(DEV_LOCK) \
		> $(VENV)/uv-requirement.txt
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r $(VENV)/uv-requirement.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r $(DEV_LOCK) || \
		$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r $(DEV_LOCK)
	rm -f $(VENV)/.installed*
	touch $(STAMP)

venv: $(STAMP)

# Re-resolves after a change of pyproject.toml (unchanged pins are kept); then commit both.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra dev -c $(LOCK) $(LOCK_ARGS) -o $(DEV_LOCK)

run: $(STAMP)
	$(BIN)/python -m local.runner

# One worker per core; a test file runs on one worker (its module fixtures, such as the runner
# the local-runner tests share, start once), in the order tests/conftest.py gives: the longest
# files first, so that the workers finish together.
TEST_WORKERS ?= auto

# The static checks (with the npm install they need) run beside pytest, which leaves part of a
# core idle (at the start, and while the last files finish); their output follows pytest's.
# Both must pass.
test: $(STAMP) browser
	@checks_log=$$(mktemp); \
	$(MAKE) --no-print-directory static-checks >$$checks_log 2>&1 & checks=$$!; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder; status=$$?; \
	wait $$checks; checked=$$?; \
	echo "== 静态检查（ruff、mypy、import-linter、接口文档）"; cat $$checks_log; rm -f $$checks_log; \
	if [ $$checked -ne 0 ]; then echo "静态检查未通过"; exit $$checked; fi; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$status

static-checks: $(STAMP) api-contract
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

# The OpenAPI document, as the app serves it, linted (Redocly, recommended rules: no errors);
# TypeScript types generated from it (openapi-typescript) and compiled with the mini-program
# example in docs/examples (tsc --noEmit). The npm tools are pinned in tools/api-client.
API_CLIENT := tools/api-client
NODE_STAMP := $(API_CLIENT)/node_modules/.installed

$(NODE_STAMP): $(API_CLIENT)/package-lock.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "需要 Node.js 20.19 或更高版本（node 和 npm）才能检查接口文档并生成 TypeScript 类型"; exit 1; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' || { \
		echo "Node.js 版本过低（$$(node --version)），需要 20.19 或更高版本"; exit 1; }
	cd $(API_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

api-contract: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m local.export_openapi $(API_CLIENT)/openapi.json
	cd $(API_CLIENT) && npm run --silent lint
	cd $(API_CLIENT) && npm run --silent types
	cd $(API_CLIENT) && npm run --silent typecheck

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

format: $(STAMP)
	$(BIN)/python -m ruff format .
	$(BIN)/python -m ruff check --fix .

bench: $(STAMP)
	@set -e; for script in bench/*.py; do \
		case $$script in */_*) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script; \
	done

verify-audit: $(STAMP)
	$(BIN)/python -m local.verify_audit

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache

# CloudFormation templates of the prod stacks in infra/cdk.out; cdk-nag runs during the synth
# and fails it on any unacknowledged finding. Needs `node` on PATH (aws-cdk-lib runs on it).
synth: $(STAMP)
	@command -v node >/dev/null 2>&1 || { echo "需要 Node.js (node) 才能合成 CDK 模板"; exit 1; }
	rm -rf infra/cdk.out/asset.*
	$(BIN)/python infra/app.py

# The console's browser test drives Debian's Chromium (Playwright launches it, downloads no
# browser of its own), with a CJK font so its screenshots are legible.
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . || { \
		command -v apt-get >/dev/null 2>&1 || { echo "需要 Chromium 与中文字体（Debian 包 chromium、fonts-wqy-zenhei）才能运行控制台浏览器测试"; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei; }

# The console's chart library, a pinned npm package (tools/console), copied as the one minified
# file the console serves; the copy is committed so the app ships it without a build step.
CONSOLE_TOOLS := tools/console
console-vendor:
	cd $(CONSOLE_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	cp $(CONSOLE_TOOLS)/node_modules/chart.js/dist/chart.umd.min.js chalicelib/console/chart.umd.min.js
