// tests/cli.h — running the attnlab binary from a test: its exit code and output, scratch
// directories, and snapshots that show a directory was left exactly as it was.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include <attnlab/core/fileio.h>

namespace fs = std::filesystem;
using attn::read_file;

struct Result {
  int code;
  std::string out;
};

// A shell command's exit code and output (stdout and stderr together).
inline Result shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out};
}

// One argument for the shell, in single quotes.
inline std::string shell_quote_arg(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// Runs `attnlab <args>` through the shell, capturing stdout and stderr together; env, if given,
// is put before the command (e.g. "env PATH=/nonexistent").
inline Result attnlab(const std::string& args, const std::string& env = "") {
  return shell((env.empty() ? "" : env + " ") + std::string(ATTNLAB_BINARY) + " " + args);
}

inline fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("attnlab-apps-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

inline const char* kTiny =
    "--task reverse --task-train 400 --d-model 16 --heads 2 --enc-layers 1 --dec-layers 1 --d-ff 32 "
    "--threads 1 --eval-sentences 10 --test-sentences 20 --beam 1 --quiet";

// Every file's bytes and every directory under dir, by relative path: equal snapshots mean
// nothing was written, changed or left behind.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? read_file(e.path().string()) : std::string("(directory)");
  return files;
}

