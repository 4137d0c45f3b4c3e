# Switchboard — every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
LOCKS := requirements.lock requirements-demo.lock requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) | cksum | cut -d' ' -f1)
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck pytest bench loadtest seed browser clean

# requirements-dev.lock includes the demo extra's lock (embedded PostgreSQL) and the runtime's.
$(STAMP): $(LOCKS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

## The service: demo mode (built-in AMI simulator, embedded PostgreSQL) unless configured.
run: $(STAMP)
	$(PY) -m app

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy

# Branch coverage of app, cti and routing ([tool.coverage] in pyproject.toml), reported at the end.
pytest: $(STAMP) browser
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

## Lint, type check and the whole test suite (.ci/run calls exactly this).
test: lint typecheck pytest

seed: $(STAMP)
	$(PY) -m app.seed

bench: $(STAMP)
	$(PY) -m bench

loadtest: $(STAMP)
	$(PY) -m bench.loadtest $(ARGS)

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache

## The opt-in real-Asterisk suite (tests/asterisk, docs/asterisk.md): an installed Asterisk 22,
## e.g. `make test-asterisk ASTERISK_PREFIX=/opt/asterisk22`, or a prepared staging PBX
## (ASTERISK_AMI=host:port, see docs/asterisk.md).  Not part of `make test`.
.PHONY: test-asterisk
test-asterisk:
	@if [ -z "$(ASTERISK_PREFIX)" ] && [ -z "$(ASTERISK_AMI)" ]; then \
	  echo "make test-asterisk: set ASTERISK_PREFIX to an installed Asterisk 22 (how to build one: docs/asterisk.md)" >&2; \
	  exit 2; \
	fi
	@test -n "$(ASTERISK_AMI)" || test -x "$(ASTERISK_PREFIX)/sbin/asterisk" || { echo "make test-asterisk: no $(ASTERISK_PREFIX)/sbin/asterisk" >&2; exit 2; }
	@$(MAKE) --no-print-directory $(STAMP)
	ASTERISK_PREFIX="$(ASTERISK_PREFIX)" ASTERISK_AMI="$(ASTERISK_AMI)" $(BIN)/pytest tests/asterisk $(ARGS)
