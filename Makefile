# The two commands: `make run` starts the platform, `make test` runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DEBUG ?= 1

.PHONY: install run test test-sqlite test-postgres test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m config.dotenv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py loaddemo
	$(PY) manage.py runplatform --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite runs twice: on the embedded SQLite default, then on a throwaway PostgreSQL and Redis
# that tests/with_servers.py starts and removes (tests marked postgres/redis run in that pass only;
# browser tests drive headless Chromium in the SQLite pass only).
test: lint test-sqlite test-postgres test-slow

test-sqlite: install
	DEBUG=0 SECRET_KEY=test $(PY) -m pytest -m "not postgres and not redis"

test-postgres: install
	DEBUG=0 SECRET_KEY=test $(PY) -m tests.with_servers --postgres --redis -- $(PY) -m pytest -m "not browser and not slow"

# Fault injection and other tests taking more than a few seconds each (real clusters, restarts,
# kills), on PostgreSQL and Redis; `make test` runs them last.
test-slow: install
	DEBUG=0 SECRET_KEY=test $(PY) -m tests.with_servers --postgres --redis -- $(PY) -m pytest -m "slow and not browser" --durations=10

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* test-output
