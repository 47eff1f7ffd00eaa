# regwatch: `make run` and `make test` are the whole quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= regwatch-data

.PHONY: run dashboard test test-es test-fast sysdeps bench samples lint clean native

## The install builds the native core (native/, Rust with the standard library only, so
## cargo needs no network) with setuptools-rust, see setup.py; cargo is found on PATH or
## in ~/.cargo/bin. Without it the install still succeeds and regwatch runs on its DuckDB
## path, which is slower (it says so once, at the first ingest; `regwatch check` tells
## which path is active).
$(BIN)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## native: rebuild the native core in place after a change to native/ (the editable
## install does not watch the Rust sources); offline, no build isolation.
CARGO ?= $(shell command -v cargo 2>/dev/null || ls $$HOME/.cargo/bin/cargo 2>/dev/null)
NATIVE := $(BIN)/.native
$(NATIVE): $(BIN)/.installed native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -c "from regwatch import native; print(native.status().describe())"
	touch $@
native: $(NATIVE)

## run: set up the virtualenv and run the service on the bundled sample_logs/ (config:
## regwatch.example.yaml): it ingests them, follows them, receives webhooks, serves
## metrics, schedules the report and starts the dashboard (service.dashboard: true; it
## prints "dashboard: http://127.0.0.1:8501" with the other URLs); Ctrl-C stops it.
## dashboard: only the dashboard, on the store make run fills
run: $(BIN)/.installed $(NATIVE)
	$(BIN)/regwatch --config regwatch.example.yaml run --db $(DB)

dashboard: $(BIN)/.installed $(NATIVE)
	$(BIN)/regwatch --config regwatch.example.yaml dashboard --db $(DB)

## sysdeps: Debian packages the integration tests use (docker-registry, skopeo, ...)
sysdeps:
	bash scripts/install-sysdeps.sh

## test: everything, including the real registry, skopeo and Elasticsearch
test: $(BIN)/.installed $(NATIVE) sysdeps
	@if [ -n "$(CARGO)" ]; then \
	  $(CARGO) test --quiet --release --offline --manifest-path native/Cargo.toml; \
	else echo "warning: cargo not found; the crate's own tests are not run" >&2; fi
	$(BIN)/python -m pytest -p no:cacheprovider

## test-es: only the Elasticsearch tests (real node, fetched with Maven and cached)
test-es: $(BIN)/.installed $(NATIVE)
	$(BIN)/python -m pytest -p no:cacheprovider -m es

## test-fast: unit tests only
test-fast: $(BIN)/.installed $(NATIVE)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not e2e and not es and not package"

## bench: throughput and memory benchmarks; results go to docs/benchmarks.md
bench: $(BIN)/.installed $(NATIVE)
	$(BIN)/python bench/bench_ingest.py --lines 5000000

## samples: regenerate sample_logs/distribution/ with the real registry and skopeo
samples: sysdeps
	$(PYTHON) scripts/make_distribution_samples.py

lint: $(BIN)/.installed
	$(BIN)/pip install --quiet ruff mypy
	$(BIN)/ruff check regwatch tests bench scripts
	$(BIN)/mypy regwatch

clean:
	rm -rf $(VENV) $(DB) .pytest_cache native/target build dist *.egg-info regwatch/_native*.so
