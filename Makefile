# regwatch: `make run` and `make test` are the whole quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= regwatch-data

.PHONY: run test test-es test-fast sysdeps bench samples lint clean native

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## native: the compiled hot path (Rust, standard library only; no crates are fetched).
## Without cargo the ingest falls back to the DuckDB fast path, which is slower.
NATIVE := regwatch/_native.so
CARGO  ?= $(shell command -v cargo 2>/dev/null || ls $$HOME/.cargo/bin/cargo 2>/dev/null)
$(NATIVE): native/Cargo.toml $(wildcard native/src/*.rs)
	@if [ -n "$(CARGO)" ]; then \
	  $(CARGO) build --quiet --release --offline --manifest-path native/Cargo.toml && \
	  cp native/target/release/libregwatch_native.so $@; \
	else echo "warning: cargo not found; regwatch runs without its native hot path (install Rust to build it)" >&2; fi
native: $(NATIVE)

## run: set up the virtualenv and run the main job on the bundled sample_logs/
run: $(BIN)/.installed $(NATIVE)
	$(BIN)/regwatch run --db $(DB) sample_logs

## sysdeps: Debian packages the integration tests use (docker-registry, skopeo, ...)
sysdeps:
	bash scripts/install-sysdeps.sh

## test: everything, including the real registry, skopeo and Elasticsearch
test: $(BIN)/.installed $(NATIVE) sysdeps
	$(CARGO) test --quiet --release --offline --manifest-path native/Cargo.toml
	$(BIN)/python -m pytest -p no:cacheprovider

## test-es: only the Elasticsearch tests (real node, fetched with Maven and cached)
test-es: $(BIN)/.installed $(NATIVE)
	$(BIN)/python -m pytest -p no:cacheprovider -m es

## test-fast: unit tests only
test-fast: $(BIN)/.installed $(NATIVE)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not e2e and not es"

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
	rm -rf $(VENV) $(DB) .pytest_cache native/target $(NATIVE)
