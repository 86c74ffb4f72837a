# attnlab — the two commands a fresh Debian 12 machine needs:
#   make demo   installs what is missing, builds, and runs the quick QKᵀ-vs-QQᵀ comparison
#   make test   installs what is missing (with PyTorch for the optional parity test), builds, runs ctest
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps deps-test build test demo test-asan fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh

deps-test:
	@sh scripts/install-deps.sh --with-torch

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: deps-test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@cd $(BUILD) && ctest --output-on-failure

demo: build
	@$(BUILD)/attnlab compare --preset quick --out reports/quick

test-asan: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTNLAB_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ctest --output-on-failure

clean:
	rm -rf $(BUILD) build-asan
