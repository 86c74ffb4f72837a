// train/grid.h — a grid of training runs: the same recipe trained as every variant (and
// width) over several seeds, each run an `attnlab train` process writing DIR/runs/<name>.
//
// The grid presets (quick, medium, standard, full, frontier) are one table here; compare's
// help, its checks and its plans read it. A grid is planned (plan_grid), checked against the
// runs already in its directory (stale_runs), then either written out as a job file
// (write_plan: plan.sh for GNU parallel or a shell, slurm.sh for a Slurm array) or run here
// (run_grid: a few at a time, finished runs skipped, unfinished ones resumed).
//   GridOptions o;  o.preset = "quick";  o.out = "reports/quick";  o.exe = "/path/to/attnlab";
//   const GridPreset& p = grid_preset(o.preset);
//   ensure_shared_tokenizer(o, note);
//   std::vector<RunSpec> runs = plan_grid(p, o);
//   GridOutcome r = run_grid(runs, 2, on_event, &interrupted, &from_kill);
#pragma once
#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <attnlab/train/config.h>

namespace attn {

struct GridPreset {
  std::string name, description, expected_time;
  std::vector<std::string> variants;
  int seeds;
  std::vector<std::string> flags;  // passed to every `attnlab train`
  int jobs = 0;                    // runs at a time (0: cores / threads per run)
  bool also_matched = false;       // every variant also in a parameter-matched version
  // A width axis (the frontier preset): every variant at every width, with d_ff = 4 d_model and
  // `heads` heads; runs are named <variant>-d<width>-s<seed>. Empty: the flags' one width.
  std::vector<int> widths = {};
  int heads = 4;
  std::vector<int> baseline_only_widths = {};  // qk alone at these widths, so every variant lies inside qk's line
  std::vector<std::string> lr_sweep = {};      // qk, seed 1, at the smallest and largest width, at these rates too
  std::string lm_expected_time = "not measured";  // with --arch lm or mlm
};
const std::vector<GridPreset>& grid_presets();
const GridPreset& grid_preset(const std::string& name);  // throws naming --preset

struct GridOptions {
  std::string preset = "quick", out, corpus, task;
  // lm or mlm: the preset's recipe as a decoder-only (encoder-only) model with as many layers as
  // the translation model's encoder and decoder together, and those of its variants that change
  // the self-attention it has. seq2seq: the preset's translation model itself.
  Arch arch = Arch::seq2seq;
  std::string widths;                   // "64,128,256": instead of the preset's
  std::vector<std::string> variants;    // empty: the preset's
  int seeds = 0, threads = 1;           // seeds 0: the preset's
  bool match_params = false;
  std::string tune_lr;                  // "1.5e-3,3e-3,6e-3": each cell at its own best rate (train/tune.h)
  std::vector<std::string> extra;       // further train flags
  TrainConfig train;                    // the settings every run gets (the preset's flags and `extra`, parsed)
  std::string exe = "attnlab";          // the attnlab binary the runs start
};

struct RunSpec {
  std::string name, dir;
  std::vector<std::string> args;  // argv of `attnlab train ...`
};

std::vector<std::string> split_commas(const std::string& s);
std::vector<int> parse_widths(const std::string& s);  // throws naming --widths
std::string shell_quote(const std::string& s);

// The variants a grid trains: --variants, else the preset's (for an lm or mlm those that change
// its self-attention).
std::vector<std::string> grid_variants(const GridPreset& pre, const GridOptions& o);
// The runs of the grid in the order they start (checks the variants and widths first). o.train
// must hold the preset's flags and o.extra, parsed (an lm's layers are counted from them).
std::vector<RunSpec> plan_grid(const GridPreset& pre, const GridOptions& o);
// One (variant, width) of a grid; width 0: the flags' own.
struct GridCell {
  std::string variant;
  int width = 0;
};
// The grid's cells in plan order: by width, the variants in order; qk also at the preset's
// baseline-only widths below the others (checks the variants and widths).
std::vector<GridCell> grid_cells(const GridPreset& pre, const GridOptions& o);
// One run of the grid: <variant>[+matched][-d<width>][-lr<lr>]-s<seed>, at `lr` as typed ("": the
// preset's rate), the preset's flags then o.extra (later flags win).
RunSpec grid_run(const GridPreset& pre, const GridOptions& o, const std::string& variant, bool matched, int seed,
                 int width, const std::string& lr);
// Trains DIR/tokenizer once, from the training split every run reads, unless it is there.
void ensure_shared_tokenizer(const GridOptions& o, const std::function<void(const std::string&)>& note);

// How a command line of `attnlab train` flags becomes a TrainConfig (the CLI's parser).
using ParseTrainFlags = std::function<TrainConfig(const std::vector<std::string>& flags)>;
// Runs already in DIR must be the runs the grid describes: "" when they are, else the error
// naming how many were made with other settings, the first difference and how to remove them.
std::string stale_runs(const std::string& out, const std::vector<RunSpec>& specs, const ParseTrainFlags& parse);
// DIR/plan.sh (one shell line per run, each running $ATTNLAB, by default `exe`, after checking
// it is there) and DIR/slurm.sh (a Slurm array, one task per plan line).
void write_plan(const std::string& out, const std::string& exe, const std::vector<RunSpec>& specs);

struct GridEvent {
  enum class Kind { Skipped, Started, Finished, Failed, Stopped } kind = Kind::Started;
  const RunSpec* run = nullptr;
  size_t done = 0, total = 0;  // runs done (finished, skipped or failed) so far, of total
  double minutes = 0;          // since the grid started
  int exit_code = 0;           // Failed
  nlohmann::json results;      // Finished: the run's results.json
};
struct GridOutcome {
  size_t done = 0, failed = 0, stopped = 0;
  bool interrupted = false;
};
// Runs the specs `jobs` at a time, each as a process with its output in <run>/train.log;
// finished runs (results.json) are skipped. When *interrupted becomes set (to the signal's
// number: SIGINT, SIGTERM or SIGHUP) no new run starts; with *from_kill also set (a signal sent
// to this process alone) the same signal is passed on to the runs, which save a checkpoint and
// stop with 128 + it.
GridOutcome run_grid(const std::vector<RunSpec>& specs, int jobs, const std::function<void(const GridEvent&)>& on_event,
                     const volatile std::sig_atomic_t* interrupted, const volatile std::sig_atomic_t* from_kill);

}  // namespace attn
