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
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/ranges.h>

#include "apps/commands.h"
#include "train/frontier.h"
#include "core/fileio.h"
#include "core/threads.h"
#include "core/json_file.h"
#include "data/synthetic.h"
#include "train/trainer.h"

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
  // A width axis (the frontier preset): every variant at every width, with d_ff = 4 d_model and
  // `heads` heads; runs are named <variant>-d<width>-s<seed>. Empty: the flags' one width.
  std::vector<int> widths;
  int heads = 4;
  std::vector<int> baseline_only_widths;  // qk alone at these widths, so every variant lies inside qk's line
  std::vector<std::string> lr_sweep;      // qk, seed 1, at the smallest and largest width, at these rates too
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
       3, false, {}, 4, {}, {}},
      {"medium", "qk, qq, qq-noself; the quick preset's small model, 1500 steps, 3 seeds; greedy decoding of the whole test set",
       "about 35-55 minutes on 2 cores, depending on the CPU (9 runs, three at a time; 15 runs with --match-params)",
       {"qk", "qq", "qq-noself"},
       3,
       concat(small_model, {"--steps", "1500", "--warmup", "200", "--eval-every", "250", "--log-every", "25",
                            "--eval-sentences", "200", "--test-sentences", "0"}),
       3, false, {}, 4, {}, {}},
      {"standard", "qk, qq, qq-noself, qq-normk, qq-enc, qq-dec; the default model (d 256, 3+3 layers), 4000 steps, 3 seeds",
       "about 17 hours on 2 cores: 18 runs of 1.6-2.2 hours, two at a time; spread it over machines with --plan",
       {"qk", "qq", "qq-noself", "qq-normk", "qq-enc", "qq-dec"},
       3,
       {"--steps", "4000", "--warmup", "800", "--lr", "7e-4", "--eval-every", "500", "--log-every", "50",
        "--eval-sentences", "300", "--beam", "5"},
       0, false, {}, 4, {}, {}},
      {"full", "every variant preset (attnlab train --help lists them), each also parameter-matched (--match-params); the default model, 12000 steps, 5 seeds",
       "about 11 days on 2 cores: 95 runs of about 5.5 hours, two at a time; spread it over machines with --plan",
       ModelConfig::preset_names(),
       5,
       {"--steps", "12000", "--warmup", "800", "--lr", "7e-4", "--eval-every", "1000", "--log-every", "100",
        "--eval-sentences", "300", "--beam", "5"},
       0, true, {}, 4, {}, {}},
      // Quality against parameters: one recipe at four widths. 2+2 layers, the quick preset's
      // data, tokenizer and schedule, 2000 steps (at d 256 QQᵀ falls behind QKᵀ near step
      // 1000 and the order is fixed from ~1500, docs/results/standard). Greedy decoding of the
      // whole test set.
      {"frontier", "qk, qq, qq-noself, noV, noO, qq-noV-noO at d_model 64, 128, 256 (4 heads, d_ff 4 d_model, 2+2 layers), "
                   "qk also at d 32; 2000 steps, 2 seeds; qk at lr 7e-4 and 3e-3 too (seed 1, d 64 and 256)",
       "about 10-12 hours on 2 cores, two runs at a time; one run of 2000 steps on one core takes about 10 min at "
       "d 32, 15 min at d 64, 30 min at d 128, 75 min at d 256, 3.5 h at d 512 (--widths ...,512 with --plan)",
       {"qk", "qq", "qq-noself", "noV", "noO", "qq-noV-noO"},
       2,
       {"--enc-layers", "2", "--dec-layers", "2", "--vocab", "4000", "--lr", "1.5e-3", "--batch-tokens", "2048",
        "--steps", "2000", "--warmup", "200", "--eval-every", "250", "--log-every", "25", "--eval-sentences", "100",
        "--test-sentences", "0", "--beam", "1"},
       2,
       false,
       {64, 128, 256},
       4,
       {32},
       {"7e-4", "3e-3"}},
  };
  return p;
}

