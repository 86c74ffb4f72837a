// train/grid.cpp — grid presets, planning, job files, the shared tokenizer, running a grid.
#include <attnlab/train/grid.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/train/trainer.h>

extern char** environ;

namespace attn {
namespace fs = std::filesystem;

// The presets. Expected times are for a 2-core laptop-class machine (measured, docs/benchmarks.md).
static std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<GridPreset>& grid_presets() {
  // The small model of the quick and medium presets: trains at ~1500 target tokens/s per thread.
  static const std::vector<std::string> small_model = {"--d-model", "128", "--heads", "4", "--enc-layers", "2",
                                                        "--dec-layers", "2", "--d-ff", "512", "--vocab", "4000",
                                                        "--lr", "1.5e-3", "--batch-tokens", "2048", "--beam", "1"};
  static const std::vector<GridPreset> p = {
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
       3, false, {}, 4, {}, {},
       "about 5 minutes on 2 cores for --arch lm and for --arch mlm (4 layers; measured for lm alone on the machine: "
       "319 s, Intel Xeon VM, 2026-11-30; 544 s and 536 s while two other runs shared the cores)"},
      {"medium", "qk, qq, qq-noself; the quick preset's small model, 1500 steps, 3 seeds; greedy decoding of the whole test set",
       "about 35-55 minutes on 2 cores, depending on the CPU (9 runs, three at a time; 15 runs with --match-params)",
       {"qk", "qq", "qq-noself"},
       3,
       concat(small_model, {"--steps", "1500", "--warmup", "200", "--eval-every", "250", "--log-every", "25",
                            "--eval-sentences", "200", "--test-sentences", "0"}),
       3, false, {}, 4, {}, {},
       "about 25 minutes on 2 cores for --arch lm and for --arch mlm (9 runs of 1500 steps; measured: 4.8-5.8 minutes "
       "a run, two side by side, Intel Xeon VM, 2026-11-30)"},
      {"standard", "qk, qq, qq-noself, qq-normk, qq-enc, qq-dec; the default model (d 256, 3+3 layers), 4000 steps, 3 seeds",
       "about 17 hours on 2 cores: 18 runs of 1.6-2.2 hours, two at a time; spread it over machines with --plan",
       {"qk", "qq", "qq-noself", "qq-normk", "qq-enc", "qq-dec"},
       3,
       {"--steps", "4000", "--warmup", "800", "--lr", "7e-4", "--eval-every", "500", "--log-every", "50",
        "--eval-sentences", "300", "--beam", "5"},
       0, false, {}, 4, {}, {},
       "about 6 hours on 2 cores for --arch lm or mlm: 12 runs (qk, qq, qq-noself, qq-normk x 3 seeds) of a 6-layer "
       "d 256 model for 4000 steps, about an hour each two side by side (measured for lm: 0.84 s a step over 100 "
       "steps, Intel Xeon VM, 2026-11-30; mlm has the same blocks); spread it over machines with --plan"},
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
       "about 6 hours on 2 cores, two runs at a time (measured: 42 runs, 11.2 hours of training summed, Intel Xeon VM, "
       "2026-11-30; --seeds 3: about 3 more); a 2000-step run, two side by side, took 3-6 min at d 32, 5-11 at d 64, "
       "10-13 at d 128 and 16-42 at d 256; at d 512 (--widths 64,128,256,512 --plan) about 2 hours a run (measured: "
       "five 2000-step runs, 108-126 min of training each, two side by side at 1 thread each, AMD EPYC VM, 2026-12-05). "
       "--tune-lr 1.5e-3,3e-3,6e-3 adds about 8 hours: 66 more runs, 16.5 hours summed (AMD EPYC VM, 2026-12-04/05)",
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

const GridPreset& grid_preset(const std::string& name) {
  for (auto& p : grid_presets())
    if (p.name == name) return p;
  throw UsageError("--preset: unknown preset '" + name + "'");
}

std::string shell_quote(const std::string& s) {
  if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+,:") == std::string::npos) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

std::vector<int> parse_widths(const std::string& s) {
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
      throw UsageError("--widths '" + s + "': expected comma-separated model widths (e.g. 64,128,256), got '" + x + "'");
    w.push_back(v);
  }
  std::sort(w.begin(), w.end());
  w.erase(std::unique(w.begin(), w.end()), w.end());
  return w;
}

// The runs of a grid, in the order they start. Seed-major: a grid stopped part way (or run
// across several sessions) already holds every variant at seed 1 before any variant gets a
// second seed; widths ascend within a seed, and a learning-rate sweep follows seed 1.
std::vector<std::string> grid_variants(const GridPreset& pre, const GridOptions& o) {
  if (!o.variants.empty()) return o.variants;
  std::vector<std::string> out;
  std::set<std::string> sites;  // an lm's decoder (mlm's encoder) self-attention specs so far
  const ArchTraits& a = traits(o.arch);
  for (auto& v : pre.variants) {
    ModelConfig probe;
    probe.arch = o.arch;
    try {
      probe.apply_preset(v);
    } catch (const UsageError&) {  // qq-enc in an lm: nothing to change there
      continue;
    }
    // qq-dec in an lm is qq again: one of them
    if (a.translates() || sites.insert((a.has_decoder ? probe.dec_self : probe.enc_self).str()).second) out.push_back(v);
  }
  return out;
}

// The widths of a grid: the preset's or --widths, checked against the heads ({0}: the flags' width).
static std::vector<int> grid_widths(const GridPreset& pre, const GridOptions& o) {
  std::vector<int> widths = o.widths.empty() ? pre.widths : parse_widths(o.widths);
  for (int w : widths)
    if (w % pre.heads != 0)
      throw UsageError(fmt::format("--widths {}: {} is not divisible by the preset's {} heads", o.widths, w, pre.heads));
  return widths.empty() ? std::vector<int>{0} : widths;
}

std::vector<GridCell> grid_cells(const GridPreset& pre, const GridOptions& o) {
  const std::vector<std::string> variants = grid_variants(pre, o);
  if (variants.empty()) throw UsageError("--variants: no variant named (e.g. --variants qk,qq)");
  for (auto& v : variants) {
    ModelConfig probe;
    probe.arch = o.arch;
    try {
      probe.apply_preset(v);
    } catch (const UsageError& e) {  // "--variant: unknown variant 'zz' ...", named as compare's flag
      std::string what = e.what();
      if (what.rfind("--variant: ", 0) == 0) what = what.substr(11);
      throw UsageError("--variants: " + what);
    }
  }
  const std::vector<int> widths = grid_widths(pre, o);
  std::vector<int> qk_widths = widths;  // with the baseline-only widths, when qk is in the grid
  if (widths.front() != 0)
    for (int w : pre.baseline_only_widths)
      if (w < widths.front()) qk_widths.push_back(w);
  std::sort(qk_widths.begin(), qk_widths.end());
  std::vector<GridCell> cells;
  for (int w : qk_widths)
    for (auto& v : variants) {
      if (std::find(widths.begin(), widths.end(), w) == widths.end() && v != "qk") continue;
      cells.push_back({v, w});
    }
  return cells;
}

RunSpec grid_run(const GridPreset& pre, const GridOptions& o, const std::string& v, bool matched, int s, int width,
                 const std::string& lr) {
  const std::string tok = o.out + "/tokenizer";
  std::vector<std::string> data_flags;
  if (!o.corpus.empty()) data_flags = {"--corpus", o.corpus};
  if (!o.task.empty()) data_flags = {"--task", o.task};
  std::vector<std::string> arch_flags;  // an lm (mlm) has the encoder's and the decoder's layers in one stack
  if (const ArchTraits& a = traits(o.arch); !a.translates())
    arch_flags = {"--arch", a.name, a.has_decoder ? "--dec-layers" : "--enc-layers",
                  std::to_string(o.train.model.enc_layers + o.train.model.dec_layers)};
  RunSpec r;
  r.name = v + (matched ? "+matched" : "") + (width ? fmt::format("-d{}", width) : "") + (lr.empty() ? "" : "-lr" + lr) +
           fmt::format("-s{}", s);
  r.dir = o.out + "/runs/" + r.name;
  r.args = {o.exe, "train", "--variant", v, "--seed", std::to_string(s), "--out", r.dir, "--tokenizer", tok,
            "--threads", std::to_string(o.threads), "--resume"};
  r.args.insert(r.args.end(), data_flags.begin(), data_flags.end());
  for (size_t i = 0; i < pre.flags.size(); i++) {  // only the preset's flags that apply to this architecture
    const bool value_follows = i + 1 < pre.flags.size() && pre.flags[i + 1].rfind("--", 0) != 0;
    if (!flag_not_applying(pre.flags[i], o.arch).empty()) {
      i += value_follows;
      continue;
    }
    r.args.push_back(pre.flags[i]);
  }
  r.args.insert(r.args.end(), arch_flags.begin(), arch_flags.end());
  if (width)
    for (const std::string& f : std::vector<std::string>{"--d-model", std::to_string(width), "--d-ff", std::to_string(4 * width),
                                                         "--heads", std::to_string(pre.heads)})
      r.args.push_back(f);
  if (!lr.empty()) r.args.insert(r.args.end(), {"--lr", lr});
  if (matched) r.args.push_back("--match-params");
  r.args.insert(r.args.end(), o.extra.begin(), o.extra.end());
  return r;
}

std::vector<RunSpec> plan_grid(const GridPreset& pre, const GridOptions& o) {
  const std::vector<GridCell> cells = grid_cells(pre, o);
  const std::vector<int> widths = grid_widths(pre, o);
  const std::vector<std::string> variants = grid_variants(pre, o);
  const int seeds = o.seeds > 0 ? o.seeds : pre.seeds;
  std::vector<RunSpec> specs;
  const bool has_qk = std::find(variants.begin(), variants.end(), "qk") != variants.end();
  for (int s = 1; s <= seeds; s++) {
    for (const GridCell& c : cells)
      for (bool matched : {false, true}) {
        if (c.variant == "qk" && matched) continue;
        if (matched && !o.match_params && !pre.also_matched) continue;
        if (!matched && o.match_params && c.variant != "qk" && !pre.also_matched) continue;
        specs.push_back(grid_run(pre, o, c.variant, matched, s, c.width, ""));
      }
    if (s == 1 && has_qk && !pre.lr_sweep.empty())
      for (int w : std::set<int>{widths.front(), widths.back()})
        for (auto& lr : pre.lr_sweep) specs.push_back(grid_run(pre, o, "qk", false, 1, w, lr));
  }
  return specs;
}

// DIR/plan.sh: one shell line per run, for GNU parallel, a shell, or DIR/slurm.sh (a Slurm array
// with one task per line). Every line runs the binary named by $ATTNLAB, by default the one that
// wrote the plan, and first checks that it is there, so that a machine without it says so on
// the terminal instead of inside a run's log.
void write_plan(const std::string& out, const std::string& exe, const std::vector<RunSpec>& specs) {
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

// A run directory made earlier with other settings than this command gives it (a preset that
// changed between versions, other --train-args): "steps 400, now 1000; warmup 100, now 200", or
// "" when they agree. Compared: comparable_settings (train/config.h).
static std::string changed_settings(const RunSpec& r, const ParseTrainFlags& parse) {
  const std::string path = r.dir + "/config.json";
  if (!fs::exists(path)) return "";
  // Read as train --resume would read it (a damaged file is named with the key it lacks).
  const nlohmann::json saved = with_json_file(path, [](const nlohmann::json& j) { return TrainConfig::from_json(j).to_json(); });
  const TrainConfig want = parse(std::vector<std::string>(r.args.begin() + 2, r.args.end()));  // after "attnlab train"
  const nlohmann::json asked = comparable_settings(want.to_json()), was = comparable_settings(saved);
  // An unfinished run may be given a new number of steps (train --resume takes --steps); a
  // finished one was trained and scored for the steps it had.
  const bool finished = fs::exists(r.dir + "/results.json");
  std::string diff;
  for (auto& [key, now] : asked.items()) {
    const nlohmann::json before = was.value(key, nlohmann::json());
    if (before != now && (finished || key != "steps"))
      diff += fmt::format("{}{} {}, now {}", diff.empty() ? "" : "; ", key, human(before), human(now));
  }
  return diff;
}

std::string stale_runs(const std::string& out, const std::vector<RunSpec>& specs, const ParseTrainFlags& parse) {
  std::string first_diff, stale;
  int n_stale = 0;
  for (auto& r : specs) {
    const std::string diff = changed_settings(r, parse);
    if (diff.empty()) continue;
    if (!n_stale++) first_diff = r.name + ": " + diff;
    stale += " " + shell_quote(r.dir);
  }
  if (!n_stale) return "";
  return fmt::format("--out {}: {} of its runs {} made with other settings than this command asks for ({}); give another "
                     "--out, or remove them to train them again (rm -r{})", out, n_stale, n_stale == 1 ? "was" : "were",
                     first_diff, stale);
}

void ensure_shared_tokenizer(const GridOptions& o, const std::function<void(const std::string&)>& note) {
  const std::string tok = o.out + "/tokenizer";
  const TrainConfig& probe = o.train;  // vocabulary, languages and task size as every run gets them
  if (fs::exists(tok + ".model") || fs::exists(tok + ".symbols")) {
    if (o.task.empty()) check_tokenizer_settings(tok, probe.vocab, true);
    return;
  }
  note(fmt::format("training the shared tokenizer ({})...", o.task.empty() ? "SentencePiece" : "symbols"));
  // Built from the same training split each run would read (synthetic tasks: symbols).
  CorpusSplits text;
  if (!o.task.empty()) text.train = synthetic_task(o.task, probe.task_train, probe.seed * 7919);
  else {
    const std::string dir = o.corpus.empty() ? default_corpus_dir() : o.corpus;
    text = load_corpus_dir(dir, probe.src_lang, probe.tgt_lang);
    require_usable(text.valid, dir, "valid");  // as each run would refuse it, before the tokenizer
  }
  auto lines = text.train.src;
  lines.insert(lines.end(), text.train.tgt.begin(), text.train.tgt.end());
  if (!o.task.empty()) Tokenizer::build_symbols(lines, tok);
  else {
    Tokenizer::train_sentencepiece(lines, probe.vocab, tok, 1);
    record_tokenizer_settings(tok, probe.vocab);
  }
}

// ---- running ---------------------------------------------------------------------------

// Starts one `attnlab train`, its output appended to the run's train.log. The child gets
// SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG, which follows the forking
// thread, not the process: run_grid forks from the thread that waits), so a grid killed with
// kill -9 takes its runs down with it, each at a checkpoint, instead of leaving them writing.
static pid_t launch(const RunSpec& r) {
  fs::create_directories(r.dir);
  const std::string log = r.dir + "/train.log";
  std::vector<char*> argv;
  for (auto& a : r.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  int report[2];  // the child writes errno here when exec fails; closed on a successful exec
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("could not start {}: {}", argv[0], std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(report[0]), ::close(report[1]);
    throw std::runtime_error(fmt::format("could not start {}: {}", argv[0], std::strerror(err)));
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    int err = 0;
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) err = ECHILD;  // the grid already gone
    const int fd = err ? -1 : ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (!err && (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0 || ::dup2(fd, STDERR_FILENO) < 0)) err = errno;
    if (!err) {
      ::execve(argv[0], argv.data(), environ);
      err = errno;
    }
    [[maybe_unused]] ssize_t n = ::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  while ((n = ::read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == ssize_t(sizeof err)) {
    int status;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error(fmt::format("could not start {}: {}", argv[0], std::strerror(err)));
  }
  return pid;
}

GridOutcome run_grid(const std::vector<RunSpec>& specs, int jobs, const std::function<void(const GridEvent&)>& on_event,
                     const volatile std::sig_atomic_t* interrupted, const volatile std::sig_atomic_t* from_kill) {
  const auto t0 = std::chrono::steady_clock::now();
  GridOutcome out;
  std::map<pid_t, const RunSpec*> running;
  size_t next = 0;
  bool passed_on = false;
  auto event = [&](GridEvent::Kind kind, const RunSpec& r) {
    GridEvent e;
    e.kind = kind;
    e.run = &r;
    e.done = out.done;
    e.total = specs.size();
    e.minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60;
    return e;
  };
  while ((next < specs.size() && !*interrupted) || !running.empty()) {
    while (!*interrupted && next < specs.size() && int(running.size()) < jobs) {
      const RunSpec& r = specs[next++];
      if (fs::exists(r.dir + "/results.json")) {
        out.done++;
        on_event(event(GridEvent::Kind::Skipped, r));
        continue;
      }
      running[launch(r)] = &r;
      on_event(event(GridEvent::Kind::Started, r));
    }
    if (running.empty()) continue;
    // Waits for one of this grid's own runs, by pid: waitpid(-1) would also reap children the
    // host program started for itself. Runs take minutes, so a look every 100 ms costs nothing;
    // a signal cuts the sleep short.
    int status = 0;
    pid_t pid = 0;
    for (auto& [child, spec] : running) {
      const pid_t w = ::waitpid(child, &status, WNOHANG);
      if (w == child) {
        pid = child;
        break;
      }
      if (w < 0 && errno == ECHILD) {  // reaped by someone else (a host's SIGCHLD handler): judged by its files
        pid = child, status = 0;
        break;
      }
    }
    if (*interrupted && *from_kill && !passed_on) {
      for (auto& [child, spec] : running) ::kill(child, int(*interrupted));
      passed_on = true;
    }
    if (pid == 0) {
      ::usleep(100 * 1000);
      continue;
    }
    auto it = running.find(pid);
    const RunSpec& r = *it->second;
    running.erase(it);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (*interrupted && (code == 128 + SIGINT || code == 128 + SIGTERM || code == 128 + SIGHUP)) {
      out.stopped++;
      on_event(event(GridEvent::Kind::Stopped, r));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(r.dir + "/results.json")) {
      out.done++;
      GridEvent e = event(GridEvent::Kind::Finished, r);
      e.results = read_json(r.dir + "/results.json");
      on_event(e);
    } else {
      out.failed++;
      out.done++;
      GridEvent e = event(GridEvent::Kind::Failed, r);
      e.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      on_event(e);
    }
  }
  out.interrupted = *interrupted;
  return out;
}

}  // namespace attn
