// apps/main.cpp — `attnlab`: train, compare, translate, score, inspect, gradcheck, bench, corpus.
//
//   attnlab compare --preset quick --out reports/quick      # the main job (make demo)
//   attnlab train --config configs/base.toml --variant qq --out runs/qq
//   attnlab inspect grad --variant both --tokens 3 --dim 2
// Any error in user input ends with one line "attnlab: error: ..." and a non-zero exit:
// 1 for files, data and I/O, 2 for commands, flags and their values; 130 after Ctrl-C. A bug in
// attnlab itself ends with one line "attnlab: internal error (a bug in attnlab VERSION, please
// report it): ..." and exit 70.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <sstream>
#include <stdexcept>

#include "train/build_info.h"
#include "apps/commands.h"
#include "core/threads.h"
#include "core/usage_error.h"

// Exit codes: 0 success, 1 a runtime error (files, data, I/O, out of memory), 2 a usage error
// (unknown commands or flags, bad values or combinations of flags: attn::UsageError), 70 an
// internal error (EX_SOFTWARE of sysexits.h: any other exception, such as an op deep in a layer
// refusing shapes, is a bug in attnlab), 130 interrupted (Ctrl-C, after saving a checkpoint).
constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;
constexpr int kInternalError = 70;

// The one line of an exception that is no user's fault: what it was, and which build to report.
static int internal_error(const char* what) {
  std::fflush(stdout);
  fmt::print(stderr, "attnlab: internal error (a bug in attnlab {}, please report it): {}\n", attn::attnlab_build(), what);
  return kInternalError;
}

// Levenshtein distance: how many single-character edits turn a into b.
static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

int main(int argc, char** argv) {
  const char* blas_core = attn::init_runtime(argv);
  CLI::App app{"attnlab — why does self-attention need a separate key matrix? QKᵀ vs QQᵀ, by experiment"};
  app.name("attnlab");
  app.option_defaults()->always_capture_default();  // --help shows every option's default
  app.require_subcommand(1);
  // For bug reports: the version and the BLAS kernels this process runs (see core/threads.h).
  app.set_version_flag("--version", fmt::format("attnlab {}, BLAS kernels: {}", attn::attnlab_build(), blas_core));
  app.set_help_all_flag("--help-all", "help for every subcommand");
  attn::add_compare_command(app);
  attn::add_train_command(app);
  attn::add_translate_command(app);
  attn::add_generate_command(app);
  attn::add_score_command(app);
  attn::add_inspect_command(app);
  attn::add_gradcheck_command(app);
  attn::add_bench_command(app);
  attn::add_corpus_command(app);
  attn::add_internal_error_test_command(app);
  // `attnlab help [COMMAND]`, and a mistyped command named with the nearest one (of those --help lists)
  std::vector<std::string> names, hidden;
  for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
    (s->get_group().empty() ? hidden : names).push_back(s->get_name());
  const bool known = argc > 1 && (std::find(names.begin(), names.end(), argv[1]) != names.end() ||
                                  std::find(hidden.begin(), hidden.end(), argv[1]) != hidden.end());
  if (argc > 1 && argv[1][0] != '-' && !known) {
    const std::string word = argv[1];
    if (word == "help") {
      if (argc == 2) return app.exit(CLI::CallForHelp());
      if (std::find(names.begin(), names.end(), argv[2]) == names.end()) {
        fmt::print(stderr, "attnlab: error: unknown command '{}' (commands: {})\n", argv[2], fmt::join(names, ", "));
        return 2;
      }
      std::vector<std::string> help_args = {"--help", argv[2]};  // reversed, as CLI11 takes them
      try {
        app.parse(help_args);
      } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
      }
      return 0;
    }
    std::string nearest;
    size_t best = 3;  // at most two edits away
    for (auto& n : names)
      if (size_t d = edit_distance(word, n); d < best) best = d, nearest = n;
    fmt::print(stderr, "attnlab: error: unknown command '{}'{} (see attnlab --help)\n", word,
               nearest.empty() ? "" : "; did you mean '" + nearest + "'?");
    return 2;
  }
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    args = attn::expand_config_files(app, args);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last-first
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; CLI11 lists unexpected arguments last-first (we
    // hand it the reversed list), so those are named here in the order they were typed.
    std::string sub;  // the subcommands given, e.g. "inspect grad "
    for (CLI::App* a = &app; !a->get_subcommands().empty();) {
      a = a->get_subcommands().back();
      sub += a->get_name() + " ";
    }
    std::string msg = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
      // the words after "not expected: ", last-first: put back in the order they were typed (a
      // search of argv for them named a value of another flag that equals one of them)
      std::vector<std::string> listed;
      std::istringstream words(msg.substr(msg.find(':') + 1));
      for (std::string w; words >> w;) listed.push_back(w);
      std::reverse(listed.begin(), listed.end());
      if (!listed.empty()) msg = fmt::format("unexpected argument(s): {}", fmt::join(listed, " "));
    }
    fmt::print(stderr, "attnlab: error: {} (see attnlab {}--help)\n", msg, sub);
    return kUsageError;
  } catch (const attn::UsageError& e) {  // a flag's value, or a combination of flags, refused
    std::fflush(stdout);
    fmt::print(stderr, "attnlab: error: {}\n", e.what());
    return kUsageError;
  } catch (const std::bad_alloc&) {  // a model, batch or corpus larger than this machine's memory
    std::fflush(stdout);
    fmt::print(stderr, "attnlab: error: out of memory\n");
    return kRuntimeError;
  } catch (const std::runtime_error& e) {  // files, data, I/O
    std::fflush(stdout);
    fmt::print(stderr, "attnlab: error: {}\n", e.what());
    return kRuntimeError;
  } catch (const nlohmann::json::exception& e) {  // a JSON file's content (with_json_file names the file)
    std::fflush(stdout);
    fmt::print(stderr, "attnlab: error: {}\n", e.what());
    return kRuntimeError;
  } catch (const std::exception& e) {  // std::logic_error (invalid_argument, out_of_range, ...) and the rest
    return internal_error(e.what());
  } catch (...) {
    return internal_error("an exception that is not a std::exception");
  }
  return attn::exit_code();
}
