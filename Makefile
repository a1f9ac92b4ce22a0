# Every target sets up what it needs: uv (from PyPI when missing) and the locked .venv.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --locked --no-sync
STACK ?= sg
VENV_STAMP := .venv/.synced

LAYER_DIR := build/lambda-layer
LAYER_STAMP := build/.lambda-layer.stamp

.PHONY: help setup system-deps test quick pytest nodetest lint typecheck fmt plan lambda-layer

help:
	@echo "make test            lint, type check and every test (what CI runs)"
	@echo "make quick           lint and the tests but the moto-server and real-sshd suites"
	@echo "make plan STACK=sg   the stack's resources, offline (sg, eu)"
	@echo "make lambda-layer    the failover Lambda's layer, needed by pulumi up on sg"
	@echo "make lint | typecheck | fmt | pytest | nodetest"

# --compile-bytecode: these machines set PYTHONDONTWRITEBYTECODE=1, so without it every
# process recompiles the pulumi_aws modules it imports (ops plan sg: ~13 s instead of ~5 s;
# compiling once costs ~25 s). benchmarks/plan_speed.py --bytecode measures both.
$(VENV_STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --locked --compile-bytecode
	@touch $@

setup: $(VENV_STAMP)

# Debian packages the tests run for real, installed when their command is missing (as
# root, or through sudo), saying what and why:
#   sshd (openssh-server): `sshd -t` on the VPS hardening, a real SSH peer for the tests;
#   njs: the CloudFront Function on the engine family of cloudfront-js-2.0;
#   sudo, wireguard-tools: the remote rehearsal's hosts run the real sudo (the drift
#   user's limited sudoers, visudo) and the real `wg genkey`/`wg pubkey`;
#   ufw, iptables: the firewall step against the real ufw and iptables, in a network
#   namespace of its own; systemd-analyze, apt-config: the unit and apt drop-ins;
#   restic: the fleet backups, run for real against moto's S3 server;
#   promtool (prometheus), amtool (prometheus-alertmanager): the fleet's alert rules
#   (`promtool check rules` and `promtool test rules`), metrics and Alertmanager config.
SYSTEM_DEPS := sshd:openssh-server:/usr/sbin/sshd njs:njs:/usr/bin/njs \
  sudo:sudo:/usr/bin/sudo wg:wireguard-tools:/usr/bin/wg \
  iptables-restore:iptables:/usr/sbin/iptables-restore ufw:ufw:/usr/sbin/ufw \
  systemd-analyze:systemd:/usr/bin/systemd-analyze apt-config:apt:/usr/bin/apt-config \
  restic:restic:/usr/bin/restic promtool:prometheus:/usr/bin/promtool \
  amtool:prometheus-alertmanager:/usr/bin/amtool

system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  cmd=$${dep%%:*}; rest=$${dep#*:}; pkg=$${rest%%:*}; path=$${rest#*:}; \
	  command -v $$cmd >/dev/null || [ -x $$path ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null || { echo "install these Debian packages for the tests:$$missing" >&2; exit 1; }; \
	  echo "system-deps: installing$$missing from Debian's packages (the tests run them for real; see the Makefile)"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends $$missing; \
	fi

test: lint typecheck pytest nodetest

# pytest-xdist workers: twice the cores. The suite waits as well as it computes (health
# checks retried, SSH round trips, sshd and restic starting), and a second worker per core
# runs in those waits; more than two adds more start-up CPU than it overlaps.
# benchmarks/suite_time.py measures it (2 cores: 2 workers 233 s, 4 workers 215 s,
# 6 workers 233 s).
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

# The edit-run loop: every test but the two suites that run real servers (the drift
# scans against moto's server, the fleet rehearsals over real sshd). `make test` and
# CI run those too.
quick: lint $(VENV_STAMP) system-deps
	$(RUN) pytest -q -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/drift --ignore=tests/rehearsal
	node --test tests/edge/

pytest: $(VENV_STAMP) system-deps
	$(RUN) pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# The CloudFront Function on Node's own test runner and on njs (no npm packages needed).
nodetest: system-deps
	node --test tests/edge/

lint: $(VENV_STAMP)
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: $(VENV_STAMP)
	$(RUN) pyright

fmt: $(VENV_STAMP)
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

plan: $(VENV_STAMP)
	$(RUN) python -m ops plan $(STACK)

# The failover Lambda's layer (awscrt, for SigV4A): `pulumi up` on sg needs it.
lambda-layer: $(LAYER_STAMP)

$(LAYER_STAMP): components/failover_lambda/requirements.txt $(VENV_STAMP)
	$(RUN) python -m ops build-layer --dir $(LAYER_DIR)
	@touch $@
