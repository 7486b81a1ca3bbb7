# Two commands for a newcomer on a fresh Debian machine:
#   make demo   install everything, start PostGIS, load the demo sub-district, open the dashboard
#   make test   the same setup (browser included) and the whole suite against a separate test database
SHELL := /bin/bash
PORT ?= 8501
VENV := .venv/bin

.PHONY: demo test setup bench clean-db help citus test-citus
help:
	@echo "make demo | make test | make bench"

setup:
	scripts/bootstrap.sh system
	scripts/bootstrap.sh python
	scripts/bootstrap.sh web
	scripts/bootstrap.sh db

demo: setup
	$(VENV)/wangge demo load
	$(VENV)/wangge demo accounts
	$(VENV)/wangge coverage cameras --json > /dev/null  # the coverage screen's first look shows figures, not an empty page
	$(VENV)/wangge coverage services --json > /dev/null
	$(VENV)/wangge compliance --json > /dev/null
	@echo "演示账号密码 / demo password: $$(grep '^WANGGE_DEMO_PASSWORD=' .env | cut -d= -f2)  →  http://localhost:$(PORT)/signin"
	$(VENV)/wangge status
	$(VENV)/streamlit run app.py --server.port $(PORT) --server.headless true

test:
	BROWSER=1 scripts/bootstrap.sh system
	scripts/bootstrap.sh python
	scripts/bootstrap.sh web
	WANGGE_DB_NAME=wangge_test scripts/bootstrap.sh db
	WANGGE_DB_NAME=wangge_test $(VENV)/python -m pytest $(PYTEST_ARGS)

bench: setup
	WANGGE_DB_NAME=wangge_bench scripts/bootstrap.sh db
	WANGGE_DB_NAME=wangge_bench $(VENV)/python -m bench.run_all


# Citus (issue 18): build Citus from ../shared/vendor if missing, one coordinator (5441) and two
# workers (5442, 5443) beside the main cluster, the schema distributed (scripts/citus.sh)
citus: setup
	scripts/citus.sh

test-citus: setup
	WANGGE_DB_NAME=wangge_test scripts/bootstrap.sh db
	WANGGE_CITUS_DB=wangge_citus_test scripts/citus.sh
	WANGGE_CITUS_URL=$$(WANGGE_CITUS_DB=wangge_citus_test scripts/citus.sh url) $(VENV)/python -m pytest -m citus tests/test_citus.py $(PYTEST_ARGS)


# Many users (issue 18): several app processes behind HAProxy (sticky sessions) and PgBouncer in
# transaction mode (deploy/serve-multi.sh; README "Many users at once"). WANGGE_APPS=2 by default.
.PHONY: serve-multi stop-multi
serve-multi: setup
	MULTI=1 scripts/bootstrap.sh system
	WANGGE_MULTI_PORT=$(PORT) deploy/serve-multi.sh start
	@echo "stop with: make stop-multi"

stop-multi:
	deploy/serve-multi.sh stop
