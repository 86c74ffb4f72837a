// apps/commands.h — the subcommands of the attnlab command line, one function each.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace attn {
void add_train_command(CLI::App& app);
void add_translate_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_gradcheck_command(CLI::App& app);
void add_corpus_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_export_command(CLI::App& app);  // apps/export.cpp
void add_serve_command(CLI::App& app);   // apps/serve.cpp
// `attnlab internal-error-test`, hidden, for tests only (tests/test_apps.cpp): a real op refuses
// shapes, as it would under a bug in a layer, so that the test sees what a user who meets a bug
// sees: exit 70 and one line asking for a report, with the version (apps/main.cpp).
void add_internal_error_test_command(CLI::App& app);
}  // namespace attn

#include <attnlab/train/trainer.h>

namespace attn {
// Exit code chosen by the subcommand that ran (0 unless it says otherwise).
int& exit_code();
// Replaces `--config FILE` after a subcommand by the file's `name = value` lines as flags
// (`--name value`), inserted right after the subcommand so that later command-line flags win.
// Unknown names and unreadable files raise a one-line error naming the file.
std::vector<std::string> expand_config_files(CLI::App& app, std::vector<std::string> args);
// Checks for numeric flags. A failure reads "--steps: expected a whole number >= 1, got 'abc'"
// (CLI11's own PositiveNumber prints the range up to DBL_MAX and accepts "nan" for floats).
CLI::Validator whole_number(int64_t lo, int64_t hi = 2147483647);
// A finite real number in [lo, hi], or (lo, hi] / [lo, hi) / (lo, hi) when lo_open / hi_open.
CLI::Validator real_number(double lo, bool lo_open, double hi = 1e300, bool hi_open = false);
// The model and training flags shared by `train` and `compare` (also readable from --config TOML).
void add_train_options(CLI::App* cmd, TrainConfig& cfg);
// --arch NAME into `arch`, checked against the architectures' names (models/arch.h).
CLI::Option* add_arch_option(CLI::App* cmd, Arch& arch, const std::string& help);
}  // namespace attn
