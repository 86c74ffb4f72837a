// apps/commands.h — the subcommands of the attnlab command line, one function each.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace attn {
void add_train_command(CLI::App& app);
void add_translate_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_gradcheck_command(CLI::App& app);
void add_corpus_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
}  // namespace attn

#include "apps/train.h"

namespace attn {
// Exit code chosen by the subcommand that ran (0 unless it says otherwise).
int& exit_code();
// Replaces `--config FILE` after a subcommand by the file's `name = value` lines as flags
// (`--name value`), inserted right after the subcommand so that later command-line flags win.
// Unknown names and unreadable files raise a one-line error naming the file.
std::vector<std::string> expand_config_files(CLI::App& app, std::vector<std::string> args);
// The model and training flags shared by `train` and `compare` (also readable from --config TOML).
void add_train_options(CLI::App* cmd, TrainConfig& cfg);
}  // namespace attn
