// train/frontier.h — quality against parameters across model widths: each variant's distance
// from the baseline's curve (its frontier), and whether training ran long enough for the
// variants' order to settle.
//
// A width grid (compare --preset frontier) trains every variant at several d_model. Its report
// puts validation loss and test BLEU against parameter count (log axis) and against the
// products' floating-point operations per target token, interpolates the baseline (qk) between
// its widths, and says for every variant at every width whether it lies above (worse), on, or
// below (better) that line:
//   write_frontier_report("reports/frontier");   // report.md, frontier.csv, plots/, widths/d<W>/
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <attnlab/models/transformer.h>
#include <attnlab/train/report.h>

namespace attn {

// The baseline's loss at `params`, linear in log(params) between its two nearest widths.
// `points` are (params, value), any order. Outside the points' range: nullopt (no extrapolation).
std::optional<double> interpolate_log_params(std::vector<std::pair<double, double>> points, double params);

// The rule, stated in the report: d = variant's mean loss − the frontier's loss at the variant's
// parameter count, spread = the variant's seed standard deviation + the frontier's (interpolated
// the same way). Above (worse) when d > spread, below (better) when d < −spread, on the frontier
// otherwise; unconfirmed when either side has a single seed (no spread); outside when the
// variant's parameter count is beyond the baseline's widths.
enum class FrontierVerdict { Above, On, Below, Unconfirmed, Outside };
FrontierVerdict frontier_verdict(std::optional<double> d, double spread, int n_variant, int n_baseline);
const char* verdict_name(FrontierVerdict v);  // "above (worse)", "on", ...

// One variant's validation loss at one width: the mean over seeds at each evaluated step, and
// the final loss's mean and spread.
struct LossCurve {
  std::map<int64_t, double> mean;  // step -> mean valid loss over seeds
  double final_mean = 0, final_std = 0;
  int seeds = 0;
};
// The order has settled when no pair of variants whose final difference exceeds their seed
// spread (the sum of their standard deviations) is in the other order at any evaluation in the
// last third of training (steps >= 2/3 of the last). `detail` names the pairs that swapped.
struct Settlement {
  bool settled = true;
  std::string detail;
};
Settlement order_settled(const std::map<std::string, LossCurve>& curves);

// Floating-point operations of one training step's products (forward and backward, as `attnlab
// bench` counts them) per target token, on a batch of `batch` pairs of `len` source and `len`
// target tokens.
double train_flops_per_target_token(ModelConfig cfg, int len = 24, int batch = 8);

// True when the finished runs under dir/runs were trained at more than one model width.
bool is_width_grid(const std::vector<RunSummary>& runs);
// Writes dir/report.md (the frontier report), dir/summary.csv, dir/frontier.csv, dir/sweep.csv,
// dir/summary.txt, dir/plots/, and for each width with more than one variant a full comparison
// report in dir/widths/d<W>/ (its runs linked there). Returns the report's path.
// opts: passed to each width's report (write_report).
std::string write_frontier_report(const std::string& dir, const std::string& baseline = "qk", const ReportOptions& opts = {});
// The frontier report for a width grid, the comparison report (train/report.h) otherwise.
std::string write_grid_report(const std::string& dir, const std::string& baseline = "qk", const ReportOptions& opts = {});

}  // namespace attn
