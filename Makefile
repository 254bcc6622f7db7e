# Two commands do all set-up on a fresh machine:
#   make run   - create .venv if missing, install, check the system libraries the window needs on Linux
#                (installed when run as root with apt-get, else the exact command is printed and make stops),
#                launch the workbench (embedded SQLite store)
#   make test  - the same set-up, then ruff, the import-linter contract and the whole test suite
# TORCH_SPEC picks the torch build (default: the CPU-friendly pinned release; CI uses the local wheel).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QT_SYSTEM_LIBS := packaging/linux/qt-system-libs.sh

.PHONY: run test install qt-libs lint demo benchmarks package clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,dev,postgres]"
	touch $(STAMP)

install: $(STAMP)

# Qt's X11 window needs system libraries pip cannot install (see the README's set-up section).
qt-libs:
	bash $(QT_SYSTEM_LIBS) ensure

run: $(STAMP) qt-libs
	bash $(QT_SYSTEM_LIBS) display
	$(BIN)/python -m app

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/embsr demo $(DEMO_ARGS)

package: $(STAMP)
	bash packaging/build.sh

clean:
	rm -rf $(VENV) build dist .pytest_cache
