// train/report.h — aggregates the runs of a comparison into report.md, CSVs and gnuplot plots.
//
//   write_report("reports/quick");   // reads reports/quick/runs/*/{results.json,metrics.csv,dynamics.csv}
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <attnlab/models/arch.h>

namespace attn {

struct RunSummary {
  std::string name, variant;
  int seed = 0;
  int d_model = 0;   // config.json's model width (after --match-params)
  double lr = 0;     // config.json's peak learning rate
  bool finished = false;
  int64_t params = 0, steps = 0;
  double train_seconds = 0, tokens_per_s = 0, valid_loss = 0, valid_ppl = 0, test_bleu = 0, test_chrf = 0;
  Arch arch = Arch::seq2seq;               // a model that does not translate is scored on the test set by
  double test_accuracy = 0, test_ppl = 0;  // top-1 accuracy (%) and perplexity instead of BLEU/chrF
  std::string build, machine;  // results.json's "attnlab" and "machine"; "not recorded" before they were
  std::string settings;        // comparable_settings(config.json), as JSON text: runs compared must share it
  int until_plateau = 0;       // config.json: trained to the end (train --until-plateau), 0 if not
  int plateaued = -1;          // results.json: 1 stopped on the plateau, 0 reached --steps first, -1 not recorded
  std::vector<std::string> stretches;  // results.json's segments when they ran on more than one build or machine:
                                       // "steps 0–2000: attnlab 0.1.0 (commit x) on vm, ..." (else empty)
};

// Reads every run under dir/runs. Unfinished runs are listed but not aggregated. A folder there
// without config.json is not a run: it is named in *left_out (with why) rather than read.
// Refused, naming the file (a runtime_error): results.json values out of their range (steps < 1,
// a BLEU outside [0, 100], ...); runs of more than one architecture (an lm among translation
// runs would turn BLEU into accuracy); two runs of one variant, seed and settings (a copy
// counted as a second seed).
std::vector<RunSummary> read_runs(const std::string& dir, std::vector<std::string>* left_out = nullptr);
// A loss as typed ("2.0"): the text labels the report's rows, the value is read.
struct Level {
  std::string text;
  double value = 0;
};
// What a report is asked beyond its runs (compare --report's options).
struct ReportOptions {
  int64_t gap_from = 2000;    // runs trained to the end: the step the end's gap is compared with (below)
  std::vector<Level> at_loss;  // compare --at-loss: the baseline's losses L at which each variant's gap is read
};
// Writes dir/report.md (+ summary.csv, curves.csv, dynamics.csv, plots.gp, *.png). Returns the
// report's path. `baseline` is the variant the others are compared with.
std::string write_report(const std::string& dir, const std::string& baseline = "qk", const std::string& title = "",
                         const ReportOptions& opts = {});
// The report's answer in a few plain lines for the terminal: per variant, seeds, validation loss
// and test BLEU (means) with their difference from the baseline, and whether that difference is
// beyond the seed-to-seed spread. Written to dir/summary.txt by write_report.
std::string summary_text(const std::string& dir);

// Trained to the end (docs/results.md §8): does a variant's gap to the baseline close, hold or grow
// between a reference step (compare --gap-from; §8's is 2,000, where the frontier grid's
// fixed-length runs stop) and the end? g0 and g_end are differences of mean validation losses
// (variant − baseline), spread0 and spread_end the sums of the two sides' seed standard
// deviations there. It closes when g_end < g0 − (spread_end + spread0), grows when g_end > g0 +
// (spread_end + spread0), and holds otherwise (the boundary holds). With one seed on either side
// the spread is unknown: unconfirmed (§8 does not say; a single run's gap is not read as a change).
// At equal progress (docs/results.md §4, §7): a validation curve (step -> loss) read between its
// evaluations, linearly. step_at_loss: the first step where the curve reaches `level` (its loss at
// or below it), between the last evaluation above and the first at or below; nothing if it never
// does, or if its first evaluation is already at or below (where it crossed is not known).
// loss_at_step: the curve at `step`; nothing outside its evaluated steps. The gap of a variant at
// L is loss_at_step(variant, step_at_loss(baseline, L)) − L.
std::optional<double> step_at_loss(const std::map<double, double>& curve, double level);
std::optional<double> loss_at_step(const std::map<double, double>& curve, double step);

enum class GapChange { Closes, Holds, Grows, Unconfirmed };
GapChange gap_change(double g0, double spread0, double g_end, double spread_end, int n_variant, int n_baseline);
const char* gap_change_name(GapChange c);  // "closes", "holds", "grows", "unconfirmed"

// Mean and sample standard deviation (0 for one value).
struct Stat {
  double mean = 0, std = 0;
  int n = 0;
};
Stat stat(const std::vector<double>& v);
std::string pm(const Stat& s, int prec);  // "2.5140 ± 0.0123", "2.5140" for one value, "—" for none

}  // namespace attn
