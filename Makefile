# Everyday commands. `make run` and `make test` are the README's two commands; `make ci` is what
# CI runs (.ci/run and the GitHub workflow call these same targets).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: venv deps ops-deps run test test-fast lint fmt typecheck check ops-check coverage-report ci lock bench clean translations

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The virtualenv holds exactly the hashed lock (runtime + dev tools); a stamp makes a second run
# a no-op until the lock changes.
$(VENV)/.installed: requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

venv: $(VENV)/.installed

# Regenerate the hashed locks from the direct requirements (after editing requirements*.txt).
lock: venv
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header \
		--output-file requirements.lock requirements.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header \
		--output-file requirements-dev.lock requirements-dev.txt

# What the tests start besides Python: Chromium + CJK fonts, Prometheus, Alertmanager, MariaDB,
# the delivery checkers, Node.js and the ZPL renderer. Installed only when missing.
deps: venv
	@bash .ci/deps

ops-deps:
	@bash .ci/deps ops checkers

# Set up everything on SQLite (instance/inventory.db) with demo data and users, then serve.
run: venv
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --items 2000 --demo-users
	@echo
	@echo "  Inventory is starting at http://127.0.0.1:5000/  (sign in: admin / demo-pass-123)"
	@echo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The whole suite on SQLite and on a real MariaDB, with line and branch coverage of app/ and the
# gate (lines >= 80 %, branches >= 70 %); the report is the last thing printed. With it, the stock
# core's tests again on MariaDB with stock-outs combined (issue 19: the setting is off by default,
# and both paths stay tested).
STOCK_CORE_TESTS = tests/integration/test_stock_service.py tests/integration/test_stock_concurrency.py \
	tests/integration/test_lots_and_serials.py tests/integration/test_quantity_range.py \
	tests/integration/test_item_totals.py tests/integration/test_reservations.py \
	tests/integration/test_reservation_concurrency.py tests/integration/test_stock_combining.py \
	tests/integration/api/test_stock_api.py tests/integration/api/test_http_concurrency.py \
	tests/integration/web/test_stock_forms.py tests/integration/floor/test_scan.py

# Tests that drive other processes (Chromium, the local cluster, Prometheus, gunicorn): run beside
# the rest, in a second pytest process, by .ci/test-halves (which says why).
SERVED_TESTS = tests/browser tests/cluster tests/e2e tests/contract tests/ops \
	tests/integration/test_graceful_shutdown.py tests/integration/test_tracing.py tests/integration/test_preload.py

test: deps
	$(BIN)/coverage erase
	BIN=$(BIN) SERVED_TESTS="$(SERVED_TESTS)" STOCK_CORE_TESTS="$(STOCK_CORE_TESTS)" bash .ci/test-halves
	$(BIN)/coverage combine --quiet
	@$(MAKE) --no-print-directory coverage-report

coverage-report: venv
	$(BIN)/coverage xml --quiet
	$(BIN)/coverage json --quiet
	$(BIN)/coverage report --skip-covered --sort=cover
	$(BIN)/python .ci/coverage-gate coverage.json

# SQLite only, for a machine without MariaDB (CI never uses this).
test-fast: venv
	$(BIN)/python -m pytest -m "not mysql"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Page text: re-extract the messages, merge them into each catalogue (then translate what is new
# in translations/zh_Hans_CN), and compile. The compiled .mo files are committed; a test checks
# that they match the .po files.
translations: venv
	$(BIN)/pybabel extract -F babel.cfg -k _l --ignore-dirs ".*" -o translations/messages.pot --no-location --sort-output --omit-header .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --width 120 --ignore-obsolete -N
	$(BIN)/pybabel compile -d translations

# Levels in pyproject.toml: strict on app/services and app/models, lighter on the other layers.
typecheck: venv
	$(BIN)/mypy

check: lint typecheck
	$(BIN)/python -m pytest tests/unit -q

# Prometheus config, rules and their unit tests, Alertmanager routes, and the offline delivery
# checks (Kustomize/Helm renders, checkov, hadolint, actionlint, yamllint, trivy config, bandit,
# xenon). The pytest side of ops (tests/ops) runs with the whole suite. The Prometheus config is
# checked --syntax-only: it names the mounted token file, which exists only in the cluster.
ops-check: ops-deps
	promtool check config --syntax-only ops/prometheus/prometheus.yml
	promtool check rules ops/prometheus/rules/*.yml
	promtool test rules ops/prometheus/tests/*_test.yml
	amtool check-config ops/alertmanager/alertmanager.yml
	bash .ci/delivery-checks

# Everything a release needs, in the order that fails fastest; ends with the coverage report.
ci: lint typecheck ops-check test

bench: deps
	$(BIN)/python tests/benchmarks/stock_out.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache .coverage coverage.xml coverage.json
