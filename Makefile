# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create a project-local virtualenv (.venv, with uv when present, pip otherwise), install the
# package into it, and install bubblewrap (the local sandbox) when they can.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo test test-fast lint bench docs bubblewrap test-system-deps clean

setup: $(STAMP) bubblewrap

$(STAMP): pyproject.toml
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python >= 3.11 is needed as python3 (found $$(python3 --version 2>&1))."; exit 1; }
	@if command -v uv >/dev/null 2>&1; then \
	  uv venv -q --allow-existing -p python3 $(VENV) && uv pip install -q --compile-bytecode -p $(PY) -e '.[test]'; \
	else \
	  python3 -m venv $(VENV) || { echo "Cannot create a virtualenv: run  apt-get install python3-venv"; exit 1; }; \
	  $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[test]'; \
	fi
	@touch $@

# apt-install the Debian packages that provide commands (or shared libraries, named by their soname), when
# missing: $(call apt_install,COMMAND PACKAGE ...)
define apt_install
	@missing=""; set -- $(1); while [ $$# -gt 1 ]; do command -v $$1 >/dev/null 2>&1 || ldconfig -p 2>/dev/null | grep -qF "$$1 (" || [ -x "$$(ls -d /usr/lib/postgresql/*/bin/$$1 2>/dev/null | tail -1)" ] || missing="$$missing $$2"; shift 2; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing$$missing..."; \
	    log=$$(mktemp); \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } >$$log 2>&1 \
	      || { cat $$log; rm -f $$log; echo "apt-get could not install$$missing (its output is above)"; exit 1; }; \
	    rm -f $$log; \
	  else \
	    echo "Missing Debian packages:$$missing. Install them with:  sudo apt-get install$$missing"; $(2); \
	  fi; \
	fi
endef

# The local sandbox: bubblewrap, libseccomp (its syscall filter), and unshare/setpriv/mount (to drop root).
bubblewrap:
	$(call apt_install,bwrap bubblewrap libseccomp.so.2 libseccomp2 unshare util-linux setpriv util-linux mount mount,exit 1)

# The slow system tests need a PostgreSQL server (scale-out) and Chromium (the UI); without them
# they are skipped, unless ANALYST_REQUIRE_SYSTEM_TESTS=1 (CI) makes that a failure.
test-system-deps:
	$(call apt_install,initdb postgresql chromium chromium,true)

DEMO := configs/retail-sales.yaml
demo: setup
	@if [ -n "$$ANTHROPIC_API_KEY" ] || grep -qs '^ANTHROPIC_API_KEY=.' .env configs/.env; then \
	  $(VENV)/bin/analyst run $(DEMO); \
	else \
	  echo "No ANTHROPIC_API_KEY (environment or .env): replaying the example transcript"; \
	  echo "configs/retail-sales.transcript.json instead of asking Claude. Its code cells run again, for"; \
	  echo "real, in the local sandbox; the model's turns come from the file (scripted, not a live model)."; \
	  $(VENV)/bin/analyst run $(DEMO) --replay configs/retail-sales.transcript.json; \
	fi

# Three workers on two cores: the slow tests mostly wait (servers, workers, heartbeats), not compute.
test: setup test-system-deps
	$(PY) -m pytest -q -p no:cacheprovider -n 3

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# ruff and mypy, configured in pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The ~10 GB validation run takes ~10 minutes: BENCH_BIG_ROWS=0 make bench skips it.
bench: export BENCH_BIG_ROWS ?= 100000000
bench: setup test-system-deps
	$(PY) benchmarks/sandbox_startup.py
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/validate_large.py
	$(PY) benchmarks/sql_source.py
	$(PY) benchmarks/trend_chart.py
	$(PY) benchmarks/first_request.py
	$(PY) benchmarks/fleet.py

# docs/config.md and docs/cli.md are generated from the config schema and the CLI's help.
docs: $(STAMP)
	$(PY) docs/generate.py

clean:
	rm -rf $(VENV) .analyst
