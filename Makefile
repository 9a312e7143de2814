# Two entry points, each doing its own set-up (idempotent) on a fresh machine with Python 3.11:
#   make demo   build the sample Android app around the embedded model (build/)
#   make test   run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/its-mobile build --target android -o build
	@echo "open build/android in Android Studio, or read build/build-report.html"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build
