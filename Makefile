# Set-up is part of every target: a fresh Debian machine needs nothing done by hand.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# As root, environments run as an unprivileged user that must be able to execute the venv's
# interpreter: pyenv-style interpreters under /root are not reachable, Debian's /usr/bin/python3 is.
PYTHON ?= $(shell if [ "$$(id -u)" = 0 ] && [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else echo python3; fi)
SYSTEM_PACKAGES := postgresql redis-server nginx-light prometheus lz4
SUNDAY := examples/sunday/config/environment-matrix.yaml
PYTEST_ARGS ?= -n 2

.PHONY: setup system venv cluster demo demo-delivery test lint golden clean bench

setup: system venv

# Install only what is missing; as root directly, otherwise through sudo. As root each
# environment gets a system user of its own: useradd/userdel (Debian's passwd) are needed too.
system:
	@missing=""; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v lz4 >/dev/null 2>&1 || missing="$$missing lz4"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ "$$(id -u)" = 0 ]; then command -v useradd >/dev/null 2>&1 || [ -x /usr/sbin/useradd ] || missing="$$missing passwd"; fi; \
	if [ "$$(id -u)" = 0 ] && [ -x /usr/bin/python3 ]; then /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,cloud,server]'
	touch $@

# The real tools of the realtools tests (tests/realkube.py): etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler (built from Debian's kubernetes source, ~6 min the
# first time), terraform, helm and kubectl, into a cache outside the checkout
# (ENVPLANE_TOOLS_CACHE, default /var/cache/envplane-tools) that later runs reuse in seconds.
cluster: venv
	VENV=$(VENV) bash tools/cluster/all.sh

# The main job: a real development environment of the Sunday example on this machine.
demo: setup
	$(VENV)/bin/envplane -f $(SUNDAY) create development
	$(VENV)/bin/envplane -f $(SUNDAY) info development

# Releases through the pipeline (docs/delivery.md): development, staging, production (held for a
# second person's approval), and a canary of the bad release rolled back by itself.
demo-delivery: setup
	ENVPLANE=$(CURDIR)/$(VENV)/bin/envplane bash examples/sunday/scripts/delivery-demo.sh

test: setup cluster
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports
	@# Bytecode for envplane's own modules, as an installed envplane has: the tests run the CLI
	@# thousands of times, and with PYTHONDONTWRITEBYTECODE each run compiled them from source.
	$(PY) -m compileall -q src
	$(PY) -m pytest $(PYTEST_ARGS)

# Regenerate tests/golden/ after an intended rendering change; review `git diff tests/golden`.
golden: venv
	ENVPLANE_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_golden.py tests/test_cloud_golden.py tests/test_plan_cases.py
	ENVPLANE_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_parity.py -k "sunday_passes or shop_classifies"

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/bench_create.py
	$(PY) benchmarks/bench_delivery.py
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/bench_parity.py
	$(PY) benchmarks/bench_dashboard.py

clean:
	-for env in development staging production; do $(VENV)/bin/envplane -f $(SUNDAY) destroy $$env --force; done
	rm -rf $(VENV) examples/sunday/.envplane