struct CompareOpts {
  std::string preset = "quick", out, variants, corpus, task, report_dir, widths;
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

// DIR/plan.sh: one shell line per run, for GNU parallel, a shell, or DIR/slurm.sh (a Slurm array
// with one task per line). Every line runs the binary named by $ATTNLAB, by default the one that
// wrote the plan, and first checks that it is there, so that a machine without it says so on
// the terminal instead of inside a run's log.
static void write_plan(const std::string& out, const std::string& exe, const std::vector<RunSpec>& specs) {
  const std::string check = fmt::format(
      "a=\"${{ATTNLAB:-{}}}\"; [ -f \"$a\" ] && [ -x \"$a\" ] || {{ echo \"plan.sh: no attnlab binary at '$a'; set ATTNLAB "
      "to the path of attnlab on this machine\" >&2; exit 127; }}; ",
      exe);
  std::string plan = "# attnlab compare plan: one command per line, one run each; a run resumes itself if interrupted.\n"
                     "# ATTNLAB names the attnlab binary (default: " + exe + ", which wrote this plan).\n"
                     "# Run the lines anywhere that sees this directory, from the directory compare ran in, e.g.\n"
                     "#   ATTNLAB=/path/to/attnlab parallel --jobs 2 < " + out + "/plan.sh                (one machine)\n"
                     "#   parallel --env ATTNLAB --sshlogin host1,host2 --workdir $PWD < " + out + "/plan.sh\n"
                     "#   sbatch " + out + "/slurm.sh                                       (a Slurm array, a task per line)\n"
                     "# then: attnlab compare --report " + out + "\n";
  for (auto& r : specs) {
    std::string line = check + "\"$a\"";
    for (size_t i = 1; i < r.args.size(); i++) line += " " + shell_quote(r.args[i]);
    plan += line + " > " + shell_quote(r.dir + ".log") + " 2>&1\n";
  }
  write_file_atomic(out + "/plan.sh", plan);
  const std::string slurm = fmt::format(
      "#!/bin/sh\n"
      "# A Slurm array with one task per run of {0}/plan.sh. Submit it from the directory compare ran in:\n"
      "#   ATTNLAB=/path/to/attnlab sbatch {0}/slurm.sh\n"
      "#SBATCH --job-name=attnlab-compare\n"
      "#SBATCH --array=1-{1}\n"
      "#SBATCH --cpus-per-task=1\n"
      "#SBATCH --output={0}/slurm-%a.out\n"
      "set -eu\n"
      "task=\"${{SLURM_ARRAY_TASK_ID:?slurm.sh: SLURM_ARRAY_TASK_ID is not set (submit with sbatch, or set it to 1..{1})}}\"\n"
      "line=$(grep -v '^#' {2} | sed -n \"${{task}}p\")\n"
      "[ -n \"$line\" ] || {{ echo \"slurm.sh: {2} has no run number $task (1..{1})\" >&2; exit 2; }}\n"
      "exec sh -c \"$line\"\n",
      out, specs.size(), shell_quote(out + "/plan.sh"));
  write_file_atomic(out + "/slurm.sh", slurm);
  ::chmod((out + "/slurm.sh").c_str(), 0755);
}

static std::vector<int> parse_widths(const std::string& s) {
  std::vector<int> w;
  for (auto& x : split_commas(s)) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(x, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != x.size() || v < 1)
      throw std::invalid_argument("--widths '" + s + "': expected comma-separated model widths (e.g. 64,128,256), got '" + x + "'");
    w.push_back(v);
  }
  std::sort(w.begin(), w.end());
  w.erase(std::unique(w.begin(), w.end()), w.end());
  return w;
}

