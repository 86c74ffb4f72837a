// train/tune.h — each variant at its own best learning rate (compare --tune-lr): the rules of
// the rate sweep, the runs they call for, and the selection the report reads.
//
// The rules, fixed before any run (docs/results.md §6), applied to finished runs only:
//  - every (variant, width) is trained with seed 1 at the rates given, lowest first;
//  - the best rate is the one with the lowest validation loss at the budget; a diverged run (it
//    stopped on a NaN, or ended above its first evaluation's loss) ranks worst;
//  - a higher rate is skipped once the next lower one was worse than the one below it, and it
//    waits while either of those two has not finished;
//  - when the best is the highest rate given, its doubling is tried too, once; a best that is
//    then the highest rate tried is "at the edge of the sweep";
//  - the other seeds (2 .. --seeds) are trained at the best rate once the sweep has settled.
//   std::vector<Rate> rates = parse_rates("1.5e-3,3e-3,6e-3", "--tune-lr");
//   Sweep s = sweep_state(rates, [&](const Rate& r) { return run_outcome(dir_of(r)); });
//   if (s.settled) ... s.best ...
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <attnlab/train/grid.h>

namespace attn {

// A learning rate as typed ("1.5e-3"): the text names runs, the value orders and matches them.
struct Rate {
  std::string text;
  double value = 0;
};
// "1.5e-3,3e-3,6e-3" -> ascending, distinct, each > 0; throws a UsageError naming `flag`.
std::vector<Rate> parse_rates(const std::string& list, const char* flag);
// "2.4,2.0,1.8" -> each a finite number > 0, as typed (spaces around it dropped) and in the order
// given; throws a UsageError naming `flag`, what the numbers are ("validation losses") and an
// example list, for an empty list or item too.
std::vector<Rate> parse_positive_numbers(const std::string& list, const char* flag, const char* what, const char* example);
// Twice the rate, written as the sweep's names write rates: "6e-3" -> "1.2e-2", "3e-3" -> "6e-3".
Rate doubled(const Rate& r);

// What a run at one rate came to.
struct RateOutcome {
  enum class State { not_run, finished, diverged } state = State::not_run;
  double loss = 0;  // finished: validation loss at the budget
};
// A run directory's outcome: not_run without results.json (unless it stopped diverged:
// diverged.json), diverged when its loss is not finite or above its first evaluation's.
RateOutcome run_outcome(const std::string& run_dir);

// One (variant, width)'s sweep as the rules leave it, given the outcomes so far.
struct Sweep {
  struct Tried {
    Rate rate;
    RateOutcome outcome;
  };
  std::vector<Tried> tried;               // finished or diverged, ascending
  std::vector<Rate> to_run, waiting, skipped;
  bool doubling = false;                  // the rules added the doubling of the highest rate given
  bool settled = false;                   // every seed-1 run the rules call for is done
  Rate best;                              // settled: the lowest loss (ties: the lower rate)
  bool at_edge = false;                   // settled, and best is the highest rate tried
  bool at_low_edge = false;               // settled, and best is the lowest rate given
};
Sweep sweep_state(const std::vector<Rate>& rates, const std::function<RateOutcome(const Rate&)>& outcome);

// The rules in a few sentences, with the rates: for the report and for --plan's output.
std::string tuning_rules(const std::vector<Rate>& rates);

// The preset's own learning rate as its flags, then --train-args, give it ("": none given).
std::string grid_recipe_lr(const GridPreset& pre, const GridOptions& o);

// The runs a tuned grid calls for now: every cell's seed-1 sweep runs whose turn has come, then
// the other seeds at the best rate of each settled cell. A run at the preset's own rate has the
// grid's usual name (so the preset's runs count); others are <variant>-d<width>-lr<rate>-s<seed>.
struct TunedPlan {
  std::vector<RunSpec> specs;  // to run (finished ones included: the grid skips them)
  int waiting = 0;             // seed-1 runs that wait for lower rates' results
  int settled = 0, cells = 0;  // cells whose sweep has settled, of all
  int pending = 0;             // specs without a result yet
};
TunedPlan plan_tuned_grid(const GridPreset& pre, const GridOptions& o, const std::vector<Rate>& rates);

// DIR/tune.json: the rates and the preset's own rate, written by compare --tune-lr and read by the
// report (read_tune_file: empty rates when the grid was not tuned).
void write_tune_file(const std::string& dir, const std::vector<Rate>& rates, const std::string& recipe_lr);
struct TuneFile {
  std::vector<Rate> rates;
  std::string recipe_lr;
};
TuneFile read_tune_file(const std::string& dir);  // empty rates when there is none

}  // namespace attn
