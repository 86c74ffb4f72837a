// apps/main.cpp — `attnlab`: train, compare, translate, score, inspect, gradcheck, bench, corpus, export.
//
//   attnlab compare --preset quick --out reports/quick      # the main job (make demo)
//   attnlab train --config configs/base.toml --variant qq --out runs/qq
//   attnlab inspect grad --variant both --tokens 3 --dim 2
// Any error in user input ends with one line "attnlab: error: ..." and a non-zero exit:
// 1 for files, data and I/O (a standard output that cannot be written included), 2 for commands,
// flags and their values; 130, 143, 129 after SIGINT (Ctrl-C), SIGTERM, SIGHUP. A bug in
// attnlab itself ends with one line "attnlab: internal error (a bug in attnlab VERSION, please
// report it): ..." and exit 70.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <exception>
#include <new>
#include <sstream>
#include <stdexcept>

#include <attnlab/train/build_info.h>
#include "apps/commands.h"
#include "apps/shell_docs.h"
#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>

// Exit codes: 0 success, 1 a runtime error (files, data, I/O, out of memory), 2 a usage error
// (unknown commands or flags, bad values or combinations of flags: attn::UsageError), 70 an
// internal error (EX_SOFTWARE of sysexits.h: any other exception, such as an op deep in a layer
// refusing shapes, is a bug in attnlab), 128 + the signal when training or a grid stops on
// SIGINT, SIGTERM or SIGHUP after saving a checkpoint (130, 143, 129).
constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;
constexpr int kInternalError = 70;

// One line on standard error, after what standard output holds. Never throws: it is how errors
// are told, and standard error may itself be full or closed (the exit code still says it).
static void say(const std::string& line) {
  std::fflush(stdout);
  std::fputs((line + "\n").c_str(), stderr);
  std::fflush(stderr);
}

// The one line of an exception that is no user's fault: what it was, and which build to report.
static int internal_error(const char* what) {
  say(fmt::format("attnlab: internal error (a bug in attnlab {}, please report it): {}", attn::attnlab_build(), what));
  return kInternalError;
}

// Standard output or error that could not be written (`> /dev/full`, a full disk, a closed
// pipe's reader gone without SIGPIPE): the command failed, whatever it computed. `err` is the
// failed write's errno. Returns the exit code.
static int stream_failed(int code, int err) {
  if (std::ferror(stdout)) {
    say(fmt::format("attnlab: error: standard output: {}", std::strerror(err)));
    return code ? code : kRuntimeError;
  }
  return code ? code : kRuntimeError;  // standard error: nowhere to say it, the exit code does
}

// Levenshtein distance: how many single-character edits turn a into b.
// Edits (insert, delete, replace, swap two neighbours) from a to b: "--setps" is one from "--steps".
static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); i++)
    for (size_t j = 1; j <= b.size(); j++) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The one name nearest to what was typed, or "" when none is near enough to be a typo of it: at
// most two edits, fewer than half the typed word's letters (dashes not counted: "--d" suggests
// nothing, not "--lr"), and no other name as near.
static std::string nearest(const std::string& typed, const std::vector<std::string>& names) {
  const size_t letters = typed.size() - std::min(typed.find_first_not_of('-'), typed.size());
  std::string best_name;
  size_t best = std::min<size_t>(3, (letters + 1) / 2);  // the distance must be below this
  bool tie = false;
  for (const std::string& n : names) {
    const size_t d = edit_distance(typed, n);
    if (d < best) best = d, best_name = n, tie = false;
    else if (d == best && !best_name.empty() && n != best_name) tie = true;
  }
  return tie ? "" : best_name;
}

