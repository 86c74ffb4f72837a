# attnlab — the two commands a fresh Debian 12 machine needs:
#   make demo   installs what is missing, builds, and runs the quick QKᵀ-vs-QQᵀ comparison
#   make test   installs what is missing (with PyTorch for the optional parity test), builds, runs ctest
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps deps-test deps-debug build debug test test-alt demo test-asan test-asan-quick fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh

deps-test:
	@sh scripts/install-deps.sh --with-torch

deps-debug:
	@sh scripts/install-deps.sh --with-gdb

# The attnlab command alone (make test builds the test programs too).
build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target attnlab
	@echo "built $(BUILD)/attnlab"

# For stepping through backprop: -O0 -g everywhere, bounds-checked tensor access (Debug), the gdb
# printers beside the binary: gdb -iex "add-auto-load-safe-path $PWD/build-debug" --args build-debug/attnlab ...
debug: deps-debug
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-debug -j$(JOBS) --target attnlab
	@# every op's backward, reached through gradcheck, shows all its arguments and locals in gdb
	@gdb -batch -nx -x tools/gdb/check_locals.py --args build-debug/attnlab gradcheck > build-debug/check-locals.log 2>&1; \
	  s=$$?; tail -n 1 build-debug/check-locals.log; exit $$s

test: deps-test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@cmake --build $(BUILD) -j$(JOBS) --target benches
	@# ctest's status is kept past the summary: N passed, N failed, N skipped (and why each skip)
	@cd $(BUILD) && { ctest --output-on-failure; echo $$? > ctest.status; } | tee ctest.log; \
	  sh $(CURDIR)/scripts/test-summary.sh $(abspath $(BUILD)); exit $$(cat ctest.status)

# The numerical suites again, on kernels that stand in for the other kind of CPU: attnlab's own
# loops without their AVX-512 copy (ATTNLAB_VECTOR_ISA=avx2, what an AMD Zen or Intel Haswell
# runs) and OpenBLAS's Sandybridge sgemm (Zen and Haswell share theirs with each other, so this
# one gives other bits on either). It first checks that the bits do differ from `make test`'s.
# CI runs it after `make test` (docs/reliability.md).
ALT_BLAS ?= Sandybridge
ALT_SUITES = test_core test_autograd test_nn test_models test_train test_lm
test-alt: deps-test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target test_core
	@cmake -S . -B build-alt -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLAB_VECTOR_ISA=avx2 -DATTNLAB_DEFAULT_BUILD=$(abspath $(BUILD)) >/dev/null
	@cmake --build build-alt -j$(JOBS) --target $(ALT_SUITES)
	@cd build-alt && OPENBLAS_CORETYPE=$(ALT_BLAS) ctest --output-on-failure -R "^(test_core_alt_kernels_differ|test_core|test_autograd|test_nn|test_models|test_models_slow|test_train|test_lm|test_lm_slow)$$"

# The demo needs only the attnlab binary (not the test executables): a fresh clone then spends
# its minutes on the comparison.
demo: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target attnlab
	@$(BUILD)/attnlab compare --preset quick --out reports/quick

test-asan: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLAB_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ctest --output-on-failure

# CI's sanitizer pass: the unit suites (tensor and kernels, autograd and gradcheck, layers,
# readers for .mo/safetensors/corpora, tokenizer, metrics) under ASan + UBSan. They link only
# the libraries, so this builds without the app; `make test-asan` runs every suite.
ASAN_QUICK = test_core test_autograd test_nn test_data test_metrics
test-asan-quick: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLAB_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS) --target $(ASAN_QUICK)
	@cd build-asan && ctest --output-on-failure -R "^(test_core|test_autograd|test_nn|test_data|test_metrics)$$"

FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v clang++ >/dev/null || apt-get install -y -qq clang libclang-rt-14-dev
	@cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLAB_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_mo fuzz_safetensors fuzz_corpus fuzz_config
	@for t in mo safetensors corpus config; do \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 build-fuzz/corpus-$$t fuzz/seeds/$$t 2>&1 | grep -E "^Done|ERROR|SUMMARY|crash-" ; \
	done

clean:
	rm -rf $(BUILD) build-alt build-asan build-debug
