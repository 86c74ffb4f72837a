// apps/compare.cpp — `attnlab compare`: the same model trained as QKᵀ, QQᵀ and the other
// variants on the same data, tokenizer, budget and schedule, then one report.
//
// The grid itself (presets, planning, job files, running) is train/grid.h; the reports are
// train/report.h and train/frontier.h. Here: flags, the SIGINT handler, and printing.
//   attnlab compare --preset quick --out reports/quick
//   attnlab compare --preset standard --out reports/std --plan    # DIR/plan.sh, one command per run
//   attnlab compare --report reports/std                          # aggregate whatever has finished
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include <fmt/ranges.h>

#include "apps/commands.h"
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/train/frontier.h>
#include <attnlab/train/grid.h>
#include <attnlab/train/run_dir.h>
#include <attnlab/train/tune.h>

namespace attn {
namespace fs = std::filesystem;

// Ctrl-C (or `kill -INT`), SIGTERM or SIGHUP during a grid: no new runs start, the running ones
// save a checkpoint and stop (each `attnlab train` does that on these signals), the report covers
// what has finished, and the command says how to resume; it exits with 128 + the signal. A
// terminal's Ctrl-C or hang-up reaches the runs itself (they are in the same process group); a
// signal sent to compare alone is passed on to them. (A compare killed with SIGKILL cannot pass
// anything on: its runs get SIGTERM from the kernel, see train/grid.cpp's launch.)
static volatile std::sig_atomic_t g_interrupted = 0, g_interrupt_from_kill = 0;
extern "C" void on_compare_signal(int sig, siginfo_t* info, void*) {
  if (!g_interrupted) g_interrupted = sig;
  if (info && (info->si_code == SI_USER || info->si_code == SI_QUEUE)) g_interrupt_from_kill = 1;
}

struct CompareOpts {
  GridOptions grid;
  std::string variants, report_dir;
  std::optional<std::string> at_loss;  // compare --at-loss, as given (an empty list is refused)
  int64_t gap_from = 2000;  // runs trained to the end: the step their report compares the end's gap with
  int jobs = 0;
  bool plan = false;
  int until_plateau = 0;   // training to the end: every run gets --until-plateau and --steps max_steps
  int64_t max_steps = 0;   // 0: 20,000 with --until-plateau
};

// --until-plateau P [--max-steps N]: every run trains until its validation loss stops improving
// (train --until-plateau) or N steps, the schedule unchanged; passed on as train flags after the
// preset's, so they win.
static void add_plateau_flags(CompareOpts& o) {
  if (o.max_steps > 0 && o.until_plateau == 0)
    throw UsageError("--max-steps: only with --until-plateau (it is the step limit of training to the end; "
                     "--train-args=--steps,N sets a fixed budget)");
  if (o.until_plateau == 0) return;
  const int64_t limit = o.max_steps > 0 ? o.max_steps : 20000;
  o.grid.extra.insert(o.grid.extra.end(), {"--until-plateau", std::to_string(o.until_plateau), "--steps", std::to_string(limit)});
}

static std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "attnlab" : p.string();
}

// `attnlab train` flags as the train command reads them.
static TrainConfig parse_train_flags(std::vector<std::string> flags) {
  TrainConfig c;
  CLI::App parser{"train"};
  add_train_options(&parser, c);
  parser.add_option("--out", c.out);
  parser.add_flag("--resume", c.resume);
  std::reverse(flags.begin(), flags.end());  // CLI11 takes the arguments last-first
  parser.parse(flags);
  return c;
}

// The flags every run will get, checked once here rather than failing in every run; returned parsed.
static TrainConfig check_train_args(const GridPreset& pre, const std::vector<std::string>& extra, Arch arch) {
  // a flag the grid's architecture does not use would have every run refuse it
  for (const std::string& a : extra)
    if (std::string why = flag_not_applying(a.substr(0, a.find('=')), arch); !why.empty())
      throw UsageError("--train-args: " + why);
  TrainConfig probe;
  CLI::App check{"train"};
  add_train_options(&check, probe);
  std::vector<std::string> flags = pre.flags;
  flags.insert(flags.end(), extra.begin(), extra.end());
  std::reverse(flags.begin(), flags.end());
  try {
    check.parse(flags);
  } catch (const CLI::ParseError& e) {
    std::string unknown;
    for (auto& a : extra)
      if (a.rfind("--", 0) == 0 && !check.get_option_no_throw(a.substr(0, a.find('='))))
        unknown += (unknown.empty() ? "" : ", ") + a;
    if (!unknown.empty()) throw UsageError(fmt::format("--train-args: `attnlab train` has no flag {}", unknown));
    throw UsageError(fmt::format("--train-args: {}", e.what()));
  }
  probe.validate();
  return probe;
}

