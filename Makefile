# Everyday commands. `make run` and `make test` are the README's two commands.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: venv run test test-fast lint fmt typecheck check ops-check bench clean translations

$(BIN)/python:
	$(PY) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt

# Set up everything on SQLite (instance/inventory.db) with demo data and users, then serve.
run: venv
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --items 2000 --demo-users
	@echo
	@echo "  Inventory is starting at http://127.0.0.1:5000/  (sign in: admin / demo-pass-123)"
	@echo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The whole suite on SQLite and on a real MariaDB (started, installed if need be, by .ci/services).
test: venv
	bash .ci/services
	$(BIN)/python -m pytest

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
	$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot --no-location --sort-output --omit-header .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --width 120 --ignore-obsolete -N
	$(BIN)/pybabel compile -d translations

typecheck: venv
	$(BIN)/mypy app/services app/models

check: lint typecheck
	$(BIN)/python -m pytest tests/unit -q

# Prometheus rules and their unit tests, Alertmanager routes, the delivery files, and the ops tests.
ops-check: venv
	bash .ci/install-ops-tools
	promtool check rules ops/prometheus/rules/*.yml
	promtool test rules ops/prometheus/tests/*_test.yml
	amtool check-config ops/alertmanager/alertmanager.yml
	bash .ci/delivery-checks
	$(BIN)/python -m pytest tests/ops tests/e2e -q

bench: venv
	bash .ci/services
	$(BIN)/python tests/benchmarks/stock_out.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache
