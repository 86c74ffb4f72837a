// tests/skip.h — a test case that cannot run on this machine (a tool, a package or a privilege
// missing) ends its executable with kSkipExitCode, which ctest reports as skipped, not passed.
//   TEST_CASE("... under gdb ...", "[gdb]") {
//     skip_unless(have_command("gdb"), "gdb not installed (make test installs it)");
//     ...
//   }
// Only valid in a case whose tag has a ctest entry of its own (tests/CMakeLists.txt: the SKIP
// tags of attnlab_test, each run as `<test> "[tag]"` with SKIP_RETURN_CODE, and left out of the
// module's main entry): std::exit ends the whole run, so a case after it in the same run would
// not run at all. Every case under one tag checks the same requirement first, so when it is
// missing none of them has run.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

inline constexpr int kSkipExitCode = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

// True when the shell finds `name` on PATH.
inline bool have_command(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// Ends the run as skipped, saying why, unless `ok`.
inline void skip_unless(bool ok, const std::string& reason) {
  if (ok) return;
  std::printf("SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
  std::exit(kSkipExitCode);
}
