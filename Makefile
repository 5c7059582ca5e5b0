# profile360: `make run` starts the API, `make test` runs the whole suite.
# Both install what they need into .venv on first use, from the lock file (make lock).

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

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

.PHONY: install run test lint bench assets lock clean

install: $(STAMP)

# One line per step; the installers' own output only when something goes wrong.
PIP := $(PY) -m pip --disable-pip-version-check --no-input
UV := $(VENV)/bin/uv
UV_LOCK := requirements-uv.lock

$(UV): $(UV_LOCK)
	@base=$$($(FIND_PYTHON)) || { echo "error: profile360 needs Python 3.13 or newer; none was found on PATH or under pyenv (install one, e.g. 'pyenv install 3.13')." >&2; exit 1; }; \
	if [ -x $(PY) ]; then echo "[1/4] Using $(VENV) ($$($(PY) -V))"; \
	else echo "[1/4] Creating $(VENV) with $$base"; "$$base" -m venv $(VENV) || exit 1; fi
	@echo "[2/4] Installing the installer, uv ($(UV_LOCK), hash-checked)"
	@$(PIP) install --quiet --require-hashes --no-deps -r $(UV_LOCK)
	@touch $(UV)

$(STAMP): pyproject.toml $(LOCK) $(UV)
	@echo "[3/4] Installing the dependencies in $(LOCK) (exact versions, hash-checked)"
	@$(UV) pip install --quiet --python $(PY) --require-hashes --no-deps -r $(LOCK)
	@echo "[4/4] Installing profile360 itself (editable)"
	@$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	@$(PY) scripts/check_installed.py || { echo "error: $(LOCK) lacks what pyproject.toml asks for (above): run 'make lock'" >&2; exit 1; }
	@touch $(STAMP)
	@echo "Installed into $(VENV)"

# After changing dependencies in pyproject.toml: regenerate the locks (and commit them).
# Versions already locked are kept; 'make lock LOCK_ARGS=--upgrade' moves all to the newest.
lock: $(UV)
	$(UV) pip compile --quiet --universal --python-version 3.13 --generate-hashes --extra dev \
	  --custom-compile-command "make lock" $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml
	$(UV) pip compile --quiet --universal --python-version 3.13 --generate-hashes \
	  --custom-compile-command "make lock" $(LOCK_ARGS) --output-file $(UV_LOCK) requirements-uv.in
	@echo "Wrote $(LOCK) and $(UV_LOCK); 'make install' installs them"

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
	$(PY) -m bench.imports

# GraphiQL's vendored browser assets: re-download the pinned npm versions and verify them
# against server/static/graphiql/assets.json (ASSETS_ARGS=--check: offline; --update: record a bump).
assets: $(STAMP)
	$(PY) -m scripts.graphiql_assets $(ASSETS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