static void print_event(const GridEvent& e) {
  const RunSpec& r = *e.run;
  switch (e.kind) {
    case GridEvent::Kind::Skipped: fmt::print("[{}/{}] {}: finished earlier, skipped\n", e.done, e.total, r.name); break;
    case GridEvent::Kind::Started: fmt::print("started {} (log: {}/train.log)\n", r.name, r.dir); break;
    case GridEvent::Kind::Stopped: fmt::print("{} stopped at its last checkpoint ({}/last.json)\n", r.name, r.dir); break;
    case GridEvent::Kind::Finished:
      if (e.results.contains("test_bleu"))
        fmt::print("[{}/{}] {} finished at {:.1f} min: valid loss {:.4f}, test BLEU {:.2f}, chrF {:.2f}\n", e.done, e.total, r.name,
                   e.minutes, e.results["valid_loss"].get<double>(), e.results["test_bleu"].get<double>(),
                   e.results["test_chrf"].get<double>());
      else  // an lm or mlm run
        fmt::print("[{}/{}] {} finished at {:.1f} min: valid loss {:.4f}, test accuracy {:.2f}%, ppl {:.2f}\n", e.done, e.total,
                   r.name, e.minutes, e.results["valid_loss"].get<double>(), 100 * e.results["test_accuracy"].get<double>(),
                   e.results["test_ppl"].get<double>());
      break;
    case GridEvent::Kind::Failed:
      fmt::print(stderr, "[{}/{}] {} FAILED (exit {}); see {}/train.log\n", e.done, e.total, r.name, e.exit_code, r.dir);
      break;
  }
  std::fflush(stdout);
}

// --at-loss 2.4,2.0,1.8: the baseline's validation losses, distinct, in the order given.
static std::vector<Level> parse_levels(const std::string& list) {
  std::vector<Level> levels;
  for (const Rate& x : parse_positive_numbers(list, "--at-loss", "validation losses", "2.4,2.0,1.8")) {
    for (const Level& l : levels)
      if (l.value == x.value) throw UsageError(fmt::format("--at-loss '{}': {} and {} are the same loss", list, l.text, x.text));
    levels.push_back({x.text, x.value});
  }
  return levels;
}

static void print_report(std::string dir, const CompareOpts& o) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // "reports/x/" from a shell's completion
  ReportOptions opts;
  opts.gap_from = o.gap_from;
  if (o.at_loss) opts.at_loss = parse_levels(*o.at_loss);
  fmt::print("report: {}\n", write_grid_report(dir, "qk", opts));
  fmt::print("{}", summary_text(dir));
}

// The runs still to come in a tuned grid, as the rules see the finished ones (train/tune.h).
static std::vector<RunSpec> tuned_round(const GridPreset& pre, const CompareOpts& o, const std::vector<Rate>& rates,
                                        TunedPlan* plan = nullptr) {
  TunedPlan p = plan_tuned_grid(pre, o.grid, rates);
  if (std::string stale = stale_runs(o.grid.out, p.specs, parse_train_flags); !stale.empty()) throw UsageError(stale);
  if (plan) *plan = p;
  return p.specs;
}

