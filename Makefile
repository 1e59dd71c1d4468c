# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv smsc demo test lint lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The local SMSC the SMPP adapter's tests and bench/smpp.py talk to.
smsc:
	npm ci --prefix tests/peers/smsc --no-audit --no-fund

demo: $(STAMP)
	$(BIN)/tmc demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	./scripts/with-temp-home $(BIN)/mypy src tests
	$(BIN)/bandit --quiet -c pyproject.toml -r src
	./scripts/check-deploy

# Pin what CI installs to what is installed here now.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check \
		| grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
