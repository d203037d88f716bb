# Two entry points for a fresh machine (Python 3.11 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit system-deps install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# pysmi (MIB compiler) makes pysnmp's first GET ~20x slower; we use numeric OIDs only.
	@$(BIN)/python -m pip uninstall --quiet --yes pysmi 2>/dev/null || true
	touch $(STAMP)

install: $(STAMP)

# Net-SNMP's snmpd is the SNMP agent "we did not write" that the tests poll.
system-deps:
	@if [ ! -x /usr/sbin/snmpd ]; then \
		echo "installing Debian package snmpd (needed by the SNMP tests)"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends snmpd >/dev/null; \
	fi

demo: $(STAMP)
	$(BIN)/bibnet-ops demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy bibnet_ops

unit: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/poll.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