// Runs the grid here, then reports on what finished. A tuned grid (rates given) runs in rounds:
// each round is what the rules call for once the runs before it have finished.
static void run_here(const GridPreset& pre, const CompareOpts& o, std::vector<RunSpec> specs, const std::vector<Rate>& rates) {
  // Single-threaded runs side by side use the cores better than one multi-threaded run at a time
  // (small products do not scale across threads); the quick preset runs all three at once.
  const int jobs = o.jobs > 0 ? o.jobs : pre.jobs > 0 ? pre.jobs
                                       : std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, o.grid.threads));
  const ArchTraits& a = traits(o.grid.arch);
  const std::string arch = a.translates() ? "" : fmt::format(
      " as an --arch {} model of {} layers ({})", a.name, o.grid.train.model.enc_layers + o.grid.train.model.dec_layers,
      fmt::join(grid_variants(pre, o.grid), ", "));
  const std::string tuned = rates.empty() ? "" : fmt::format("; each variant at its own best rate of {}, in rounds as "
                                                             "the rules call for runs", o.grid.tune_lr);
  fmt::print("compare '{}' ({}){}: {}, {} at a time, {} each; expected {}{}\n", pre.name, pre.description, arch,
             counted(int64_t(specs.size()), "run"), jobs, counted(o.grid.threads, "thread"),
             a.translates() ? pre.expected_time : pre.lm_expected_time, tuned);
  std::fflush(stdout);
  constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction sa {}, old_sa[3];
  sa.sa_sigaction = on_compare_signal;
  sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid returns EINTR and the loop sees the flag
  sigemptyset(&sa.sa_mask);
  g_interrupted = 0;
  g_interrupt_from_kill = 0;
  for (int i = 0; i < 3; i++) ::sigaction(kStopSignals[i], &sa, &old_sa[i]);
  GridOutcome r;
  size_t total = 0;
  for (std::set<std::string> started;;) {
    const GridOutcome round = run_grid(specs, jobs, print_event, &g_interrupted, &g_interrupt_from_kill);
    r.done += round.done, r.failed += round.failed, r.stopped += round.stopped;
    r.interrupted = round.interrupted;
    for (auto& s : specs) total += started.insert(s.name).second;
    if (rates.empty() || r.interrupted) break;
    std::vector<RunSpec> next = tuned_round(pre, o, rates);
    const bool news = std::any_of(next.begin(), next.end(), [&](const RunSpec& s) { return !started.count(s.name); });
    if (!news) break;  // every run the rules call for has had its turn (a failed one is not retried here)
    fmt::print("the rules call for {} more: the next round\n", counted(int64_t(std::count_if(next.begin(), next.end(),
               [&](const RunSpec& s) { return !started.count(s.name); })), "run"));
    specs = std::move(next);
  }
  for (int i = 0; i < 3; i++) ::sigaction(kStopSignals[i], &old_sa[i], nullptr);
  try {
    print_report(o.grid.out, o);
  } catch (const std::exception&) {
    if (!r.failed && !r.interrupted) throw;  // with every run failed there is nothing to report; the failure is the news
  }
  if (r.interrupted) {
    const int sig = g_interrupted;
    fmt::print(stderr, "{}: {} of {} finished, {} stopped at a checkpoint{}; run the same command again to "
                       "resume\n", sig == SIGTERM ? "terminated (SIGTERM)" : sig == SIGHUP ? "hung up (SIGHUP)" : "interrupted",
               r.done - r.failed, counted(int64_t(total), "run"), r.stopped,
               r.failed ? fmt::format(", {} failed (their logs are named above)", r.failed) : "");
    exit_code() = 128 + sig;
    return;
  }
  if (r.failed) throw std::runtime_error(fmt::format("{} of {} failed (their logs are named above)", r.failed, counted(int64_t(total), "run")));
}

