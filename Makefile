# Two entry points for a fresh machine (Python 3.11 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit system-deps bench-deps install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# pysmi (MIB compiler) makes pysnmp's first GET ~20x slower; we use numeric OIDs only.
	@$(BIN)/python -m pip uninstall --quiet --yes pysmi 2>/dev/null || true
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests talk to for real: Net-SNMP's snmpd (the SNMP agent we did not write), PostgreSQL
# (the central store), Prometheus (scrapes /metrics), nginx (a catalogue server we did not write) and
# Chromium with its driver (the dashboard in a browser). Each is installed only when its binary is missing.
SYSTEM_DEPS := /usr/sbin/snmpd:snmpd /usr/lib/postgresql:postgresql /usr/bin/prometheus:prometheus \
	/usr/sbin/nginx:nginx-light /usr/bin/chromium:chromium /usr/bin/chromedriver:chromium-driver
# The exporters a Prometheus shop would pick instead, measured side by side in benchmarks/exporters.py.
BENCH_DEPS := /usr/bin/prometheus-blackbox-exporter:prometheus-blackbox-exporter \
	/usr/bin/prometheus-snmp-exporter:prometheus-snmp-exporter

define apt_install_missing
	@missing=""; for pair in $(1); do path=$${pair%%:*}; pkg=$${pair##*:}; \
		[ -e "$$path" ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi
endef

system-deps:
	$(call apt_install_missing,$(SYSTEM_DEPS))

bench-deps:
	$(call apt_install_missing,$(BENCH_DEPS))

demo: $(STAMP)
	$(BIN)/bibnet-ops demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy bibnet_ops

unit: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP) system-deps bench-deps
	$(BIN)/python benchmarks/poll.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
