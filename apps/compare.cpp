// apps/compare.cpp — `attnlab compare`: the same model trained as QKᵀ, QQᵀ and the other
// variants on the same data, tokenizer, budget and schedule, then one report.
//
// Every run of the grid (variant × seed) is an `attnlab train` subprocess writing
// DIR/runs/<variant>-s<seed>; finished runs (results.json) are skipped, unfinished ones resumed.
//   attnlab compare --preset quick --out reports/quick
//   attnlab compare --preset standard --out reports/std --plan    # DIR/plan.sh, one command per run
//   attnlab compare --report reports/std                          # aggregate whatever has finished
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>
#include <filesystem>
#include <map>
#include <sstream>

#include "apps/commands.h"
#include "apps/report.h"
#include "core/fileio.h"
#include "core/threads.h"
#include "data/synthetic.h"

extern char** environ;

namespace attn {
namespace fs = std::filesystem;

// Ctrl-C (or `kill -INT`) during a grid: no new runs start, the running ones save a checkpoint
// and stop (each `attnlab train` does that on SIGINT), the report covers what has finished, and
// the command says how to resume. A terminal's Ctrl-C reaches the runs itself (they are in the
// same process group); a SIGINT sent to compare alone is passed on to them.
static volatile std::sig_atomic_t g_interrupted = 0, g_interrupt_from_kill = 0;
extern "C" void on_compare_sigint(int, siginfo_t* info, void*) {
  g_interrupted = 1;
  if (info && (info->si_code == SI_USER || info->si_code == SI_QUEUE)) g_interrupt_from_kill = 1;
}

struct ComparePreset {
  std::string name, description, expected_time;
  std::vector<std::string> variants;
  int seeds;
  std::vector<std::string> flags;  // passed to every `attnlab train`
  int jobs = 0;                    // runs at a time (0: cores / threads per run)
  bool also_matched = false;       // every variant also in a parameter-matched version
};

// The presets. Expected times are for a 2-core laptop-class machine (measured, docs/benchmarks.md).
static std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

static const std::vector<ComparePreset>& presets() {
  // The small model of the quick and medium presets: trains at ~1500 target tokens/s per thread.
  static const std::vector<std::string> small_model = {"--d-model", "128", "--heads", "4", "--enc-layers", "2",
                                                        "--dec-layers", "2", "--d-ff", "512", "--vocab", "4000",
                                                        "--lr", "1.5e-3", "--batch-tokens", "2048", "--beam", "1"};
  static const std::vector<ComparePreset> p = {
      // 1000 steps: QQᵀ is ahead of QKᵀ for the first ~750 steps at this size and behind from
      // ~1000 on (the medium preset's three seeds, docs/results.md); a shorter demo would show
      // the opposite of the answer. The schedule is the medium preset's, so its runs follow
      // medium's seed-1 runs.
      {"quick", "qk, qq, qq-noself; a small model (d 128, 2+2 layers), 1000 steps, all three at once; greedy test decoding",
       "about 7-11 minutes on 2 cores, depending on the CPU",
       {"qk", "qq", "qq-noself"},
       1,
       concat(small_model, {"--steps", "1000", "--warmup", "200", "--eval-every", "250", "--log-every", "25",
                            "--eval-sentences", "100", "--test-sentences", "400"}),
       3},
      {"medium", "qk, qq, qq-noself; the quick preset's small model, 1500 steps, 3 seeds; greedy decoding of the whole test set",
       "about 35-55 minutes on 2 cores, depending on the CPU (9 runs, three at a time; 15 runs with --match-params)",
       {"qk", "qq", "qq-noself"},
       3,
       concat(small_model, {"--steps", "1500", "--warmup", "200", "--eval-every", "250", "--log-every", "25",
                            "--eval-sentences", "200", "--test-sentences", "0"}),
       3},
      {"standard", "qk, qq, qq-noself, qq-normk, qq-enc, qq-dec; the default model (d 256, 3+3 layers), 4000 steps, 3 seeds",
       "about 17 hours on 2 cores: 18 runs of 1.6-2.2 hours, two at a time; spread it over machines with --plan",
       {"qk", "qq", "qq-noself", "qq-normk", "qq-enc", "qq-dec"},
       3,
       {"--steps", "4000", "--warmup", "800", "--lr", "7e-4", "--eval-every", "500", "--log-every", "50",
        "--eval-sentences", "300", "--beam", "5"}},
      {"full", "all ten variants (qk ... qq-noV-noO), each also parameter-matched (--match-params); the default model, 12000 steps, 5 seeds",
       "about 11 days on 2 cores: 95 runs of about 5.5 hours, two at a time; spread it over machines with --plan",
       {"qk", "qq", "qq-noself", "qq-normk", "qq-enc", "qq-dec", "qq-all", "noV", "noO", "qq-noV-noO"},
       5,
       {"--steps", "12000", "--warmup", "800", "--lr", "7e-4", "--eval-every", "1000", "--log-every", "100",
        "--eval-sentences", "300", "--beam", "5"},
       0,
       true},
  };
  return p;
}

struct CompareOpts {
  std::string preset = "quick", out, variants, corpus, task, report_dir;
  int seeds = 0, threads = 1, jobs = 0;
  bool match_params = false, plan = false;
  std::vector<std::string> extra;  // further train flags after --
};

static std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "attnlab" : p.string();
}

