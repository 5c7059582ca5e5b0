# profile360: `make run` starts the API, `make test` runs the whole suite.
# Both install what they need into .venv on first use.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# An installed Python 3.13+: PATH first, then pyenv's versions folder.
define FIND_PYTHON
for c in python3.14 python3.13 python3; do \
  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; then \
    command -v $$c; exit 0; fi; done; \
root=$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv"); \
for c in $$(ls -d "$$root"/versions/3.1[3-9]*/bin/python3 2>/dev/null | sort -rV); do \
  if "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; then echo "$$c"; exit 0; fi; done; \
exit 1
endef

.PHONY: install run test lint bench assets clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@base=$$($(FIND_PYTHON)) || { echo "error: profile360 needs Python 3.13 or newer; none was found on PATH or under pyenv (install one, e.g. 'pyenv install 3.13')." >&2; exit 1; }; \
	echo "Using $$base"; \
	[ -x $(PY) ] || "$$base" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m server

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

# GraphiQL's vendored browser assets: re-download the pinned npm versions and verify them
# against server/static/graphiql/assets.json (ASSETS_ARGS=--check: offline; --update: record a bump).
assets: $(STAMP)
	$(PY) -m scripts.graphiql_assets $(ASSETS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