static void run_compare(CompareOpts o) {
  if (o.at_loss) parse_levels(*o.at_loss);  // a bad list fails before any run starts
  if (!o.report_dir.empty()) return print_report(o.report_dir, o);
  if (o.grid.out.empty()) throw UsageError("--out: required (the comparison's directory)");
  const GridPreset& pre = grid_preset(o.grid.preset);
  o.grid.variants = split_commas(o.variants);
  if (!o.variants.empty() && o.grid.variants.empty())
    throw UsageError("--variants '" + o.variants + "': no variant named (e.g. --variants qk,qq)");
  std::vector<Rate> rates;
  if (!o.grid.tune_lr.empty()) {
    rates = parse_rates(o.grid.tune_lr, "--tune-lr");
    if (o.grid.match_params || pre.also_matched)
      throw UsageError("--tune-lr: not with parameter-matched runs (--match-params, or the full preset): each variant is "
                       "tuned as it is");
  }
  o.grid.exe = self_exe();
  add_plateau_flags(o);
  o.grid.train = check_train_args(pre, o.grid.extra, o.grid.arch);
  // checks variants and widths before anything is written
  std::vector<RunSpec> specs = rates.empty() ? plan_grid(pre, o.grid) : std::vector<RunSpec>{};
  if (!rates.empty()) grid_cells(pre, o.grid);
  // One compare per grid directory (each run's `attnlab train` locks its own as well).
  std::error_code ec;
  const bool created = fs::create_directories(o.grid.out, ec);
  if (ec || ::access(o.grid.out.c_str(), W_OK) != 0)
    throw std::runtime_error("--out " + o.grid.out + ": cannot create or write the directory");
  WriterLock lock(o.grid.out, "--out");
  SetupUndo undo(o.grid.out, created);  // a failed setup (the shared tokenizer, a changed grid) leaves --out as it found it
  if (!rates.empty()) {  // a grid tuned over other rates would mix two sweeps' rules
    const TuneFile before = read_tune_file(o.grid.out);
    std::vector<std::string> was, now;
    for (auto& r : before.rates) was.push_back(r.text);
    for (auto& r : rates) now.push_back(r.text);
    if (!before.rates.empty() && was != now)
      throw UsageError(fmt::format("--tune-lr {}: --out {} is tuned over {} (its tune.json); give those rates or another --out",
                                   o.grid.tune_lr, o.grid.out, fmt::join(was, ",")));
  }
  fs::create_directories(o.grid.out + "/runs", ec);
  if (ec) throw std::runtime_error("--out " + o.grid.out + "/runs: cannot create the directory: " + ec.message());
  set_threads(o.grid.threads);
  ensure_shared_tokenizer(o.grid, [](const std::string& s) {
    fmt::print("{}\n", s);
    std::fflush(stdout);
  });
  TunedPlan tp;
  if (!rates.empty())
    specs = tuned_round(pre, o, rates, &tp);
  else if (std::string stale = stale_runs(o.grid.out, specs, parse_train_flags); !stale.empty())
    throw UsageError(stale);
  if (!rates.empty()) write_tune_file(o.grid.out, rates, grid_recipe_lr(pre, o.grid));
  undo.keep();
  if (o.plan) {
    write_plan(o.grid.out, o.grid.exe, specs);
    std::string report_flags;  // the report's own options, for the command that makes it
    if (o.gap_from != 2000) report_flags += fmt::format(" --gap-from {}", o.gap_from);
    if (o.at_loss) report_flags += " --at-loss " + shell_quote(*o.at_loss);
    fmt::print("wrote {} ({}) and {}. Run its lines in any order, then: attnlab compare --report {}{}\n",
               o.grid.out + "/plan.sh", counted(int64_t(specs.size()), "run"), o.grid.out + "/slurm.sh", o.grid.out, report_flags);
    if (!rates.empty()) {
      fmt::print("tuned over {}: {} of {} (variant, width) sweeps have settled; {} not run yet", o.grid.tune_lr, tp.settled,
                 tp.cells, counted(tp.pending, "run"));
      if (tp.settled < tp.cells)
        fmt::print("; {} wait for lower rates' results. Once these runs have finished, `compare --plan` again (same "
                   "flags) writes what the rules call for next (higher rates, a doubling, the other seeds at each best rate)\n",
                   counted(tp.waiting, "seed-1 run"));
      else
        fmt::print("; every run the rules call for is in this plan\n");
    }
    return;
  }
  run_here(pre, o, specs, rates);
}

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOpts>();
  // The presets and their costs under `compare --help` only: `attnlab --help` lists each command in a line.
  std::string presets = "Presets:\n";
  std::vector<std::string> names;
  for (auto& p : grid_presets()) {
    presets += fmt::format("  {:<9} {}\n            {}\n", p.name, p.description, p.expected_time);
    if (p.lm_expected_time != "not measured") presets += fmt::format("            with --arch: {}\n", p.lm_expected_time);
    names.push_back(p.name);
  }
  CLI::App* cmd = app.add_subcommand("compare", "train the baseline and the variants on the same data and budget; write a report");
  cmd->footer(presets);
  GridOptions& g = o->grid;
  cmd->add_option("--preset", g.preset, "the grid: " + fmt::format("{}", fmt::join(names, ", ")))->check(CLI::IsMember(names));
  add_arch_option(cmd, g.arch, "lm or mlm: the preset's recipe as a decoder-only language model (encoder-only masked-token "
                               "model) with the encoder's and decoder's layers in one stack, and the preset's variants "
                               "that change its self-attention (default: seq2seq, translation)");
  cmd->add_option("--widths", g.widths, "comma-separated model widths, each with d_ff 4x and the preset's heads (default: "
                                        "the preset's; e.g. --widths 64,128,256,512 --plan)");
  cmd->add_option("--out", g.out, "comparison directory (runs/, report.md, CSVs, plots)");
  cmd->add_option("--variants", o->variants, "comma-separated presets to compare (default: the preset's list)");
  cmd->add_option("--seeds", g.seeds, "seeds per variant (default: the preset's)")->check(whole_number(1));
  cmd->add_flag("--match-params", g.match_params, "widen every variant back to the baseline's parameter count");
  cmd->add_option("--corpus", g.corpus, "corpus directory (default: the embedded gettext en-de)");
  cmd->add_option("--task", g.task, "a synthetic task instead of a corpus")->check(CLI::IsMember({"copy", "reverse", "sort"}));
  cmd->add_option("--threads", g.threads, "threads per run")->check(whole_number(1, 1024));
  cmd->add_option("--jobs", o->jobs, "runs at a time (default: cores / threads)")->check(whole_number(1, 1024));
  cmd->add_flag("--plan", o->plan, "write DIR/plan.sh (one command per run, for GNU parallel or a shell) and DIR/slurm.sh "
                                   "(a Slurm array) instead of running");
  cmd->add_option("--tune-lr", g.tune_lr,
                  "comma-separated learning rates: every (variant, width) at its own best rate. Seed 1 at each rate as "
                  "the rules allow (a higher rate is skipped once the next lower one was worse than the one below it; "
                  "the doubling of the highest is tried when that is best), then the other seeds at the best rate. "
                  "Run here, it goes in rounds; with --plan, each plan holds the runs whose turn has come: run "
                  "--plan again (same flags) after they finish, for the next rates and the other seeds");
  cmd->add_option("--until-plateau", o->until_plateau,
                  "train every run to the end: until its validation loss has not improved by more than 0.002 for this "
                  "many evaluations in a row, or --max-steps (the schedule unchanged; the best checkpoint is scored). The "
                  "report then says where each run stopped and whether each variant's gap to the baseline closes, holds "
                  "or grows from step 2,000 (--gap-from) to the end; in a grid of several widths, in each width's report. "
                  "Measured at d_model 128 and lr 6e-3 (frontier recipe), two runs side by side on 2 cores (AMD EPYC, "
                  "2026-12-06): qk stopped on its plateau after 11,250-11,750 steps (58-69 min), qq-noself after "
                  "13,500-14,750 (60-73 min), qq after 18,250 or the 20,000 limit (102-104 min); the six runs of "
                  "docs/results/frontier-long took 7.8 core-hours, about 4 h of the two cores")
      ->check(whole_number(1));
  cmd->add_option("--max-steps", o->max_steps, "with --until-plateau: the most steps a run may take (default 20000)")
      ->check(whole_number(1));
  cmd->add_option("--report", o->report_dir, "only aggregate the finished runs in this directory into its report");
  cmd->add_option("--gap-from", o->gap_from,
                  "for runs trained to the end (--until-plateau): the step whose gap to the baseline the end's is "
                  "compared with (default 2000, where the frontier preset's runs stop)")
      ->check(whole_number(1));
  cmd->add_option("--at-loss", o->at_loss,
                  "comma-separated validation losses L of the baseline (e.g. 2.4,2.0,1.8): the report gains a table of "
                  "each variant's gap at equal progress, its loss where the baseline's curve reaches each L minus L "
                  "(mean curves, and seed by seed), and at_loss.csv; in a grid of several widths, in each width's report "
                  "(docs/results.md §7 reads qq's gap this way)");
  cmd->add_option("--train-args", g.extra, "further flags passed to every `attnlab train` (e.g. --train-args=--steps,200)")->delimiter(',');
  cmd->callback([o]() { run_compare(*o); });
}

}  // namespace attn
