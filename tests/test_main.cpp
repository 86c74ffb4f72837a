// tests/test_main.cpp — Catch2's main, compiled once; uses the same BLAS kernel and OpenMP settings as attnlab.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/threads.h"

int main(int argc, char** argv) {
  attn::ensure_fast_runtime(argv);
  return Catch::Session().run(argc, argv);
}
