# The two commands: `make run` starts the platform, `make test` runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Installs come from the hashed lock files (`make lock` writes them from pyproject.toml): `make run` needs
# only the runtime set, the tests the development set (a superset).
RUN_STAMP := $(VENV)/.installed-run
PIP_LOCKED := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DEBUG ?= 1

.PHONY: install install-run run test test-sqlite test-postgres test-slow test-next lint lock bench clean

$(STAMP): requirements-dev.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_LOCKED) -r requirements-dev.lock
	touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_LOCKED) -r requirements.lock
	touch $(RUN_STAMP)

install: $(STAMP)

install-run: $(RUN_STAMP)

# Resolve pyproject.toml's ranges again into the lock files (newest versions they admit), with hashes.
# Commit both files; every install then gets exactly these versions.
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet \
		--output-file requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		--quiet --output-file requirements-dev.lock

run: install-run
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

# The suite (SQLite pass) against the newest Django that installs here, pre-releases included, in a venv
# of its own; not part of `make test`. Django 6 needs Python 3.12+: PYTHON_NEXT=python3.12 make test-next.
PYTHON_NEXT ?= python3
NEXT_VENV   ?= .venv-next
test-next:
	test -x $(NEXT_VENV)/bin/python || $(PYTHON_NEXT) -m venv $(NEXT_VENV)
	$(NEXT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements-dev.lock
	$(NEXT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --pre 'Django<7'
	$(NEXT_VENV)/bin/python -c 'import django; print("Django", django.get_version())'
	DEBUG=0 SECRET_KEY=test $(NEXT_VENV)/bin/python -m pytest -m "not postgres and not redis and not browser"

clean:
	rm -rf $(VENV) $(NEXT_VENV) db.sqlite3* test-db.sqlite3* test-output
