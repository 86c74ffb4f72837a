// train/frontier.cpp — the width grid's report: quality against parameters and operations,
// the distance of each variant from the baseline's frontier, settlement, per-width reports.
#include <attnlab/train/frontier.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <optional>
#include <filesystem>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <attnlab/autograd/tape.h>
#include <attnlab/core/csv.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/rng.h>
#include <attnlab/train/plot.h>
#include <attnlab/train/run_logs.h>
#include <attnlab/train/tune.h>

namespace attn {
namespace fs = std::filesystem;

// ---- the arithmetic --------------------------------------------------------------------

std::optional<double> interpolate_log_params(std::vector<std::pair<double, double>> points, double params) {
  if (points.empty() || !(params > 0)) return std::nullopt;
  std::sort(points.begin(), points.end());
  const double eps = 1e-9 * params;
  if (params < points.front().first - eps || params > points.back().first + eps) return std::nullopt;
  for (size_t i = 0; i < points.size(); i++)
    if (std::fabs(points[i].first - params) <= eps) return points[i].second;
  for (size_t i = 0; i + 1 < points.size(); i++) {
    const auto [x0, y0] = points[i];
    const auto [x1, y1] = points[i + 1];
    if (params > x0 && params < x1) {
      const double t = (std::log(params) - std::log(x0)) / (std::log(x1) - std::log(x0));
      return y0 + t * (y1 - y0);
    }
  }
  return std::nullopt;
}

FrontierVerdict frontier_verdict(std::optional<double> d, double spread, int n_variant, int n_baseline) {
  if (!d) return FrontierVerdict::Outside;
  if (n_variant < 2 || n_baseline < 2) return FrontierVerdict::Unconfirmed;
  if (*d > spread) return FrontierVerdict::Above;
  if (*d < -spread) return FrontierVerdict::Below;
  return FrontierVerdict::On;
}

const char* verdict_name(FrontierVerdict v) {
  switch (v) {
    case FrontierVerdict::Above: return "above (worse)";
    case FrontierVerdict::On: return "on (within the spread)";
    case FrontierVerdict::Below: return "below (better)";
    case FrontierVerdict::Unconfirmed: return "unconfirmed (one seed)";
    case FrontierVerdict::Outside: return "outside the baseline's widths";
  }
  return "?";
}

Settlement order_settled(const std::map<std::string, LossCurve>& curves) {
  Settlement out;
  for (auto a = curves.begin(); a != curves.end(); ++a)
    for (auto b = std::next(a); b != curves.end(); ++b) {
      const LossCurve &ca = a->second, &cb = b->second;
      const double final_d = ca.final_mean - cb.final_mean;
      if (std::fabs(final_d) <= ca.final_std + cb.final_std) continue;  // within the spread: no order to keep
      int64_t last = 0;
      for (auto& [step, v] : ca.mean)
        if (cb.mean.count(step)) last = std::max(last, step);
      for (auto& [step, va] : ca.mean) {
        auto it = cb.mean.find(step);
        if (it == cb.mean.end() || 3 * step < 2 * last) continue;  // only the last third
        if ((va - it->second) * final_d < 0) {
          out.settled = false;
          out.detail += fmt::format("{}{} and {} swap at step {}", out.detail.empty() ? "" : "; ", a->first, b->first, step);
          break;
        }
      }
    }
  return out;
}

double train_flops_per_target_token(ModelConfig cfg, int len, int batch) {
  cfg.dropout = 0.f;
  cfg.max_len = std::max(cfg.max_len, len + 2);
  Transformer model(cfg, 1);
  Rng rng(3);
  Batch b;
  b.B = batch;
  b.S = b.T = len;
  for (int i = 0; i < batch * len; i++) {
    b.src.push_back(int32_t(4 + rng.below(uint32_t(cfg.vocab - 4))));
    b.tgt_in.push_back(int32_t(4 + rng.below(uint32_t(cfg.vocab - 4))));
    b.tgt_out.push_back(int32_t(4 + rng.below(uint32_t(cfg.vocab - 4))));
  }
  b.src_tokens = b.tgt_tokens = int64_t(batch) * len;
  Tape tape;
  TapeScope scope(tape);
  model.loss(b, Context{});  // the parameters require gradients: backward's products are counted
  return tape.product_flops() / double(b.tgt_tokens);
}

bool is_width_grid(const std::vector<RunSummary>& runs) {
  std::set<int> widths;
  for (auto& r : runs)
    if (r.finished && r.variant.find('+') == std::string::npos) widths.insert(r.d_model);
  return widths.size() > 1;
}

// ---- gathering the grid ----------------------------------------------------------------

namespace {

// One (variant, width) of the recipe: its runs and what they add up to.
struct Cell {
  std::string variant;
  int width = 0;
  std::vector<const RunSummary*> runs;
  Stat params, loss, bleu;
  double flops = 0;  // per target token
  LossCurve curve;
  std::optional<double> frontier_loss, frontier_std, d;
  FrontierVerdict verdict = FrontierVerdict::Outside;
};

struct Grid {
  std::string dir, baseline;
  std::string out;  // where the report's files are written before they replace the old ones (StagedDir)
  double recipe_lr = 0;
  std::vector<std::string> variants;  // table order, baseline first
  std::vector<int> widths;
  std::map<std::pair<std::string, int>, Cell> cells;
  std::vector<const RunSummary*> sweep;  // runs at other learning rates than the recipe's
  std::vector<RunSummary> runs;
  ReportOptions opts;  // the width reports' (compare --gap-from, --at-loss)
};

LossCurve read_curve(const std::string& dir, const std::vector<const RunSummary*>& runs) {
  LossCurve c;
  std::map<int64_t, std::vector<double>> at;
  std::vector<double> finals;
  for (auto* r : runs) {
    const std::string path = dir + "/runs/" + r->name + "/metrics.csv";
    for (const MetricsRow& row : read_metrics(path))
      if (row.valid_loss) at[row.step].push_back(*row.valid_loss);
    finals.push_back(r->valid_loss);
  }
  for (auto& [step, v] : at)
    if (v.size() == runs.size()) c.mean[step] = stat(v).mean;  // steps every seed evaluated
  const Stat f = stat(finals);
  c.final_mean = f.mean;
  c.final_std = f.std;
  c.seeds = f.n;
  return c;
}

Grid gather(const std::string& dir, const std::string& baseline, const TuneFile& tune) {
  Grid g;
  g.dir = dir;
  g.baseline = baseline;
  g.runs = read_runs(dir);
  // The recipe's learning rate: a tuned grid's tune.json names it, else the one most of the
  // baseline's finished runs have.
  std::map<double, int> lr_count;
  for (auto& r : g.runs)
    if (r.finished && r.variant == baseline) lr_count[r.lr]++;
  for (auto& [lr, n] : lr_count)
    if (n > lr_count[g.recipe_lr]) g.recipe_lr = lr;
  if (!tune.recipe_lr.empty())
    for (auto& [lr, n] : lr_count)
      if (std::fabs(lr - std::stod(tune.recipe_lr)) <= 1e-6 * lr) g.recipe_lr = lr;  // as config.json has it (a float)
  const std::vector<std::string> known = ModelConfig::preset_names();
  std::set<int> widths;
  for (auto& r : g.runs) {
    if (!r.finished) continue;
    if (r.lr != g.recipe_lr) {
      g.sweep.push_back(&r);
      continue;
    }
    Cell& c = g.cells[{r.variant, r.d_model}];
    c.variant = r.variant;
    c.width = r.d_model;
    c.runs.push_back(&r);
    widths.insert(r.d_model);
    if (std::find(g.variants.begin(), g.variants.end(), r.variant) == g.variants.end()) g.variants.push_back(r.variant);
  }
  auto rank = [&](const std::string& v) {
    return std::make_pair(v != baseline, size_t(std::find(known.begin(), known.end(), v) - known.begin()));
  };
  std::stable_sort(g.variants.begin(), g.variants.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
  g.widths.assign(widths.begin(), widths.end());
  return g;
}

// The seeds behind the frontier at p: the fewer of the two baseline widths it lies between (a
// width whose seed 2 has finished is confirmed there, whatever the others have). `base` holds
// (parameters, seeds) of each baseline width.
int seeds_between(const std::vector<std::pair<double, int>>& base, double p) {
  int below = 0, above = 0;
  double pb = -1, pa = std::numeric_limits<double>::infinity();
  for (auto& [bp, n] : base) {
    if (bp <= p && bp > pb) pb = bp, below = n;
    if (bp >= p && bp < pa) pa = bp, above = n;
  }
  return std::min(below, above);
}

// Means and spreads per cell, the operations per token, and each cell's distance from the frontier.
void measure(Grid& g) {
  std::vector<std::pair<double, double>> base_loss, base_std;
  for (auto& [key, c] : g.cells) {
    std::vector<double> p, l, b;
    for (auto* r : c.runs) p.push_back(double(r->params)), l.push_back(r->valid_loss), b.push_back(r->test_bleu);
    c.params = stat(p);
    c.loss = stat(l);
    c.bleu = stat(b);
    c.curve = read_curve(g.dir, c.runs);
    c.flops = train_flops_per_target_token(
        with_json_file(g.dir + "/runs/" + c.runs.front()->name + "/config.json",
                       [](const nlohmann::json& j) { return ModelConfig::from_json(j.at("model")); }));
    if (c.variant == g.baseline) {
      base_loss.push_back({c.params.mean, c.loss.mean});
      base_std.push_back({c.params.mean, c.loss.std});
    }
  }
  std::vector<std::pair<double, int>> base_seeds;  // (parameters, seeds) of each baseline width
  for (auto& [key, c] : g.cells)
    if (c.variant == g.baseline) base_seeds.push_back({c.params.mean, c.loss.n});
  auto seeds_at = [&](double p) { return seeds_between(base_seeds, p); };
  for (auto& [key, c] : g.cells) {
    c.frontier_loss = interpolate_log_params(base_loss, c.params.mean);
    c.frontier_std = interpolate_log_params(base_std, c.params.mean);
    if (c.frontier_loss) c.d = c.loss.mean - *c.frontier_loss;
    c.verdict = frontier_verdict(c.d, c.loss.std + c.frontier_std.value_or(0), c.loss.n, seeds_at(c.params.mean));
  }
}

// ---- writing ---------------------------------------------------------------------------

// A plot of one y value against x per variant, with error bars; one data block per variant.
struct Series {
  std::string label;
  int style = 0;  // the variant's place in the table: it keeps its colour and dashes in every plot
  std::vector<std::array<double, 3>> points;  // x, y, error
};
std::string xy_plot(const std::string& dir, const std::string& name, const std::string& title, const std::string& xl,
                    const std::string& yl, const std::vector<Series>& series, bool logx, bool zero_line) {
  std::string data, cmd;  // the data file, and the plot command
  int idx = 0;
  for (auto& s : series) {
    if (s.points.empty()) continue;
    data += "# " + s.label + " (x,y,error)\n";
    for (auto& p : s.points) data += fmt::format("{:.6g},{:.6g},{:.6g}\n", p[0], p[1], p[2]);
    data += "\n\n";
    cmd += fmt::format("{}{} index {} using 1:2:3 with yerrorlines lt {} title {}", cmd.empty() ? "" : ", ",
                        plot::quoted("plots/" + name + ".csv"), idx, (s.style % plot::kStyles) + 1, plot::quoted(s.label));
    idx++;
  }
  if (cmd.empty()) return "";
  write_file_atomic(dir + "/plots/" + name + ".csv", data);
  if (zero_line) cmd += ", 0 with lines lc rgb 'black' dt 1 lw 1 notitle";
  return fmt::format("set output {}\nset title {}\nset xlabel {}\nset ylabel {}\n{}plot {}\n{}", plot::quoted("plots/" + name + ".png"),
                     plot::quoted(title), plot::quoted(xl), plot::quoted(yl), logx ? "set logscale x 2\nset format x '%.1s%c'\n" : "", cmd,
                     logx ? "unset logscale x\nset format x '% h'\n" : "");
}

// The final diagonal attention mass of one site kind ("enc" or "dec"), mean over layers and seeds.
std::optional<double> final_diag_mass(const std::string& dir, const Cell& c, const std::string& kind) {
  std::vector<double> per_run;
  for (auto* r : c.runs) {
    const std::string path = dir + "/runs/" + r->name + "/dynamics.csv";
    const std::vector<DynRow> rows = read_dynamics(path);
    int64_t last = -1;
    for (const DynRow& d : rows)
      if (d.metric == "diag_mass") last = std::max(last, d.step);
    std::vector<double> v;
    for (const DynRow& d : rows)
      if (d.metric == "diag_mass" && d.step == last && d.site.rfind(kind + ".", 0) == 0) v.push_back(d.value);
    if (!v.empty()) per_run.push_back(stat(v).mean);
  }
  if (per_run.empty()) return std::nullopt;
  return stat(per_run).mean;
}

std::string plots(const Grid& g, std::vector<std::pair<std::string, std::string>>& images, const std::string& more_gp) {
  fs::create_directories(g.out + "/plots");  // replaces the earlier report's plots/ whole (StagedDir)
  std::string gp = plot::script_header("the frontier plots", "frontier.gp", 900, 560, 11, 2, true);
  std::vector<Series> loss, bleu, cost, dist, diag_enc, diag_dec;
  for (size_t i = 0; i < g.variants.size(); i++) {
    const std::string& v = g.variants[i];
    const int k = int(i);
    Series l{v, k, {}}, b{v, k, {}}, c{v, k, {}}, d{v, k, {}}, de{v, k, {}}, dd{v, k, {}};
    for (int w : g.widths) {
      auto it = g.cells.find({v, w});
      if (it == g.cells.end()) continue;
      const Cell& x = it->second;
      l.points.push_back({x.params.mean, x.loss.mean, x.loss.std});
      b.points.push_back({x.params.mean, x.bleu.mean, x.bleu.std});
      c.points.push_back({x.flops / 1e6, x.loss.mean, x.loss.std});
      if (x.d && v != g.baseline) d.points.push_back({x.params.mean, *x.d, x.loss.std + x.frontier_std.value_or(0)});
      if (auto m = final_diag_mass(g.dir, x, "enc")) de.points.push_back({double(w), *m, 0});
      if (auto m = final_diag_mass(g.dir, x, "dec")) dd.points.push_back({double(w), *m, 0});
    }
    loss.push_back(l), bleu.push_back(b), cost.push_back(c), dist.push_back(d), diag_enc.push_back(de), diag_dec.push_back(dd);
  }
  auto add = [&](const std::string& caption, const std::string& name, const std::string& script) {
    if (script.empty()) return;
    gp += script;
    images.push_back({caption, "plots/" + name + ".png"});
  };
  add("Validation loss against parameters (log scale), one line per variant through its widths; bars: seed standard deviation",
      "loss_vs_params", xy_plot(g.out, "loss_vs_params", "validation loss against parameters", "parameters (log scale)",
                                "validation loss (nats per target token)", loss, true, false));
  add("Test BLEU against parameters (log scale); bars: seed standard deviation", "bleu_vs_params",
      xy_plot(g.out, "bleu_vs_params", "test BLEU against parameters", "parameters (log scale)", "test BLEU", bleu, true, false));
  add("Validation loss against the training step's product operations per target token (forward and backward, counted "
      "from the ops' shapes as attnlab bench counts them; sentences of 24 tokens)",
      "loss_vs_flops", xy_plot(g.out, "loss_vs_flops", "validation loss against operations", "MFLOP per target token (log scale)",
                               "validation loss (nats per target token)", cost, true, false));
  add("Distance from the baseline's frontier: the variant's loss minus " + g.baseline + "'s interpolated at the same "
      "parameter count (above 0: worse); bars: the summed seed spread",
      "frontier_distance", xy_plot(g.out, "frontier_distance", "validation loss minus the frontier of " + g.baseline, "parameters (log scale)",
                                   "difference in validation loss (nats)", dist, true, true));
  add("Attention mass on the diagonal P(i,i) at the end of training, encoder self-attention, by width (mean over layers "
      "and seeds)", "diag_mass_enc_by_width",
      xy_plot(g.out, "diag_mass_enc_by_width", "diagonal attention mass, encoder self-attention", "d_model (log scale)",
              "P(i,i), mean over query positions", diag_enc, true, false));
  add("The same for decoder self-attention (causal: the first position can only attend to itself)", "diag_mass_dec_by_width",
      xy_plot(g.out, "diag_mass_dec_by_width", "diagonal attention mass, decoder self-attention", "d_model (log scale)",
              "P(i,i), mean over query positions", diag_dec, true, false));
  // Each variant against the baseline at the same step, through training, one line per width:
  // x is the baseline's loss at that step (falling from left to right as training goes on), so
  // lines that lie on each other say the difference follows how far training has got, not the width.
  std::string progress_csv = "variant,d_model,step," + g.baseline + "_loss,variant_loss,difference\n";
  for (size_t i = 0; i < g.variants.size(); i++) {
    const std::string& v = g.variants[i];
    if (v == g.baseline) continue;
    std::vector<Series> by_width;
    for (size_t k = 0; k < g.widths.size(); k++) {
      auto base = g.cells.find({g.baseline, g.widths[k]}), var = g.cells.find({v, g.widths[k]});
      if (base == g.cells.end() || var == g.cells.end()) continue;
      Series s{fmt::format("d_model {}", g.widths[k]), int(k), {}};
      for (auto& [step, loss] : var->second.curve.mean)
        if (auto b = base->second.curve.mean.find(step); b != base->second.curve.mean.end()) {
          s.points.push_back({b->second, loss - b->second, 0});
          progress_csv += fmt::format("{},{},{},{:.5f},{:.5f},{:.5f}\n", v, g.widths[k], step, b->second, loss, loss - b->second);
        }
      by_width.push_back(s);
    }
    const std::string name = "progress_" + v;
    const std::string script = xy_plot(g.out, name, v + " minus " + g.baseline + " at the same step, by width",
                                       "validation loss of " + g.baseline + " at that step (training runs left to right)",
                                       "difference in validation loss (nats)", by_width, false, true);
    if (!script.empty())
      add(v + " against " + g.baseline + " through training, one line per width: the difference in validation loss at the same "
              "step (mean over seeds) against " + g.baseline + "'s loss at that step; lines that lie on each other say the "
              "difference follows how far training has got, not the width",
          name, "set xrange [*:*] reverse\n" + script + "set xrange [*:*] noreverse\n");
  }
  write_file_atomic(g.out + "/progress.csv", progress_csv);
  gp += more_gp;
  write_file_atomic(g.out + "/frontier.gp", gp);
  return gp;
}

std::string frontier_table(const Grid& g) {
  std::string md = "| variant | d_model | seeds | params | MFLOP/token | valid loss | test BLEU | " + g.baseline +
                   "'s frontier at these params | difference | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (int w : g.widths)
    for (auto& v : g.variants) {
      auto it = g.cells.find({v, w});
      if (it == g.cells.end()) continue;
      const Cell& c = it->second;
      const std::string front = c.frontier_loss ? fmt::format("{:.4f} ± {:.4f}", *c.frontier_loss, c.frontier_std.value_or(0)) : "—";
      const std::string diff = c.d && v != g.baseline ? fmt::format("{:+.4f}", *c.d) : "—";
      md += fmt::format("| {} | {} | {} | {:.0f} | {:.1f} | {} | {} | {} | {} | {} |\n", v, w, c.loss.n, c.params.mean,
                        c.flops / 1e6, pm(c.loss, 4), pm(c.bleu, 2), v == g.baseline ? "(the frontier)" : front, diff,
                        v == g.baseline ? "—" : verdict_name(c.verdict));
    }
  return md;
}

std::string settlement_section(const Grid& g, std::string& summary) {
  std::string md;
  for (int w : g.widths) {
    std::map<std::string, LossCurve> curves;
    for (auto& v : g.variants)
      if (auto it = g.cells.find({v, w}); it != g.cells.end()) curves[v] = it->second.curve;
    if (curves.size() < 2) continue;
    int seeds = 99;
    for (auto& [v, c] : curves) seeds = std::min(seeds, c.seeds);
    const Settlement s = order_settled(curves);
    const std::string one_seed = seeds < 2 ? " (one seed at this width: no spread yet, so every final difference counts)" : "";
    md += fmt::format("- d_model {}: {}{}\n", w, s.settled ? "settled" : "**not settled** — " + s.detail, one_seed);
    summary += fmt::format("d_model {}: order {}\n", w, s.settled ? "settled" : "not settled (" + s.detail + ")");
  }
  return md;
}

std::string sweep_section(const Grid& g) {
  if (g.sweep.empty()) return "";
  // The run of `variant` at `width` and `seed` that trained at `lr`: the recipe's cell, or the sweep.
  auto loss_of = [&](const std::string& variant, int width, int seed, double lr) -> std::optional<double> {
    if (lr == g.recipe_lr) {
      if (auto it = g.cells.find({variant, width}); it != g.cells.end())
        for (auto* x : it->second.runs)
          if (x->seed == seed) return x->valid_loss;
      return std::nullopt;
    }
    for (auto* x : g.sweep)
      if (x->variant == variant && x->d_model == width && x->seed == seed && x->lr == lr) return x->valid_loss;
    return std::nullopt;
  };
  auto num = [](std::optional<double> v, const char* f) { return v ? fmt::format(fmt::runtime(f), *v) : std::string(); };
  std::string md = fmt::format("\n## Learning-rate check\n\nThe recipe trains every width at lr {0:g}. Runs at other rates (one "
                               "seed), beside the same variant's run at the recipe's rate, and a variant's difference from {1} "
                               "at the same rate:\n\n| d_model | variant | lr | valid loss | at lr {0:g} (same seed) | minus {1} "
                               "at this lr |\n|---|---|---|---|---|---|\n", g.recipe_lr, g.baseline);
  std::string csv = "d_model,variant,lr,seed,run,valid_loss,recipe_valid_loss,minus_baseline_same_lr\n";
  std::vector<const RunSummary*> sweep = g.sweep;
  auto rank = [&](const RunSummary* r) {
    return std::make_tuple(r->d_model, r->variant != g.baseline, r->variant, r->lr);
  };
  std::sort(sweep.begin(), sweep.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
  for (auto* r : sweep) {
    const auto recipe = loss_of(r->variant, r->d_model, r->seed, g.recipe_lr);
    std::optional<double> minus;
    if (r->variant != g.baseline)
      if (auto b = loss_of(g.baseline, r->d_model, r->seed, r->lr)) minus = r->valid_loss - *b;
    md += fmt::format("| {} | {} | {:g} | {:.4f} | {} | {} |\n", r->d_model, r->variant, r->lr, r->valid_loss,
                      recipe ? num(recipe, "{:.4f}") : "—", minus ? num(minus, "{:+.4f}") : "—");
    csv += fmt::format("{},{},{:g},{},{},{:.5f},{},{}\n", r->d_model, r->variant, r->lr, r->seed, r->name, r->valid_loss,
                       num(recipe, "{:.5f}"), num(minus, "{:.5f}"));
  }
  write_file_atomic(g.out + "/sweep.csv", csv);
  return md;
}

// ---- the tuned grid (compare --tune-lr) -------------------------------------------------

// One (variant, width) at its own best rate.
struct TunedCell {
  std::string variant;
  int width = 0;
  Sweep sweep;
  std::vector<const RunSummary*> runs;  // at the best rate, every seed
  Stat params, loss, bleu;
  const RunSummary* seed2 = nullptr;
  std::optional<double> frontier_loss, frontier_std, d, d2;
  FrontierVerdict verdict = FrontierVerdict::Outside, verdict2 = FrontierVerdict::Outside;
};

bool same_rate(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b)); }

const RunSummary* run_at(const Grid& g, const std::string& v, int w, int seed, double lr) {
  for (auto& r : g.runs)
    if (r.variant == v && r.d_model == w && r.seed == seed && same_rate(r.lr, lr) && r.name.find("+matched") == std::string::npos)
      return &r;
  return nullptr;
}

std::vector<TunedCell> tune_cells(const Grid& g, const TuneFile& t) {
  std::vector<std::string> variants = g.variants;
  std::set<int> widths;
  for (auto& r : g.runs) {
    if (r.seed != 1) continue;
    bool tuned_rate = same_rate(r.lr, doubled(t.rates.back()).value);
    for (const Rate& x : t.rates) tuned_rate = tuned_rate || same_rate(r.lr, x.value);
    if (!tuned_rate) continue;
    widths.insert(r.d_model);
    if (std::find(variants.begin(), variants.end(), r.variant) == variants.end()) variants.push_back(r.variant);
  }
  std::vector<TunedCell> cells;
  for (int w : widths)
    for (auto& v : variants) {
      TunedCell c;
      c.variant = v;
      c.width = w;
      bool any = false;
      c.sweep = sweep_state(t.rates, [&](const Rate& rate) {
        const RunSummary* r = run_at(g, v, w, 1, rate.value);
        any = any || r;
        return r ? run_outcome(g.dir + "/runs/" + r->name) : RateOutcome{};
      });
      if (!any) continue;
      if (c.sweep.settled)
        for (auto& r : g.runs)
          if (r.finished && r.variant == v && r.d_model == w && same_rate(r.lr, c.sweep.best.value) &&
              r.name.find("+matched") == std::string::npos) {
            c.runs.push_back(&r);
            if (r.seed == 2) c.seed2 = &r;
          }
      std::vector<double> p, l, b;
      for (auto* r : c.runs) p.push_back(double(r->params)), l.push_back(r->valid_loss), b.push_back(r->test_bleu);
      c.params = stat(p);
      c.loss = stat(l);
      c.bleu = stat(b);
      cells.push_back(c);
    }
  // The baseline's frontier through its best rates, with every seed and with seed 2 alone.
  std::vector<std::pair<double, double>> base_loss, base_std, base_loss2;
  std::vector<std::pair<double, int>> base_seeds;
  for (auto& c : cells)
    if (c.variant == g.baseline && !c.runs.empty()) {
      base_loss.push_back({c.params.mean, c.loss.mean});
      base_std.push_back({c.params.mean, c.loss.std});
      base_seeds.push_back({c.params.mean, c.loss.n});
      if (c.seed2) base_loss2.push_back({c.params.mean, c.seed2->valid_loss});
    }
  for (auto& c : cells) {
    if (c.runs.empty()) continue;
    c.frontier_loss = interpolate_log_params(base_loss, c.params.mean);
    c.frontier_std = interpolate_log_params(base_std, c.params.mean);
    if (c.frontier_loss) c.d = c.loss.mean - *c.frontier_loss;
    const double spread = c.loss.std + c.frontier_std.value_or(0);
    c.verdict = frontier_verdict(c.d, spread, c.loss.n, seeds_between(base_seeds, c.params.mean));
    // Seed 2 alone did not pick the rate: its distance from seed 2's frontier, judged by the two-seed spread.
    if (c.seed2)
      if (auto f2 = interpolate_log_params(base_loss2, double(c.seed2->params))) {
        c.d2 = c.seed2->valid_loss - *f2;
        c.verdict2 = frontier_verdict(c.d2, spread, c.loss.n, seeds_between(base_seeds, c.params.mean));
      }
  }
  return cells;
}

std::string rate_won(const Sweep& s) {
  if (!s.settled) return "not settled";
  return s.best.text + (s.at_edge ? " (at the edge of the sweep)" : s.at_low_edge ? " (the lowest rate tried)" : "");
}

std::string tuned_section(const Grid& g, const TuneFile& t, std::string& summary, std::string& gp,
                          std::vector<std::pair<std::string, std::string>>& images) {
  const std::vector<TunedCell> cells = tune_cells(g, t);
  fs::create_directories(g.out + "/plots");
  std::vector<Rate> columns = t.rates;
  columns.push_back(doubled(t.rates.back()));
  std::string md = "\n## Each variant at its own best learning rate\n\n**The rules**, fixed before the runs: " +
                   tuning_rules(t.rates) + ". The verdicts are the rule above, against " + g.baseline +
                   "'s frontier through " + g.baseline + "'s own best rates.\n\n";
  // The sweep: seed 1 at every rate.
  md += "### The sweep (seed 1, validation loss at the budget; bold: the best)\n\n| variant | d_model |";
  for (auto& r : columns) md += " " + r.text + " |";
  md += " best rate |\n|---|---|";
  for (size_t i = 0; i < columns.size(); i++) md += "---|";
  md += "---|\n";
  std::string csv = "variant,d_model,lr,seed,run,valid_loss,outcome\n";
  for (auto& c : cells) {
    md += fmt::format("| {} | {} |", c.variant, c.width);
    for (auto& r : columns) {
      std::string cell = "—";
      for (auto& x : c.sweep.tried)
        if (x.rate.value == r.value) {
          const bool best = c.sweep.settled && x.rate.value == c.sweep.best.value;
          cell = x.outcome.state == RateOutcome::State::diverged ? "diverged"
                 : best ? fmt::format("**{:.4f}**", x.outcome.loss) : fmt::format("{:.4f}", x.outcome.loss);
          const RunSummary* run = run_at(g, c.variant, c.width, 1, r.value);
          csv += fmt::format("{},{},{},1,{},{:.5f},{}\n", c.variant, c.width, r.text, run ? run->name : "", x.outcome.loss,
                             x.outcome.state == RateOutcome::State::diverged ? "diverged" : "finished");
        }
      for (auto& x : c.sweep.skipped)
        if (x.value == r.value) cell = "skipped";
      for (auto& x : c.sweep.waiting)
        if (x.value == r.value) cell = "waiting";
      for (auto& x : c.sweep.to_run)
        if (x.value == r.value) cell = "to run";
      md += " " + cell + " |";
    }
    md += " " + rate_won(c.sweep) + " |\n";
  }
  write_file_atomic(g.out + "/sweep.csv", csv);
  // The tuned table.
  md += "\n### Against the frontier, each at its best rate\n\n| variant | d_model | best rate | seeds | params | valid loss | "
        "test BLEU | " + g.baseline + "'s tuned frontier | difference | verdict | at lr " + t.recipe_lr +
        " (one rate) | seed 2 alone: difference, verdict |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::string tcsv = "variant,d_model,best_lr,edge,seeds,params,valid_loss,valid_loss_std,test_bleu,frontier_loss,frontier_std,"
                     "difference,verdict,one_rate_verdict,seed2_difference,seed2_verdict\n";
  std::string changes;
  std::string rates;
  for (auto& r : t.rates) rates += (rates.empty() ? "" : ",") + r.text;
  summary += fmt::format("\neach at its own best rate (tuned over {}):\n{:<12} {:>7} {:>8} {:>5} {:>10} {:>9}  {}\n", rates, "variant", "d_model", "best lr", "seeds", "valid loss", "vs front", "verdict");
  for (auto& c : cells) {
    if (c.runs.empty()) {
      md += fmt::format("| {} | {} | {} | — | — | — | — | — | — | — | — | — |\n", c.variant, c.width, rate_won(c.sweep));
      continue;
    }
    const bool base = c.variant == g.baseline;
    auto one = g.cells.find({c.variant, c.width});
    const std::string one_rate = base ? "—" : one != g.cells.end() ? verdict_name(one->second.verdict) : "—";
    const std::string verdict = base ? "—" : verdict_name(c.verdict);
    const std::string front = base ? "(the frontier)" : c.frontier_loss ? fmt::format("{:.4f} ± {:.4f}", *c.frontier_loss, c.frontier_std.value_or(0)) : "—";
    const std::string s2 = base || !c.d2 ? "—" : fmt::format("{:+.4f}, {}", *c.d2, verdict_name(c.verdict2));
    md += fmt::format("| {} | {} | {} | {} | {:.0f} | {} | {} | {} | {} | {} | {} | {} |\n", c.variant, c.width, rate_won(c.sweep),
                      c.loss.n, c.params.mean, pm(c.loss, 4), pm(c.bleu, 2), front,
                      c.d && !base ? fmt::format("{:+.4f}", *c.d) : "—", verdict, one_rate, s2);
    tcsv += fmt::format("{},{},{},{},{},{:.0f},{:.5f},{:.5f},{:.2f},{},{},{},{},{},{},{}\n", c.variant, c.width, c.sweep.best.text,
                        c.sweep.at_edge ? "top" : c.sweep.at_low_edge ? "bottom" : "", c.loss.n, c.params.mean, c.loss.mean,
                        c.loss.std, c.bleu.mean, c.frontier_loss ? fmt::format("{:.5f}", *c.frontier_loss) : "",
                        c.frontier_std ? fmt::format("{:.5f}", *c.frontier_std) : "", c.d && !base ? fmt::format("{:.5f}", *c.d) : "",
                        base ? "baseline" : csv_field(verdict), base ? "" : csv_field(one_rate),
                        c.d2 && !base ? fmt::format("{:.5f}", *c.d2) : "", base || !c.d2 ? "" : csv_field(verdict_name(c.verdict2)));
    summary += fmt::format("{:<12} {:>7} {:>8} {:>5} {:>10.4f} {:>9}  {}\n", c.variant, c.width, c.sweep.best.text, c.loss.n,
                           c.loss.mean, c.d && !base ? fmt::format("{:+.4f}", *c.d) : "", base ? "" : verdict);
    if (!base)
      changes += fmt::format("- {} at d_model {}: best rate {}; {}\n", c.variant, c.width, rate_won(c.sweep),
                             one_rate == "—" ? "no one-rate verdict to compare with"
                             : one_rate == verdict ? fmt::format("the verdict is unchanged ({})", verdict)
                                                   : fmt::format("the verdict changed: {} at lr {}, {} at its own best rate",
                                                                 one_rate, t.recipe_lr, verdict));
  }
  write_file_atomic(g.out + "/tuned.csv", tcsv);
  md += "\nSeed 2 alone: seed 2's loss minus " + g.baseline + "'s seed-2 frontier (through its best rates), judged by the "
        "two-seed spread; seed 2 did not take part in picking the rate, so a verdict that holds there is not the rate "
        "search's luck.\n\n### What changed from the one-rate table\n\n" + changes;
  // Loss against rate, one plot per width.
  for (int w : [&] {
         std::set<int> ws;
         for (auto& c : cells) ws.insert(c.width);
         return ws;
       }()) {
    std::vector<Series> series;
    for (auto& c : cells) {
      if (c.width != w) continue;
      const auto at = std::find(g.variants.begin(), g.variants.end(), c.variant);
      Series s{c.variant, int(at - g.variants.begin()), {}};
      for (auto& x : c.sweep.tried)
        if (x.outcome.state == RateOutcome::State::finished) s.points.push_back({x.rate.value, x.outcome.loss, 0});
      series.push_back(s);
    }
    const std::string name = fmt::format("loss_vs_rate_d{}", w);
    const std::string script = xy_plot(g.out, name, fmt::format("validation loss against learning rate, d_model {}", w),
                                       "peak learning rate (log scale)", "validation loss (nats per target token)",
                                       series, true, false);
    if (script.empty()) continue;
    std::string tics;  // the rates themselves on the axis, as they are written
    for (auto& r : columns) tics += fmt::format("{}\"{}\" {:g}", tics.empty() ? "" : ", ", r.text, r.value);
    gp += "set xtics (" + tics + ")\n" + script + "set xtics autofreq\n";
    images.push_back({fmt::format("Validation loss against the learning rate at d_model {} (seed 1), one line per variant", w),
                      "plots/" + name + ".png"});
  }
  return md;
}

// dir/widths/d<W>/runs/<run> -> the run, then the usual comparison report there.
std::vector<std::string> width_reports(const Grid& g) {
  std::vector<std::string> made;
  for (int w : g.widths) {
    int variants = 0;
    for (auto& v : g.variants) variants += g.cells.count({v, w}) ? 1 : 0;
    if (variants < 2) continue;
    const std::string sub = fmt::format("{}/widths/d{}", g.dir, w);
    fs::remove_all(sub + "/runs");
    fs::create_directories(sub + "/runs");
    for (auto& v : g.variants)
      if (auto it = g.cells.find({v, w}); it != g.cells.end())
        for (auto* r : it->second.runs) fs::create_directory_symlink("../../../runs/" + r->name, sub + "/runs/" + r->name);
    write_report(sub, g.baseline, fmt::format("Width {}: the variants against {} (part of the frontier grid)", w, g.baseline),
                 g.opts);
    made.push_back(fmt::format("widths/d{}/report.md", w));
  }
  return made;
}

std::string summary_csv(const Grid& g) {
  std::string csv = "variant,d_model,lr,seed,run,params,steps,train_seconds,tokens_per_s,valid_loss,valid_ppl,test_bleu,test_chrf,attnlab,machine\n";
  for (auto& r : g.runs)
    if (r.finished)
      csv += fmt::format("{},{},{:g},{},{},{},{},{:.2f},{:.1f},{:.5f},{:.4f},{:.2f},{:.2f},{},{}\n", r.variant, r.d_model, r.lr, r.seed,
                         r.name, r.params, r.steps, r.train_seconds, r.tokens_per_s, r.valid_loss, r.valid_ppl, r.test_bleu,
                         r.test_chrf, csv_field(r.build), csv_field(r.machine));
  return csv;
}

std::string frontier_csv(const Grid& g) {
  std::string csv = "variant,d_model,seeds,params,mflop_per_target_token,valid_loss,valid_loss_std,test_bleu,test_bleu_std,"
                    "frontier_loss,frontier_std,difference,verdict\n";
  for (int w : g.widths)
    for (auto& v : g.variants)
      if (auto it = g.cells.find({v, w}); it != g.cells.end()) {
        const Cell& c = it->second;
        csv += fmt::format("{},{},{},{:.0f},{:.3f},{:.5f},{:.5f},{:.2f},{:.2f},{},{},{},{}\n", v, w, c.loss.n, c.params.mean,
                           c.flops / 1e6, c.loss.mean, c.loss.std, c.bleu.mean, c.bleu.std,
                           c.frontier_loss ? fmt::format("{:.5f}", *c.frontier_loss) : "",
                           c.frontier_std ? fmt::format("{:.5f}", *c.frontier_std) : "",
                           c.d && v != g.baseline ? fmt::format("{:.5f}", *c.d) : "",
                           v == g.baseline ? "baseline" : csv_field(verdict_name(c.verdict)));
      }
  return csv;
}

std::string builds_note(const Grid& g) {
  std::set<std::pair<std::string, std::string>> made_by;
  for (auto& r : g.runs)
    if (r.finished) made_by.insert({r.build, r.machine});
  if (made_by.size() <= 1) return made_by.empty() ? "" : fmt::format("All runs: attnlab {} on {}.\n", made_by.begin()->first, made_by.begin()->second);
  std::string md = fmt::format("These runs were made by {} (build, machine) combinations (summary.csv says which made each): "
                               "losses and scores compare across them, train times and tokens/s do not.\n", made_by.size());
  return md;
}

}  // namespace

std::string write_frontier_report(const std::string& dir, const std::string& baseline, const ReportOptions& opts) {
  const TuneFile tune = read_tune_file(dir);
  Grid g = gather(dir, baseline, tune);
  g.opts = opts;
  if (g.cells.empty()) throw std::runtime_error(dir + "/runs: no finished runs to report on");
  measure(g);
  StagedDir out(dir);  // every file below is written there first: a failure leaves the old report whole
  g.out = out.path();
  std::string summary = fmt::format("{:<12} {:>7} {:>5} {:>10} {:>10} {:>9}  {}\n", "variant", "d_model", "seeds", "params",
                                    "valid loss", "vs front", "verdict");
  for (int w : g.widths)
    for (auto& v : g.variants)
      if (auto it = g.cells.find({v, w}); it != g.cells.end()) {
        const Cell& c = it->second;
        summary += fmt::format("{:<12} {:>7} {:>5} {:>10.0f} {:>10.4f} {:>9}  {}\n", v, w, c.loss.n, c.params.mean, c.loss.mean,
                               c.d && v != baseline ? fmt::format("{:+.4f}", *c.d) : "", v == baseline ? "" : verdict_name(c.verdict));
      }
  int finished = 0, unfinished = 0;
  for (auto& r : g.runs) (r.finished ? finished : unfinished)++;
  std::string md = "# Quality against parameters: the variants against " + baseline + "'s frontier\n\n";
  md += fmt::format("Runs in `{}/runs`: {} finished, {} unfinished; widths {}. Every number is read from the runs' files; "
                    "the CSVs beside this report hold them.\n\n", dir, finished, unfinished, fmt::join(g.widths, ", "));
  md += builds_note(g);
  md += "\n## Where each variant sits against the frontier\n\n" + baseline + "'s frontier is its validation loss through its "
        "widths, linear in log(parameters) between neighbouring widths, and is not extended beyond them. **The rule**: with "
        "d = the variant's mean loss − the frontier's loss at the variant's parameter count and spread = the variant's seed "
        "standard deviation + the frontier's (interpolated the same way), a variant is *above* (worse) when d > spread, "
        "*below* (better) when d < −spread, and *on* the frontier otherwise; with one seed on either side it is "
        "*unconfirmed*. The loss falls along a convex curve in log(parameters), so the straight line between two "
        "widths lies above it: a variant that saves many parameters, and so sits far from the nearest width, is "
        "flattered by as much as that bend.\n\n";
  md += frontier_table(g);
  md += "\n## Did the order settle?\n\nThe rule, fixed before the runs: at each width, the order has settled when no pair of "
        "variants whose final validation losses differ by more than their seed spread (the sum of the two standard "
        "deviations) is in the other order at any evaluation in the last third of training.\n\n";
  md += settlement_section(g, summary);
  std::string tuned_gp;
  std::vector<std::pair<std::string, std::string>> images, tuned_images;
  md += tune.rates.empty() ? sweep_section(g) : tuned_section(g, tune, summary, tuned_gp, tuned_images);
  plots(g, images, tuned_gp);
  images.insert(images.end(), tuned_images.begin(), tuned_images.end());
  const plot::Drawn drawn = plot::draw(out.path(), "frontier.gp", "frontier.log");
  const bool drew = drawn == plot::Drawn::yes;
  if (drawn == plot::Drawn::failed) out.check_written("gnuplot");
  md += "\n## Plots\n\n";
  if (!drew) md += "The plots were not drawn (gnuplot missing or failed: see `frontier.log`); their data is in `plots/*.csv` and `gnuplot frontier.gp` draws them.\n\n";
  for (auto& [caption, path] : images) md += fmt::format("### {}\n\n![{}]({})\n\n", caption, caption, path);
  const auto subs = width_reports(g);
  md += "## Each width on its own\n\nThe usual comparison report at each width (tables, verdicts against " + baseline +
        ", learning curves and the learning-dynamics plots: gradient norms, attention entropy, diagonal mass, W_q W_kᵀ "
        "asymmetry):\n\n";
  for (auto& s : subs) md += fmt::format("- [{}]({})\n", s, s);
  md += "\n## Files\n\n`summary.csv` (one row per run), `frontier.csv` (the table above), `sweep.csv` (the learning-rate "
        "check, or a tuned grid's sweep), `tuned.csv` (a tuned grid: each variant at its best rate), `progress.csv` (each variant against the baseline at every evaluated step), `summary.txt` (the table in brief), `plots/*.csv` and `frontier.gp` (the plots' data and script), "
        "`widths/d<W>/` (each width's report; its `runs/` link to this grid's runs).\n";
  out.write("summary.csv", summary_csv(g));
  out.write("frontier.csv", frontier_csv(g));
  out.write("summary.txt", summary);
  out.write("report.md", md);
  out.commit();
  return dir + "/report.md";
}

}  // namespace attn

namespace attn {

std::string write_grid_report(const std::string& dir, const std::string& baseline, const ReportOptions& opts) {
  return is_width_grid(read_runs(dir)) ? write_frontier_report(dir, baseline, opts) : write_report(dir, baseline, "", opts);
}

}  // namespace attn
