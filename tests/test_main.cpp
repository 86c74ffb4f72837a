// tests/test_main.cpp — Catch2's main, compiled once; uses the same BLAS kernel and OpenMP settings as attnlab.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include "tests/skip.h"

int main(int argc, char** argv) {
  attn::init_runtime(argv);
  // Catch returns the number of failed assertions: exactly kSkipExitCode of them must not read as a skip.
  const int failed = Catch::Session().run(argc, argv);
  return failed == kSkipExitCode ? failed + 1 : failed;
}