int main(int argc, char** argv) {
  const char* blas_core = attn::init_runtime(argv);
  CLI::App app{"attnlab — why does self-attention need a separate key matrix? QKᵀ vs QQᵀ, by experiment"};
  app.name("attnlab");
  app.option_defaults()->always_capture_default();  // --help shows every option's default
  app.require_subcommand(1);
  // For bug reports: the version and the BLAS kernels this process runs (see core/runtime.h).
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
  attn::add_export_command(app);
  attn::add_serve_command(app);
  attn::add_corpus_command(app);
  attn::add_internal_error_test_command(app);
  // What the build generates from these definitions (apps/shell_docs.h); not listed in --help.
  if (argc == 2 && (std::string(argv[1]) == "--bash-completion" || std::string(argv[1]) == "--man-page")) {
    const std::string text = std::string(argv[1]) == "--bash-completion" ? attn::bash_completion(app)
                                                                         : attn::man_page(app, attn::attnlab_build());
    std::fwrite(text.data(), 1, text.size(), stdout);
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) return stream_failed(0, errno ? errno : EIO);
    return 0;
  }
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
        say(fmt::format("attnlab: error: unknown command '{}' (commands: {})", argv[2], fmt::join(names, ", ")));
        return 2;
      }
      std::vector<std::string> help_args = {"--help"};  // reversed, as CLI11 takes them: `help inspect grad`
      for (int k = argc - 1; k >= 2; k--) help_args.push_back(argv[k]);
      try {
        app.parse(help_args);
      } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
      }
      return 0;
    }
    const std::string near = nearest(word, names);
    say(fmt::format("attnlab: error: unknown command '{}'{} (see attnlab --help)", word,
                    near.empty() ? "" : "; did you mean '" + near + "'?"));
    return 2;
  }
  // A command's own subcommands (inspect grad, corpus extract): a mistyped one named the same way.
  if (known && argc > 2 && argv[2][0] != '-') {
    CLI::App* cmd = app.get_subcommand(argv[1]);
    std::vector<std::string> subs;
    for (CLI::App* s : cmd->get_subcommands([](CLI::App*) { return true; })) subs.push_back(s->get_name());
    if (!subs.empty() && std::find(subs.begin(), subs.end(), argv[2]) == subs.end()) {
      const std::string near = nearest(argv[2], subs);
      say(fmt::format("attnlab: error: unknown command '{} {}'{} (see attnlab {} --help)", argv[1], argv[2],
                      near.empty() ? fmt::format(" (commands: {})", fmt::join(subs, ", "))
                                   : fmt::format("; did you mean '{} {}'?", argv[1], near), argv[1]));
      return kUsageError;
    }
  }
  try {
    // The command's default thread count (ATTNLAB_THREADS, else every core) for OpenMP and
    // OpenBLAS: the library sets none on its own (core/threads.h); commands with --threads reset it.
    attn::set_threads(0);
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
      // a mistyped flag: the nearest of the command's own (--step: --steps)
      CLI::App* at = &app;
      while (!at->get_subcommands().empty()) at = at->get_subcommands().back();
      if (!listed.empty() && listed[0].rfind("--", 0) == 0) {
        const std::string typed = listed[0].substr(0, listed[0].find('='));
        std::vector<std::string> flags;
        for (const CLI::Option* o : at->get_options())
          for (const std::string& name : o->get_lnames()) flags.push_back("--" + name);
        if (const std::string near = nearest(typed, flags); !near.empty()) msg += fmt::format("; did you mean '{}'?", near);
      }
    }
    say(fmt::format("attnlab: error: {} (see attnlab {}--help)", msg, sub));
    return kUsageError;
  } catch (const attn::UsageError& e) {  // a flag's value, or a combination of flags, refused
    say(fmt::format("attnlab: error: {}", e.what()));
    return kUsageError;
  } catch (const std::bad_alloc&) {  // a model, batch or corpus larger than this machine's memory
    say("attnlab: error: out of memory");
    return kRuntimeError;
  } catch (const std::system_error& e) {  // fmt's print to a full standard output or error; filesystem errors
    if (std::ferror(stdout) || std::ferror(stderr)) return stream_failed(kRuntimeError, e.code().value());
    say(fmt::format("attnlab: error: {}", e.what()));
    return kRuntimeError;
  } catch (const std::runtime_error& e) {  // files, data, I/O
    say(fmt::format("attnlab: error: {}", e.what()));
    return kRuntimeError;
  } catch (const nlohmann::json::exception& e) {  // a JSON file's content (with_json_file names the file)
    say(fmt::format("attnlab: error: {}", e.what()));
    return kRuntimeError;
  } catch (const std::exception& e) {  // std::logic_error (invalid_argument, out_of_range, ...) and the rest
    return internal_error(e.what());
  } catch (...) {
    return internal_error("an exception that is not a std::exception");
  }
  // What is still in standard output's buffer is written now, not by exit(), whose failure no
  // one would see: `attnlab translate ... > /dev/full` must not exit 0.
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) return stream_failed(attn::exit_code(), errno ? errno : EIO);
  if (std::fflush(stderr) != 0 || std::ferror(stderr)) return stream_failed(attn::exit_code(), errno ? errno : EIO);
  return attn::exit_code();
}