static std::string shell_quote(const std::string& s) {
  if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+,:") == std::string::npos) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

struct RunSpec {
  std::string name, dir;
  std::vector<std::string> args;  // argv of `attnlab train ...`
};

// A run directory made earlier with other settings than this command gives it (a preset that
// changed between versions, other --train-args): "steps 400, now 1000; warmup 100, now 200", or
// "" when they agree. Compared: comparable_settings (apps/train.h).
static std::string changed_settings(const RunSpec& r) {
  const std::string path = r.dir + "/config.json";
  if (!fs::exists(path)) return "";
  // Read as train --resume would read it (a damaged file is named with the key it lacks).
  const nlohmann::json saved = with_json_file(path, [](const nlohmann::json& j) { return TrainConfig::from_json(j).to_json(); });
  TrainConfig want;
  CLI::App parser{"train"};
  add_train_options(&parser, want);
  parser.add_option("--out", want.out);
  parser.add_flag("--resume", want.resume);
  std::vector<std::string> flags(r.args.begin() + 2, r.args.end());  // after "attnlab train"
  std::reverse(flags.begin(), flags.end());                          // CLI11 takes them last-first
  parser.parse(flags);
  const nlohmann::json asked = comparable_settings(want.to_json()), was = comparable_settings(saved);
  // An unfinished run may be given a new number of steps (train --resume takes --steps); a
  // finished one was trained and scored for the steps it had.
  const bool finished = fs::exists(r.dir + "/results.json");
  std::string diff;
  for (auto& [key, now] : asked.items()) {
    const nlohmann::json before = was.value(key, nlohmann::json());
    if (before != now && (finished || key != "steps"))
      diff += fmt::format("{}{} {}, now {}", diff.empty() ? "" : "; ", key, before.dump(), now.dump());
  }
  return diff;
}

static std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

static void run_compare(const CompareOpts& o) {
  if (!o.report_dir.empty()) {
    fmt::print("report: {}\n", write_report(o.report_dir));
    fmt::print("{}", summary_text(o.report_dir));
    return;
  }
  if (o.out.empty()) throw std::invalid_argument("--out: required (the comparison's directory)");
  const ComparePreset* pre = nullptr;
  for (auto& p : presets())
    if (p.name == o.preset) pre = &p;
  if (!pre) throw std::invalid_argument("--preset: unknown preset '" + o.preset + "' (expected quick, medium, standard or full)");
  std::vector<std::string> variants = o.variants.empty() ? pre->variants : split_commas(o.variants);
  if (variants.empty()) throw std::invalid_argument("--variants '" + o.variants + "': no variant named (e.g. --variants qk,qq)");
  for (auto& v : variants) {
    ModelConfig probe;
    probe.apply_preset(v);  // throws naming the bad variant
  }
  {  // the flags every run will get, checked once here rather than failing in every run
    TrainConfig probe;
    CLI::App check{"train"};
    add_train_options(&check, probe);
    std::vector<std::string> flags = pre->flags;
    flags.insert(flags.end(), o.extra.begin(), o.extra.end());
    std::reverse(flags.begin(), flags.end());  // CLI11 takes the arguments last-first
    try {
      check.parse(flags);
    } catch (const CLI::ParseError& e) {
      std::string unknown;
      for (auto& a : o.extra)
        if (a.rfind("--", 0) == 0 && !check.get_option_no_throw(a.substr(0, a.find('='))))
          unknown += (unknown.empty() ? "" : ", ") + a;
      if (!unknown.empty()) throw std::invalid_argument(fmt::format("--train-args: `attnlab train` has no flag {}", unknown));
      throw std::invalid_argument(fmt::format("--train-args: {}", e.what()));
    }
    probe.validate();
  }
  const int seeds = o.seeds > 0 ? o.seeds : pre->seeds;
  std::error_code ec;
  fs::create_directories(o.out + "/runs", ec);
  if (ec || ::access(o.out.c_str(), W_OK) != 0) throw std::runtime_error("--out " + o.out + ": cannot create or write the directory");
  set_threads(o.threads);

  // One tokenizer for every run: trained here once, from the training split.
  const std::string exe = self_exe();
  std::vector<std::string> data_flags;
  if (!o.corpus.empty()) data_flags = {"--corpus", o.corpus};
  if (!o.task.empty()) data_flags = {"--task", o.task};
  const std::string tok = o.out + "/tokenizer";
  if (!fs::exists(tok + ".model") && !fs::exists(tok + ".symbols")) {
    TrainConfig probe;
    probe.corpus = o.corpus;
    probe.task = o.task;
    for (size_t i = 0; i + 1 < pre->flags.size(); i++)
      if (pre->flags[i] == "--vocab") probe.vocab = std::stoi(pre->flags[i + 1]);
    fmt::print("training the shared tokenizer ({})...\n", o.task.empty() ? "SentencePiece" : "symbols");
    std::fflush(stdout);
    // Built from the same training split each run would read (synthetic tasks: symbols).
    CorpusSplits text;
    if (!o.task.empty()) {
      text.train = synthetic_task(o.task, probe.task_train, probe.seed * 7919);
      Tokenizer::build_symbols([&] {
        auto l = text.train.src;
        l.insert(l.end(), text.train.tgt.begin(), text.train.tgt.end());
        return l;
      }(), tok);
    } else {
      text = load_corpus_dir(o.corpus.empty() ? default_corpus_dir() : o.corpus, probe.src_lang, probe.tgt_lang);
      auto l = text.train.src;
      l.insert(l.end(), text.train.tgt.begin(), text.train.tgt.end());
      Tokenizer::train_sentencepiece(l, probe.vocab, tok, 1);
    }
  }

  // Seed-major order: a grid stopped part way (or run across several sessions) already holds
  // every variant at seed 1 before any variant gets a second seed.
  std::vector<RunSpec> specs;
  for (int s = 1; s <= seeds; s++)
    for (auto& v : variants)
      for (bool matched : {false, true}) {
      if (v == "qk" && matched) continue;
      if (matched && !o.match_params && !pre->also_matched) continue;
      if (!matched && o.match_params && v != "qk" && !pre->also_matched) continue;
      RunSpec r;
      r.name = fmt::format("{}{}-s{}", v, matched ? "+matched" : "", s);
      r.dir = o.out + "/runs/" + r.name;
      r.args = {exe, "train", "--variant", v, "--seed", std::to_string(s), "--out", r.dir, "--tokenizer", tok,
                "--threads", std::to_string(o.threads), "--resume"};
      r.args.insert(r.args.end(), data_flags.begin(), data_flags.end());
      r.args.insert(r.args.end(), pre->flags.begin(), pre->flags.end());
      if (matched) r.args.push_back("--match-params");
      r.args.insert(r.args.end(), o.extra.begin(), o.extra.end());
      specs.push_back(r);
      }

  // Runs already in DIR must be the runs this command describes: a finished one would otherwise
  // be reported as if it were (the quick preset went from 400 to 1,000 steps), and an unfinished
  // one would resume with its own old settings.
  {
    std::string first_diff, stale;
    int n_stale = 0;
    for (auto& r : specs) {
      const std::string diff = changed_settings(r);
      if (diff.empty()) continue;
      if (!n_stale++) first_diff = r.name + ": " + diff;
      stale += " " + shell_quote(r.dir);
    }
    if (n_stale)
      throw std::invalid_argument(fmt::format(
          "--out {}: {} of its runs {} made with other settings than this command asks for ({}); give another --out, "
          "or remove them to train them again (rm -r{})", o.out, n_stale, n_stale == 1 ? "was" : "were", first_diff, stale));
  }

  if (o.plan) {
    std::string plan = "# attnlab compare plan: one command per run; each resumes itself if interrupted.\n"
                       "# Run them anywhere that sees this directory, e.g.\n"
                       "#   parallel --jobs 2 < " + o.out + "/plan.sh            (one machine)\n"
                       "#   parallel --sshlogin host1,host2 --workdir $PWD < " + o.out + "/plan.sh\n"
                       "# then: attnlab compare --report " + o.out + "\n";
    for (auto& r : specs) {
      std::string line;
      for (size_t i = 0; i < r.args.size(); i++) line += (i ? " " : "") + shell_quote(i == 0 ? std::string("attnlab") : r.args[i]);
      plan += line + " > " + shell_quote(r.dir + ".log") + " 2>&1\n";
    }
    write_file_atomic(o.out + "/plan.sh", plan);
    fmt::print("wrote {} ({} runs). Run its lines in any order, then: attnlab compare --report {}\n", o.out + "/plan.sh",
               specs.size(), o.out);
    return;
  }

  // Single-threaded runs side by side use the cores better than one multi-threaded run at a time
  // (small products do not scale across threads); the quick preset runs all three at once.
  const int jobs = o.jobs > 0 ? o.jobs : pre->jobs > 0 ? pre->jobs
                                       : std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, o.threads));
  fmt::print("compare '{}' ({}): {} runs, {} at a time, {} thread(s) each; expected {}\n", pre->name, pre->description,
             specs.size(), jobs, o.threads, pre->expected_time);
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  std::map<pid_t, const RunSpec*> running;
  size_t next = 0, done = 0, failed = 0, stopped = 0;
  struct sigaction sa {}, old_sa{};
  sa.sa_sigaction = on_compare_sigint;
  sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid returns EINTR and the loop sees the flag
  sigemptyset(&sa.sa_mask);
  g_interrupted = 0;
  g_interrupt_from_kill = 0;
  ::sigaction(SIGINT, &sa, &old_sa);
  bool passed_on = false;
  auto launch = [&](const RunSpec& r) {
    if (fs::exists(r.dir + "/results.json")) {
      fmt::print("[{}/{}] {}: finished earlier, skipped\n", ++done, specs.size(), r.name);
      return;
    }
    fs::create_directories(r.dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = r.dir + "/train.log";
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : r.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error(fmt::format("could not start {}: {}", argv[0], std::strerror(rc)));
    running[pid] = &r;
    fmt::print("started {} (log: {})\n", r.name, log);
    std::fflush(stdout);
  };
  while ((next < specs.size() && !g_interrupted) || !running.empty()) {
    while (!g_interrupted && next < specs.size() && int(running.size()) < jobs) launch(specs[next++]);
    if (running.empty()) continue;
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (g_interrupted && g_interrupt_from_kill && !passed_on) {
      for (auto& [child, spec] : running) ::kill(child, SIGINT);
      passed_on = true;
    }
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const RunSpec& r = *it->second;
    running.erase(it);
    const double mins = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60;
    if (g_interrupted && WIFEXITED(status) && WEXITSTATUS(status) == 130) {
      stopped++;
      fmt::print("{} stopped at its last checkpoint ({}/last.json)\n", r.name, r.dir);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(r.dir + "/results.json")) {
      auto res = read_json(r.dir + "/results.json");
      fmt::print("[{}/{}] {} finished at {:.1f} min: valid loss {:.4f}, test BLEU {:.2f}, chrF {:.2f}\n", ++done, specs.size(),
                 r.name, mins, res["valid_loss"].get<double>(), res["test_bleu"].get<double>(), res["test_chrf"].get<double>());
    } else {
      failed++;
      done++;
      fmt::print(stderr, "[{}/{}] {} FAILED (exit {}); see {}/train.log\n", done, specs.size(), r.name,
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), r.dir);
    }
    std::fflush(stdout);
  }
  ::sigaction(SIGINT, &old_sa, nullptr);
  try {
    fmt::print("report: {}\n", write_report(o.out));
    fmt::print("{}", summary_text(o.out));
  } catch (const std::exception&) {
    if (!failed && !g_interrupted) throw;  // with every run failed there is nothing to report; the failure is the news
  }
  if (g_interrupted) {
    fmt::print(stderr, "interrupted: {} of {} runs finished, {} stopped at a checkpoint{}; run the same command again to "
                       "resume\n", done - failed, specs.size(), stopped,
               failed ? fmt::format(", {} failed (their logs are named above)", failed) : "");
    exit_code() = 130;
    return;
  }
  if (failed) throw std::runtime_error(fmt::format("{} of {} runs failed (their logs are named above)", failed, specs.size()));
}

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOpts>();
  std::string help = "train the baseline and the variants on the same data and budget; write a report\n\nPresets:\n";
  for (auto& p : presets()) help += fmt::format("  {:<9} {}\n            {}\n", p.name, p.description, p.expected_time);
  CLI::App* cmd = app.add_subcommand("compare", help);
  cmd->add_option("--preset", o->preset, "quick, medium, standard or full")->check(CLI::IsMember({"quick", "medium", "standard", "full"}));
  cmd->add_option("--out", o->out, "comparison directory (runs/, report.md, CSVs, plots)");
  cmd->add_option("--variants", o->variants, "comma-separated presets to compare (default: the preset's list)");
  cmd->add_option("--seeds", o->seeds, "seeds per variant (default: the preset's)")->check(whole_number(1));
  cmd->add_flag("--match-params", o->match_params, "widen every variant back to the baseline's parameter count");
  cmd->add_option("--corpus", o->corpus, "corpus directory (default: the embedded gettext en-de)");
  cmd->add_option("--task", o->task, "a synthetic task instead of a corpus")->check(CLI::IsMember({"copy", "reverse", "sort"}));
  cmd->add_option("--threads", o->threads, "threads per run")->check(whole_number(1, 1024));
  cmd->add_option("--jobs", o->jobs, "runs at a time (default: cores / threads)")->check(whole_number(1, 1024));
  cmd->add_flag("--plan", o->plan, "write DIR/plan.sh (one command per run, for GNU parallel or a Slurm array) instead of running");
  cmd->add_option("--report", o->report_dir, "only aggregate the finished runs in this directory into its report");
  cmd->add_option("--train-args", o->extra, "further flags passed to every `attnlab train` (e.g. --train-args=--steps,200)")->delimiter(',');
  cmd->callback([o]() { run_compare(*o); });
}

}  // namespace attn
