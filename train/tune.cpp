// train/tune.cpp — the rate sweep's rules (train/tune.h), the runs they call for, tune.json.
#include <attnlab/train/tune.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/train/run_logs.h>

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<Rate> parse_positive_numbers(const std::string& list, const char* flag, const char* what, const char* example) {
  std::vector<Rate> numbers;
  if (list.find_first_not_of(" ,") == std::string::npos)
    throw UsageError(fmt::format("{} '{}': no {} given (e.g. {})", flag, list, what, example));
  for (size_t start = 0;; ) {  // every item between commas, an empty one (",," or a last ",") too
    const size_t comma = list.find(',', start);
    std::string x = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    x.erase(0, x.find_first_not_of(' '));
    x.erase(x.find_last_not_of(' ') + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(x, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != x.size() || !std::isfinite(v) || v <= 0)
      throw UsageError(fmt::format("{} '{}': expected comma-separated {} > 0 (e.g. {}), got '{}'", flag, list, what, example, x));
    numbers.push_back({x, v});
    if (comma == std::string::npos) return numbers;
    start = comma + 1;
  }
}

std::vector<Rate> parse_rates(const std::string& list, const char* flag) {
  std::vector<Rate> rates = parse_positive_numbers(list, flag, "learning rates", "1.5e-3,3e-3,6e-3");
  std::sort(rates.begin(), rates.end(), [](const Rate& a, const Rate& b) { return a.value < b.value; });
  for (size_t i = 1; i < rates.size(); i++)
    if (rates[i].value == rates[i - 1].value)
      throw UsageError(fmt::format("{} '{}': {} and {} are the same rate", flag, list, rates[i - 1].text, rates[i].text));
  return rates;
}

Rate doubled(const Rate& r) {
  const double v = 2 * r.value;
  const int e = int(std::floor(std::log10(v) + 1e-9));
  const double m = std::round(v / std::pow(10.0, e) * 1000) / 1000;  // 1.2, 3, 6.25: three decimals at most
  return {fmt::format("{:g}e{}", m, e), v};
}

RateOutcome run_outcome(const std::string& run_dir) {
  RateOutcome o;
  if (!fs::exists(run_dir + "/results.json")) {
    if (fs::exists(run_dir + "/diverged.json")) o.state = RateOutcome::State::diverged;
    return o;
  }
  o.loss = with_json_file(run_dir + "/results.json", [](const json& j) { return j.at("valid_loss").get<double>(); });
  std::optional<double> first;
  for (const MetricsRow& row : read_metrics(run_dir + "/metrics.csv"))
    if (row.valid_loss) {
      first = row.valid_loss;
      break;
    }
  const bool diverged = !std::isfinite(o.loss) || (first && o.loss > *first);
  o.state = diverged ? RateOutcome::State::diverged : RateOutcome::State::finished;
  return o;
}

// Lower is better; a diverged run ranks below every finished one.
static double rank(const RateOutcome& o) {
  return o.state == RateOutcome::State::finished ? o.loss : std::numeric_limits<double>::infinity();
}

Sweep sweep_state(const std::vector<Rate>& rates, const std::function<RateOutcome(const Rate&)>& outcome) {
  Sweep s;
  std::vector<RateOutcome> out;
  for (const Rate& r : rates) out.push_back(outcome(r));
  bool stop = false, wait = false;
  for (size_t k = 0; k < rates.size(); k++) {
    if (stop) {
      s.skipped.push_back(rates[k]);
      continue;
    }
    if (k >= 2) {
      const RateOutcome &a = out[k - 2], &b = out[k - 1];
      if (wait || a.state == RateOutcome::State::not_run || b.state == RateOutcome::State::not_run) {
        wait = true;
        s.waiting.push_back(rates[k]);
        continue;
      }
      if (rank(b) > rank(a)) {  // the next lower rate was worse than the one below it
        stop = true;
        s.skipped.push_back(rates[k]);
        continue;
      }
    }
    if (out[k].state == RateOutcome::State::not_run)
      s.to_run.push_back(rates[k]);
    else
      s.tried.push_back({rates[k], out[k]});
  }
  if (!s.to_run.empty() || !s.waiting.empty()) return s;
  auto best_of = [&] {
    size_t b = 0;
    for (size_t i = 1; i < s.tried.size(); i++)
      if (rank(s.tried[i].outcome) < rank(s.tried[b].outcome)) b = i;
    return b;
  };
  if (s.tried[best_of()].rate.value == rates.back().value) {  // the best is the highest given: its doubling, once
    const Rate d = doubled(rates.back());
    s.doubling = true;
    const RateOutcome od = outcome(d);
    if (od.state == RateOutcome::State::not_run) {
      s.to_run.push_back(d);
      return s;
    }
    s.tried.push_back({d, od});
  }
  s.settled = true;
  const size_t b = best_of();
  s.best = s.tried[b].rate;
  s.at_edge = b + 1 == s.tried.size();
  s.at_low_edge = rates.size() > 1 && b == 0;
  return s;
}

std::string tuning_rules(const std::vector<Rate>& rates) {
  std::string list;
  for (const Rate& r : rates) list += (list.empty() ? "" : ", ") + r.text;
  return fmt::format(
      "every (variant, width) is trained with seed 1 at {}, lowest first; the best rate has the lowest validation loss "
      "at the budget, and a diverged run (it stopped on a NaN, or ended above its first evaluation's loss) ranks worst; "
      "a higher rate is skipped once the next lower one was worse than the one below it; when the best is the highest "
      "rate given, its doubling ({}) is tried too, once, and a best that is then the highest rate tried is reported as "
      "at the edge of the sweep; the other seeds are trained at the best rate",
      list, doubled(rates.back()).text);
}

std::string grid_recipe_lr(const GridPreset& pre, const GridOptions& o) {
  std::string lr;
  std::vector<std::string> flags = pre.flags;
  flags.insert(flags.end(), o.extra.begin(), o.extra.end());
  for (size_t i = 0; i + 1 < flags.size(); i++)
    if (flags[i] == "--lr") lr = flags[i + 1];
    else if (flags[i].rfind("--lr=", 0) == 0) lr = flags[i].substr(5);
  return lr;
}

TunedPlan plan_tuned_grid(const GridPreset& pre, const GridOptions& o, const std::vector<Rate>& rates) {
  const std::vector<GridCell> cells = grid_cells(pre, o);
  const std::string own = grid_recipe_lr(pre, o);
  const double own_value = own.empty() ? -1 : std::stod(own);
  const int seeds = o.seeds > 0 ? o.seeds : pre.seeds;
  auto spec = [&](const GridCell& c, const Rate& r, int seed) {
    return grid_run(pre, o, c.variant, false, seed, c.width, r.value == own_value ? "" : r.text);
  };
  TunedPlan p;
  p.cells = int(cells.size());
  std::map<int, std::vector<RunSpec>> others;  // seed -> its runs: seed-major, after every seed-1 run
  for (const GridCell& c : cells) {
    const Sweep s = sweep_state(rates, [&](const Rate& r) { return run_outcome(spec(c, r, 1).dir); });
    for (const Sweep::Tried& t : s.tried)  // finished (the grid skips them); a diverged run is not started again
      if (t.outcome.state == RateOutcome::State::finished) p.specs.push_back(spec(c, t.rate, 1));
    for (const Rate& r : s.to_run) p.specs.push_back(spec(c, r, 1));
    p.waiting += int(s.waiting.size());
    if (!s.settled) continue;
    p.settled++;
    for (int seed = 2; seed <= seeds; seed++) others[seed].push_back(spec(c, s.best, seed));
  }
  for (auto& [seed, runs] : others) p.specs.insert(p.specs.end(), runs.begin(), runs.end());
  for (const RunSpec& r : p.specs) p.pending += !fs::exists(r.dir + "/results.json") && !fs::exists(r.dir + "/diverged.json");
  return p;
}

void write_tune_file(const std::string& dir, const std::vector<Rate>& rates, const std::string& recipe) {
  json j = {{"rates", json::array()}, {"recipe_lr", recipe}};
  for (const Rate& r : rates) j["rates"].push_back(r.text);
  write_file_atomic(dir + "/tune.json", j.dump(2) + "\n");
}

TuneFile read_tune_file(const std::string& dir) {
  TuneFile t;
  const std::string path = dir + "/tune.json";
  if (!fs::exists(path)) return t;
  with_json_file(path, [&](const json& j) {
    std::string list;
    for (auto& r : j.at("rates")) list += (list.empty() ? "" : ",") + r.get<std::string>();
    try {
      t.rates = parse_rates(list, "\"rates\"");
    } catch (const UsageError& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    t.recipe_lr = j.at("recipe_lr").get<std::string>();
  });
  return t;
}

}  // namespace attn