// The runs of a grid, in the order they start. Seed-major: a grid stopped part way (or run
// across several sessions) already holds every variant at seed 1 before any variant gets a
// second seed; widths ascend within a seed, and a learning-rate sweep follows seed 1.
static std::vector<RunSpec> plan_runs(const ComparePreset& pre, const CompareOpts& o, const std::vector<std::string>& variants,
                                      int seeds, const std::string& exe, const std::string& tok,
                                      const std::vector<std::string>& data_flags) {
  std::vector<int> widths = o.widths.empty() ? pre.widths : parse_widths(o.widths);
  std::vector<int> qk_widths = widths;  // with the baseline-only widths, when qk is in the grid
  if (!widths.empty())
    for (int w : pre.baseline_only_widths)
      if (w < widths.front()) qk_widths.push_back(w);
  std::sort(qk_widths.begin(), qk_widths.end());
  if (widths.empty()) widths = qk_widths = {0};  // 0: the width the flags give

  std::vector<RunSpec> specs;
  auto add = [&](const std::string& v, bool matched, int s, int width, const std::string& lr) {
    RunSpec r;
    r.name = v + (matched ? "+matched" : "") + (width ? fmt::format("-d{}", width) : "") + (lr.empty() ? "" : "-lr" + lr) +
             fmt::format("-s{}", s);
    r.dir = o.out + "/runs/" + r.name;
    r.args = {exe, "train", "--variant", v, "--seed", std::to_string(s), "--out", r.dir, "--tokenizer", tok,
              "--threads", std::to_string(o.threads), "--resume"};
    r.args.insert(r.args.end(), data_flags.begin(), data_flags.end());
    r.args.insert(r.args.end(), pre.flags.begin(), pre.flags.end());
    if (width)
      for (const std::string& f : std::vector<std::string>{"--d-model", std::to_string(width), "--d-ff", std::to_string(4 * width), "--heads",
                            std::to_string(pre.heads)})
        r.args.push_back(f);
    if (!lr.empty()) r.args.insert(r.args.end(), {"--lr", lr});
    if (matched) r.args.push_back("--match-params");
    r.args.insert(r.args.end(), o.extra.begin(), o.extra.end());
    specs.push_back(r);
  };
  const bool has_qk = std::find(variants.begin(), variants.end(), "qk") != variants.end();
  for (int s = 1; s <= seeds; s++) {
    for (int w : qk_widths)
      for (auto& v : variants)
        for (bool matched : {false, true}) {
          if (std::find(widths.begin(), widths.end(), w) == widths.end() && v != "qk") continue;
          if (v == "qk" && matched) continue;
          if (matched && !o.match_params && !pre.also_matched) continue;
          if (!matched && o.match_params && v != "qk" && !pre.also_matched) continue;
          add(v, matched, s, w, "");
        }
    if (s == 1 && has_qk && !pre.lr_sweep.empty())
      for (int w : std::set<int>{widths.front(), widths.back()})
        for (auto& lr : pre.lr_sweep) add("qk", false, 1, w, lr);
  }
  return specs;
}

static void run_compare(const CompareOpts& o) {
  if (!o.report_dir.empty()) {
    fmt::print("report: {}\n", write_grid_report(o.report_dir));
    fmt::print("{}", summary_text(o.report_dir));
    return;
  }
  if (o.out.empty()) throw std::invalid_argument("--out: required (the comparison's directory)");
  const ComparePreset* pre = nullptr;
  for (auto& p : presets())
    if (p.name == o.preset) pre = &p;
  if (!pre) throw std::invalid_argument("--preset: unknown preset '" + o.preset + "'");
  for (int w : parse_widths(o.widths))
    if (w % pre->heads != 0)
      throw std::invalid_argument(fmt::format("--widths {}: {} is not divisible by the preset's {} heads", o.widths, w, pre->heads));
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
    // the vocabulary every run is given: the preset's, or the last --vocab of --train-args
    for (const auto* flags : {&pre->flags, &o.extra})
      for (size_t i = 0; i + 1 < flags->size(); i++)
        if ((*flags)[i] == "--vocab") probe.vocab = std::stoi((*flags)[i + 1]);
    for (auto& a : o.extra)
      if (a.rfind("--vocab=", 0) == 0) probe.vocab = std::stoi(a.substr(8));
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

  const std::vector<RunSpec> specs = plan_runs(*pre, o, variants, seeds, exe, tok, data_flags);

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
    write_plan(o.out, exe, specs);
    fmt::print("wrote {} ({} runs) and {}. Run its lines in any order, then: attnlab compare --report {}\n",
               o.out + "/plan.sh", specs.size(), o.out + "/slurm.sh", o.out);
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
    fmt::print("report: {}\n", write_grid_report(o.out));
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
  std::vector<std::string> names;
  for (auto& p : presets()) names.push_back(p.name);
  cmd->add_option("--preset", o->preset, "the grid: " + fmt::format("{}", fmt::join(names, ", ")))->check(CLI::IsMember(names));
  cmd->add_option("--widths", o->widths, "comma-separated model widths, each with d_ff 4x and the preset's heads (default: "
                                         "the preset's; e.g. --widths 64,128,256,512 --plan)");
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
