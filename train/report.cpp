// train/report.cpp — the comparison report: tables (mean ± std over seeds), verdicts, plots.
#include <attnlab/train/report.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include <attnlab/core/csv.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/train/config.h>
#include <attnlab/train/plot.h>
#include <attnlab/train/run_logs.h>
#include <attnlab/core/fileio.h>
#include <attnlab/models/transformer.h>

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;

// A results.json number that must lie in [lo, hi]: otherwise the file is refused by name.
static double in_range(const json& res, const char* key, double lo, double hi) {
  const double v = res.at(key).get<double>();
  if (!(v >= lo && v <= hi))
    throw UsageError(hi == INFINITY ? fmt::format("\"{}\": expected a number >= {}, got {}", key, lo, res.at(key).dump())
                                    : fmt::format("\"{}\": expected a number in [{}, {}], got {}", key, lo, hi, res.at(key).dump()));
  return v;
}

std::vector<RunSummary> read_runs(const std::string& dir, std::vector<std::string>* left_out) {
  std::vector<RunSummary> runs;
  const fs::path rd = fs::path(dir) / "runs";
  if (!fs::is_directory(rd)) return runs;
  std::vector<fs::path> dirs;
  for (auto& e : fs::directory_iterator(rd)) {
    if (!e.is_directory()) continue;
    if (fs::exists(e.path() / "config.json")) dirs.push_back(e.path());
    else if (left_out)
      left_out->push_back(fmt::format("`runs/{}`: no config.json there, so it is not read as a run (a run whose start "
                                      "failed, or a folder put there by hand)", e.path().filename().string()));
  }
  std::sort(dirs.begin(), dirs.end());
  for (auto& p : dirs) {
    RunSummary r;
    r.name = p.filename().string();
    Arch config_arch = Arch::seq2seq;
    // A damaged file stops the report with its name: a table that silently lacks a run would
    // misstate the seed-to-seed spread.
    with_json_file((p / "config.json").string(), [&](const json& cfg) {
      r.variant = cfg.at("variant").get<std::string>() + (cfg.value("match_params", false) ? "+matched" : "");
      r.seed = cfg.at("seed");
      r.d_model = cfg.value("model", json::object()).value("d_model", 0);
      r.lr = cfg.value("lr", 0.0);
      config_arch = parse_arch(cfg.value("model", json::object()).value("arch", arch_name(Arch::seq2seq)), "\"arch\"");
      r.settings = comparable_settings(cfg).dump();
      r.until_plateau = cfg.value("until_plateau", 0);
    });
    r.arch = config_arch;
    if (fs::exists(p / "results.json"))
      with_json_file((p / "results.json").string(), [&](const json& res) {
        r.finished = true;
        r.params = int64_t(in_range(res, "params", 1, INFINITY));
        r.steps = int64_t(in_range(res, "steps", 1, INFINITY));
        r.train_seconds = in_range(res, "train_seconds", 0, INFINITY);
        r.tokens_per_s = in_range(res, "tokens_per_s", 0, INFINITY);
        r.valid_loss = res.at("valid_loss");
        r.valid_ppl = res.at("valid_ppl");
        r.arch = parse_arch(res.value("arch", arch_name(Arch::seq2seq)), "\"arch\"");
        if (r.arch != config_arch)
          throw UsageError(fmt::format("\"arch\": {}, but config.json says {}", arch_name(r.arch), arch_name(config_arch)));
        if (traits(r.arch).translates()) {
          r.test_bleu = in_range(res, "test_bleu", 0, 100);
          r.test_chrf = in_range(res, "test_chrf", 0, 100);
        } else {
          r.test_accuracy = 100 * in_range(res, "test_accuracy", 0, 1);
          r.test_ppl = res.at("test_ppl");
        }
        if (res.contains("plateaued")) r.plateaued = res.at("plateaued").get<bool>() ? 1 : 0;
        if (res.contains("segments") && res.at("segments").is_array()) {
          std::set<std::pair<std::string, std::string>> where;
          for (const json& g : res.at("segments")) where.insert({g.value("attnlab", ""), g.value("machine", "")});
          if (where.size() > 1)
            for (const json& g : res.at("segments"))
              r.stretches.push_back(fmt::format("steps {}–{}: attnlab {} on {}", g.value("from_step", 0), g.value("to_step", 0),
                                                g.value("attnlab", "not recorded"), g.value("machine", "not recorded")));
        }
        r.build = res.value("attnlab", "not recorded");
        r.machine = res.value("machine", "not recorded");
      });
    runs.push_back(r);
  }
  // One report, one architecture: the score columns (BLEU or accuracy) are the architecture's.
  for (auto& r : runs)
    if (r.arch != runs.front().arch)
      throw std::runtime_error(fmt::format("{}/runs/{}: an {} run among {} runs (runs/{}): a report compares runs of one "
                                           "architecture; move it to a grid of its own",
                                           dir, r.name, arch_name(r.arch), arch_name(runs.front().arch), runs.front().name));
  // A second seed is another seed: a copied run would count one result twice (and show ± 0).
  std::map<std::tuple<std::string, int, std::string>, const RunSummary*> seen;
  for (auto& r : runs)
    if (!r.finished) continue;  // not counted in any table
    else if (auto [it, fresh] = seen.emplace(std::make_tuple(r.variant, r.seed, r.settings), &r); !fresh)
      throw std::runtime_error(fmt::format("{}/runs/{}: the same variant ({}), seed ({}) and settings as runs/{}: a copy "
                                           "would count one result as two seeds; remove one, or train another seed "
                                           "(--seed)", dir, r.name, r.variant, r.seed, it->second->name));
  return runs;
}

std::optional<double> step_at_loss(const std::map<double, double>& curve, double level) {
  if (curve.empty() || curve.begin()->second <= level) return std::nullopt;
  for (auto it = std::next(curve.begin()); it != curve.end(); ++it)
    if (it->second <= level) {
      const auto& [s0, l0] = *std::prev(it);
      const auto& [s1, l1] = *it;
      return s0 + (l0 - level) / (l0 - l1) * (s1 - s0);  // l0 > level >= l1
    }
  return std::nullopt;
}

std::optional<double> loss_at_step(const std::map<double, double>& curve, double step) {
  auto hi = curve.lower_bound(step);
  if (hi == curve.end()) return std::nullopt;
  if (hi->first == step) return hi->second;
  if (hi == curve.begin()) return std::nullopt;
  const auto& [s0, l0] = *std::prev(hi);
  return l0 + (step - s0) / (hi->first - s0) * (hi->second - l0);
}

GapChange gap_change(double g0, double spread0, double g_end, double spread_end, int n_variant, int n_baseline) {
  if (n_variant < 2 || n_baseline < 2) return GapChange::Unconfirmed;
  const double spread = spread_end + spread0;
  if (g_end < g0 - spread) return GapChange::Closes;
  if (g_end > g0 + spread) return GapChange::Grows;
  return GapChange::Holds;
}

const char* gap_change_name(GapChange c) {
  switch (c) {
    case GapChange::Closes: return "closes";
    case GapChange::Holds: return "holds";
    case GapChange::Grows: return "grows";
    case GapChange::Unconfirmed: return "unconfirmed";
  }
  return "?";
}

Stat stat(const std::vector<double>& v) {
  Stat s;
  s.n = int(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    for (double x : v) s.std += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(s.std / double(v.size() - 1));
  }
  return s;
}
std::string pm(const Stat& s, int prec) {
  if (s.n == 0) return "—";
  if (s.n == 1) return fmt::format("{:.{}f}", s.mean, prec);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, prec, s.std, prec);
}

// Layer-averaged site kind: "enc.2.self_attn" -> "enc self", "dec.0.cross_attn" -> "cross".
static std::string site_kind(const std::string& site) {
  if (site.rfind("enc.", 0) == 0) return "enc self";
  return site.find("cross") != std::string::npos ? "cross" : "dec self";
}

static std::string safe(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return o;
}

namespace {

using SeriesMap = std::map<std::string, std::map<double, std::vector<double>>>;  // label -> x -> values over seeds

// The comparison report, section by section: each method appends its part of report.md and
// writes its CSVs; write() calls them in order.
// The two test-set columns of a report: BLEU and chrF for translation runs, top-1 accuracy (%)
// and perplexity for lm and mlm runs. The first decides "better" (higher) in the verdicts.
struct ScoreColumns {
  std::string name, name2, csv, csv2, unit;  // "test BLEU", "test chrF", "test_bleu", "test_chrf", "BLEU"
  double RunSummary::*first;
  double RunSummary::*second;
};
static ScoreColumns score_columns(const std::vector<RunSummary>& runs) {
  Arch arch = Arch::seq2seq;
  for (auto& r : runs)
    if (r.finished) arch = r.arch;
  if (traits(arch).translates()) return {"test BLEU", "test chrF", "test_bleu", "test_chrf", "BLEU", &RunSummary::test_bleu, &RunSummary::test_chrf};
  return {"test accuracy (%)", "test ppl", "test_accuracy", "test_ppl", "accuracy", &RunSummary::test_accuracy, &RunSummary::test_ppl};
}

class ComparisonReport {
 public:
  ComparisonReport(std::string dir_, std::string baseline_, std::string title_, const ReportOptions& opts)
      : dir(std::move(dir_)), baseline(std::move(baseline_)), title(std::move(title_)), gap_from(opts.gap_from),
        at_loss(opts.at_loss), out(dir) {}
  std::string write();

 private:
  void group();
  Stat col(const std::string& v, auto RunSummary::*f) {
    std::vector<double> x;
    for (auto* r : by[v]) x.push_back(double(r->*f));
    return stat(x);
  }
  void summary_table();
  void settings_note();
  void verdicts();
  void read_curves();
  void to_the_end();
  void at_equal_loss();
  std::string series_plot(const std::string& name, const std::string& title_, const std::string& xl, const std::string& yl,
                          const SeriesMap& series, bool logy = false,
                          double xmin = -1,  // xmin >= 0: plot only from there on (y scales to what is shown)
                          bool zero_line = false, double ref = 0, const std::string& ref_title = "");
  void plots();
  void draw_and_finish();

  const std::string dir, baseline, title;
  const int64_t gap_from;  // trained to the end: the step the end's gap is compared with
  const std::vector<Level> at_loss;  // the baseline's losses at which each variant's gap is read
  bool mixed_settings = false;  // runs of other settings in one report (settings_note)
  StagedDir out;  // every file of the report, replaced together when it is complete
  std::string summary;  // summary.txt
  std::vector<std::string> left_out;  // what the report does not use, and why (its own section)
  std::vector<RunSummary> runs;
  ScoreColumns sc;
  std::vector<std::string> order;  // variants, baseline first
  std::map<std::string, std::vector<const RunSummary*>> by;  // finished runs by variant
  std::string md, gp;
  std::vector<std::pair<std::string, std::string>> images;  // (caption, path)
  SeriesMap vloss_step, vloss_time, tloss_step;
  std::map<std::string, SeriesMap> dyn;  // key "metric" or "metric|variant"
  struct Progress {
    std::string step, valid_step, valid_loss;  // last logged step, last evaluation
  };
  std::map<std::string, Progress> progress;  // by run name
  std::map<std::pair<std::string, int>, std::map<double, double>> vloss_run;  // (variant, seed) -> step -> valid loss
  std::map<std::string, std::map<double, double>> vloss_of;  // run name -> step -> valid loss
  bool ended = false;  // runs trained to the end: to_the_end.csv written
  bool at_loss_written = false;  // at_loss.csv written
};

void ComparisonReport::group() {
  runs = read_runs(dir, &left_out);
  if (runs.empty()) throw std::runtime_error(dir + "/runs: no runs found to report on");
  sc = score_columns(runs);
  // Group finished runs by variant, in a stable order with the baseline first.
  for (auto& r : runs) {
    if (std::find(order.begin(), order.end(), r.variant) == order.end()) order.push_back(r.variant);
    if (r.finished) by[r.variant].push_back(&r);
  }
  // Baseline first, then the variants in --variant's documented order (each "+matched" after
  // its plain version), names this build does not know last.
  const std::vector<std::string> known = ModelConfig::preset_names();
  auto rank = [&](const std::string& v) {
    const std::string base = v.substr(0, v.find('+'));
    const size_t i = size_t(std::find(known.begin(), known.end(), base) - known.begin());
    return std::make_tuple(v != baseline, i, v != base);
  };
  std::stable_sort(order.begin(), order.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
}

void ComparisonReport::summary_table() {
  // ---- summary CSV and table -----------------------------------------------------------
  std::string csv = "variant,seed,run,params,steps,train_seconds,tokens_per_s,valid_loss,valid_ppl," + sc.csv + "," + sc.csv2 +
                    ",attnlab,machine\n";
  for (auto& r : runs)
    if (r.finished)
      csv += fmt::format("{},{},{},{},{},{:.2f},{:.1f},{:.5f},{:.4f},{:.2f},{:.2f},{},{}\n", r.variant, r.seed, r.name, r.params,
                         r.steps, r.train_seconds, r.tokens_per_s, r.valid_loss, r.valid_ppl, r.*sc.first, r.*sc.second,
                         csv_field(r.build), csv_field(r.machine));
  out.write("summary.csv", csv);

  // Train time and tokens/s compare only between runs of one build on one machine (a grid
  // spread over machines with --plan, or resumed with a newer build, mixes them).
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> made_by;  // (build, machine) -> runs
  for (auto& r : runs)
    if (r.finished) made_by[{r.build, r.machine}].push_back(r.name);

  const Stat base_params = col(baseline, &RunSummary::params);
  const ArchTraits& arch = traits(runs.front().arch);
  md = fmt::format("# {}\n\n", !title.empty()       ? title
                                : arch.translates() ? "QKᵀ vs QQᵀ: comparison report"
                                                    : fmt::format("QKᵀ vs QQᵀ in {}: comparison report", arch.described));
  md += fmt::format("Runs in `{}/runs`: {} finished, {} unfinished. Every number below is read from the runs' "
                    "`results.json` (written at the end of each run; the CSVs beside this report hold them all). "
                    "{}\n\n",
                    dir, std::count_if(runs.begin(), runs.end(), [](auto& r) { return r.finished; }),
                    std::count_if(runs.begin(), runs.end(), [](auto& r) { return !r.finished; }),
                    sc.csv == "test_bleu" ? "Test BLEU/chrF are sacrebleu-default corpus scores (13a, exp smoothing; chrF2)."
                                          : "Test accuracy is the share of scored tokens (every next token of a sentence for an "
                                            "lm, the masked tokens on a fixed mask for an mlm) whose most likely prediction "
                                            "is right; perplexity is exp of the mean loss on them.");
  md += "| variant | seeds | params (vs baseline) | steps | train time (s) | tokens/s | valid loss | valid ppl | " + sc.name + " | " +
        sc.name2 + " |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|\n";
  for (auto& v : order) {
    if (by[v].empty()) continue;
    const Stat p = col(v, &RunSummary::params);
    const std::string delta = base_params.n && v != baseline ? fmt::format(" ({:+.1f}%)", 100.0 * (p.mean - base_params.mean) / base_params.mean) : "";
    md += fmt::format("| {} | {} | {:.0f}{} | {:.0f} | {} | {} | {} | {} | {} | {} |\n", v, by[v].size(), p.mean, delta,
                      col(v, &RunSummary::steps).mean, pm(col(v, &RunSummary::train_seconds), 0),
                      pm(col(v, &RunSummary::tokens_per_s), 0), pm(col(v, &RunSummary::valid_loss), 4),
                      pm(col(v, &RunSummary::valid_ppl), 2), pm(col(v, sc.first), 2), pm(col(v, sc.second), 2));
  }
  // A run resumed on another build or machine: its own train time mixes them.
  std::string mixed;
  for (auto& r : runs)
    if (r.finished && !r.stretches.empty()) {
      mixed += fmt::format("- `{}`:", r.name);
      for (auto& line : r.stretches) mixed += fmt::format(" {};", line);
      mixed.back() = '\n';
    }
  if (!mixed.empty())
    md += "\n**Runs resumed on another build or machine** (their train time and tokens/s mix the two; results.json "
          "lists each stretch):\n\n" + mixed;
  const bool unrecorded = made_by.count({"not recorded", "not recorded"}) > 0;  // runs of attnlab before 2026-11-27
  if (made_by.size() > 1 || unrecorded) {
    md += made_by.size() > 1
              ? fmt::format("\n**Train time and tokens/s compare only within one build on one machine**, and these runs "
                            "were made by {} (build, machine) combinations; losses and scores compare across them all:\n\n",
                            made_by.size())
              : std::string("\n**Train time and tokens/s compare only within one build on one machine**, and these runs "
                            "do not record which they were made by (an older attnlab); losses and scores compare across "
                            "builds and machines:\n\n");
    for (auto& [who, names] : made_by) {
      std::string list;
      for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
      if (who == std::pair<std::string, std::string>{"not recorded", "not recorded"})
        md += fmt::format("- build and machine not recorded (an attnlab older than 2026-11-27): {}\n", list);
      else
        md += fmt::format("- attnlab {} on {}: {}\n", who.first, who.second, list);
    }
  }

}

void ComparisonReport::settings_note() {
  // A table of runs trained with different settings (copied together by hand, or made before
  // compare checked them) compares unlike with unlike: say which setting differs in which runs.
  std::map<std::string, std::vector<const RunSummary*>> by_settings;
  for (auto& r : runs)
    if (r.finished) by_settings[r.settings].push_back(&r);
  if (by_settings.size() > 1) {
    std::vector<std::pair<nlohmann::json, const std::vector<const RunSummary*>*>> groups;
    std::set<std::string> keys;
    for (auto& [text, rs] : by_settings) {
      groups.push_back({nlohmann::json::parse(text), &rs});
      for (auto& [key, v] : groups.back().first.items()) keys.insert(key);
    }
    // A key some runs lack belongs to their variant (a d_model widened by --match-params), not
    // to the comparison: it is compared among the runs that have it.
    std::map<std::string, std::map<std::string, std::vector<std::string>>> differ;  // key -> value -> runs
    for (auto& key : keys) {
      std::map<std::string, std::vector<std::string>> values;
      for (auto& [j, rs] : groups)
        if (j.contains(key))
          for (auto* r : *rs) values[human(j.at(key))].push_back(r->name);
      if (values.size() > 1) differ[key] = values;
    }
    mixed_settings = !differ.empty();
    if (!differ.empty()) md += "\n**These runs were not all trained with the same settings**, so the table compares unlike runs; "
          "rerun them with one command (`attnlab compare` refuses to mix them):\n\n";
    for (auto& [key, values] : differ) {
      std::string list;
      for (auto& [value, names] : values) {
        std::string n;
        for (auto& name : names) n += (n.empty() ? "" : ", ") + name;
        list += fmt::format("{}{} in {}", list.empty() ? "" : "; ", value, n);
      }
      md += fmt::format("- {}: {}\n", key, list);
    }
  }

}

void ComparisonReport::verdicts() {
  // ---- verdicts ------------------------------------------------------------------------
  md += "\n## Verdicts (each variant against the baseline `" + baseline + "`)\n\n";
  const Stat bb = col(baseline, sc.first), bl = col(baseline, &RunSummary::valid_loss);
  std::string paired = "variant,seed,run,baseline_run,d_valid_loss,d_" + sc.csv + ",d_" + sc.csv2 + ",rel_valid_loss\n";
  // The same answer in plain text, for the terminal (compare prints it after the report's path).
  // The name column fits the longest name ("qq-noself+matched" is 17 characters).
  size_t w = 14;
  for (auto& v : order) w = std::max(w, v.size());
  std::string text = fmt::format("{:<{}} {:>5}  {:>10} {:>9}  {:>9} {:>7}\n", "variant", w, "seeds", "valid loss",
                                 "vs " + baseline, sc.csv == "test_bleu" ? "test BLEU" : "test acc%", "vs " + baseline);
  if (bb.n) text += fmt::format("{:<{}} {:>5}  {:>10.4f} {:>9}  {:>9.2f}\n", baseline, w, bb.n, bl.mean, "", bb.mean);
  else text += fmt::format("(no finished {} run yet: nothing to compare with)\n", baseline);
  for (auto& v : order) {
    if (v == baseline || by[v].empty() || bb.n == 0) continue;
    const Stat vb = col(v, sc.first), vl = col(v, &RunSummary::valid_loss);
    const double dbleu = vb.mean - bb.mean, dloss = vl.mean - bl.mean;
    std::string verdict, note;
    if (vb.n < 2 || bb.n < 2) {
      verdict = "one seed on at least one side, so the seed-to-seed spread is unknown: treat the difference as unconfirmed";
      note = "one seed: spread unknown";
    } else {
      const double spread_b = vb.std + bb.std, spread_l = vl.std + bl.std;
      verdict = fmt::format("the {} difference {} the seed spread (sum of standard deviations {:.2f}); the loss difference {} it ({:.4f})",
                            sc.unit, std::fabs(dbleu) > spread_b ? "exceeds" : "is within", spread_b,
                            std::fabs(dloss) > spread_l ? "exceeds" : "is within", spread_l);
      note = fmt::format("beyond the seed spread: loss {}, {} {}", std::fabs(dloss) > spread_l ? "yes" : "no", sc.unit,
                         std::fabs(dbleu) > spread_b ? "yes" : "no");
    }
    text += fmt::format("{:<{}} {:>5}  {:>10.4f} {:>+9.4f}  {:>9.2f} {:>+7.2f}  {}\n", v, w, vb.n, vl.mean, dloss, vb.mean,
                        dbleu, note);
    md += fmt::format("- **{}**: {} {:+.2f} ({} vs {}), valid loss {:+.4f} ({} vs {}); {}.", v, sc.name, dbleu, pm(vb, 2),
                      pm(bb, 2), dloss, pm(vl, 4), pm(bl, 4), verdict);
    // Paired by seed: a seed fixes the data order and dropout for every variant, so the
    // difference within one seed leaves that out of the comparison. "Higher on 3 of 3 seeds" is
    // what the mean ± std alone cannot say.
    std::string dl, db;
    std::vector<double> rel;  // (variant − baseline) / baseline, per seed: a gap comparable across models and tasks
    int n = 0, loss_up = 0, bleu_up = 0;
    for (auto* r : by[v])
      for (auto* b : by[baseline])
        if (r->seed == b->seed) {
          const double pl = r->valid_loss - b->valid_loss, pb = r->*sc.first - b->*sc.first;
          dl += fmt::format("{}{:+.4f} (seed {})", n ? ", " : "", pl, r->seed);
          db += fmt::format("{}{:+.2f}", n ? ", " : "", pb);
          loss_up += pl > 0;
          bleu_up += pb > 0;
          n++;
          rel.push_back(pl / b->valid_loss);
          paired += fmt::format("{},{},{},{},{:.5f},{:.2f},{:.2f},{:.6f}\n", v, r->seed, r->name, b->name, pl, pb,
                                r->*sc.second - b->*sc.second, rel.back());
        }
    if (n > 0) {
      auto count = [&](int up, const char* more, const char* less) {
        return up == n ? fmt::format("{} on {} of {}", more, n, n)
             : up == 0 ? fmt::format("{} on {} of {}", less, n, n)
                       : fmt::format("{} on {}, {} on {} of {}", more, up, less, n - up, n);
      };
      md += fmt::format(" Paired by seed: valid loss {}, {} seed{}; {} {}, {}.", dl, count(loss_up, "higher", "lower"),
                        n > 1 ? "s" : "", sc.name, db, count(bleu_up, "higher", "lower"));
      const Stat r = stat(rel);
      md += n > 1 ? fmt::format(" As a share of {}'s valid loss: {:+.2f}% ± {:.2f}% (mean ± standard deviation over the seeds).",
                                baseline, 100 * r.mean, 100 * r.std)
                  : fmt::format(" As a share of {}'s valid loss: {:+.2f}%.", baseline, 100 * r.mean);
    }
    md += "\n";
  }
  out.write("paired.csv", paired);
  bool single = bb.n == 1;
  for (auto& v : order) single = single || by[v].size() == 1;
  if (single)
    text += "(a difference between single runs can be the seed's doing: `--seeds 3` measures the seed-to-seed spread)\n";
  out.write("summary.txt", summary = text);

}

void ComparisonReport::read_curves() {
  // ---- curves and dynamics: CSVs for the plots -----------------------------------------
  std::string curves = "variant,seed,step,wall_seconds,train_loss,valid_loss,valid_bleu\n";
  std::string dynall = "variant,seed,step,site,metric,value\n";
  for (auto& r : runs) {
    const std::string mpath = dir + "/runs/" + r.name + "/metrics.csv", dpath = dir + "/runs/" + r.name + "/dynamics.csv";
    // A non-finite value (a run that diverged) is left out of the curves and plots, and counted.
    size_t bad = 0, first_bad = 0;
    auto finite = [&](size_t line, double v) {
      if (std::isfinite(v)) return true;
      if (bad++ == 0) first_bad = line;
      return false;
    };
    const std::vector<MetricsRow> m = read_metrics(mpath);
    for (size_t i = 0; i < m.size(); i++) {
      const MetricsRow& row = m[i];
      const size_t line = i + 2;  // (the header is line 1)
      progress[r.name].step = metrics_cell(row, "step");
      if (!finite(line, row.wall_seconds) || !finite(line, row.train_loss)) continue;
      tloss_step[r.variant][double(row.step)].push_back(row.train_loss);
      const bool valid = row.valid_loss && finite(line, *row.valid_loss);
      curves += fmt::format("{},{},{},{},{},{},{}\n", r.variant, r.seed, metrics_cell(row, "step"), metrics_cell(row, "wall_seconds"),
                            metrics_cell(row, "train_loss"), valid ? metrics_cell(row, "valid_loss") : "",
                            valid ? metrics_cell(row, "valid_bleu") : "");
      if (valid) {
        progress[r.name].valid_step = metrics_cell(row, "step");
        progress[r.name].valid_loss = metrics_cell(row, "valid_loss");
        vloss_step[r.variant][double(row.step)].push_back(*row.valid_loss);
        vloss_run[{r.variant, r.seed}][double(row.step)] = *row.valid_loss;
        vloss_of[r.name][double(row.step)] = *row.valid_loss;
        vloss_time[r.variant][row.wall_seconds].push_back(*row.valid_loss);
      }
    }
    if (bad)
      left_out.push_back(fmt::format("`runs/{}/metrics.csv`: {} rows with a value that is not a finite number (the first on "
                                     "line {}) are left out of the curves and plots", r.name, bad, first_bad));
    bad = 0;
    const std::vector<DynRow> d = read_dynamics(dpath);
    for (size_t i = 0; i < d.size(); i++) {
      if (!finite(i + 2, d[i].value)) continue;
      dynall += fmt::format("{},{},{}\n", csv_field(r.variant), r.seed, dynamics_line(d[i]));
      // Gradient norms and W_q W_kᵀ asymmetry per layer; entropy and diagonal mass per site kind.
      const std::string& metric = d[i].metric;
      const bool per_layer = metric == "grad_wq" || metric == "grad_wk" || metric == "wqk_asymmetry";
      // one plot per metric and site kind (a plot of every variant at every kind held more
      // series than a palette has distinct styles)
      const std::string key = per_layer ? metric + "|" + r.variant : metric + "|" + site_kind(d[i].site);
      const std::string label = per_layer ? d[i].site : r.variant;
      dyn[key][label][double(d[i].step)].push_back(d[i].value);
    }
    if (bad)
      left_out.push_back(fmt::format("`runs/{}/dynamics.csv`: {} values that are not finite numbers (the first on line {}) "
                                     "are left out of the plots", r.name, bad, first_bad));
  }
  out.write("curves.csv", curves);
  out.write("dynamics.csv", dynall);

}

void ComparisonReport::to_the_end() {
  // ---- trained to the end (docs/results.md §8) -------------------------------------------
  // Runs of compare --until-plateau: where each stopped, and whether each variant's gap to the
  // baseline closed, held or grew between the reference step and the end (the best checkpoint's
  // validation loss, on the same full validation set the curves use).
  bool any = false;
  for (auto& r : runs) any = any || (r.finished && r.until_plateau > 0);
  if (!any) return;
  md += fmt::format("\n## Trained to the end\n\nEach run trained until its validation loss had not fallen by more than its "
                    "plateau delta for `--until-plateau` evaluations in a row, or until its step limit; its best checkpoint "
                    "is scored. The gap g is a variant's mean validation loss minus {}'s (over seeds), σ the sum of the two "
                    "sides' seed standard deviations; at the end both use each run's best validation loss. The gap "
                    "**closes** when g_end < g({}) − (σ_end + σ({})), **grows** when g_end > g({}) + (σ_end + σ({})), and "
                    "**holds** otherwise (docs/results.md §8). The plot of each variant minus {}, seed by seed, shows g "
                    "over the whole run.\n\n",
                    baseline, gap_from, gap_from, gap_from, gap_from, baseline);
  md += "| run | steps | stopped | best valid loss (step) | " + sc.name + " |\n|---|---|---|---|---|\n";
  std::string csv = "variant,seeds,from_step,g_from,spread_from,g_end,spread_end,change,not_converged\n";
  std::map<std::string, std::vector<std::string>> not_converged;  // variant -> runs that hit the step limit
  for (auto& r : runs) {
    if (!r.finished) continue;
    std::string best = fmt::format("{:.4f}", r.valid_loss);
    auto curve = vloss_of.find(r.name);
    if (curve != vloss_of.end() && !curve->second.empty()) {
      auto lowest = std::min_element(curve->second.begin(), curve->second.end(), [](auto& a, auto& b) { return a.second < b.second; });
      best += fmt::format(" ({:.0f})", lowest->first);
    }
    const char* stopped = r.until_plateau == 0 ? "fixed steps" : r.plateaued == 1 ? "plateau" : r.plateaued == 0 ? "step limit: not converged" : "not recorded";
    if (r.until_plateau > 0 && r.plateaued == 0) not_converged[r.variant].push_back(r.name);
    md += fmt::format("| {} | {} | {} | {} | {:.2f} |\n", r.name, r.steps, stopped, best, r.*sc.first);
  }
  md += "\n";
  // The reference step's losses, one per run, from its own curve; every finished run must have one.
  auto at_step = [&](const std::string& v, std::vector<double>& out) {
    for (auto* r : by[v]) {
      auto c = vloss_of.find(r->name);
      if (c == vloss_of.end() || !c->second.count(double(gap_from))) return false;
      out.push_back(c->second.at(double(gap_from)));
    }
    return !out.empty();
  };
  // A verdict compares runs trained to the end, on both sides, one run per seed.
  auto to_the_end_only = [&](const std::string& v) {
    std::set<int> seeds;
    for (auto* r : by[v])
      if (r->until_plateau == 0 || !seeds.insert(r->seed).second) return false;
    return true;
  };
  std::vector<double> base0;
  const bool have_base0 = at_step(baseline, base0);
  const Stat b0 = stat(base0), bend = col(baseline, &RunSummary::valid_loss);
  for (auto& v : order) {
    if (v == baseline || by[v].empty() || bend.n == 0) continue;
    if (!to_the_end_only(v) || !to_the_end_only(baseline)) {
      md += fmt::format("- **{}**: not every run of {} and {} was trained to the end, or a seed has more than one run "
                        "(other settings), so the change of the gap is not stated; give such runs a directory of their "
                        "own.\n", v, v, baseline);
      continue;
    }
    std::vector<double> v0;
    if (!have_base0 || !at_step(v, v0)) {
      md += fmt::format("- **{}**: no validation loss at step {} in every run of {} and {}, so the change of the gap "
                        "cannot be stated (`compare --report DIR --gap-from STEP` takes another step that all evaluated).\n",
                        v, gap_from, v, baseline);
      continue;
    }
    const Stat s0 = stat(v0), send = col(v, &RunSummary::valid_loss);
    const double g0 = s0.mean - b0.mean, sp0 = s0.std + b0.std, gend = send.mean - bend.mean, spend = send.std + bend.std;
    const GapChange change = gap_change(g0, sp0, gend, spend, send.n, bend.n);
    std::string nc;
    for (const std::string& side : {v, baseline})
      for (auto& n : not_converged[side]) nc += (nc.empty() ? "" : ", ") + n;
    md += fmt::format("- **{}**: g({}) = {:+.4f} (σ {:.4f}), g_end = {:+.4f} (σ {:.4f}): {}{}.\n", v, gap_from, g0, sp0,
                      gend, spend,
                      change == GapChange::Unconfirmed ? std::string("the change is unconfirmed (one seed on a side: the spread is unknown)")
                                                       : fmt::format("the gap **{}**", gap_change_name(change)),
                      nc.empty() ? "" : fmt::format(" — but {} reached the step limit without a plateau (not converged)", nc));
    csv += fmt::format("{},{},{},{:.5f},{:.5f},{:.5f},{:.5f},{},{}\n", v, send.n, gap_from, g0, sp0, gend, spend,
                       csv_field(gap_change_name(change)), csv_field(nc));
  }
  out.write("to_the_end.csv", csv);
  ended = true;
}

void ComparisonReport::at_equal_loss() {
  // ---- at equal progress (docs/results.md §4, §7) ----------------------------------------
  // Each variant's gap where the baseline's curve reaches each L of --at-loss: the variant's
  // loss at that step (both read linearly between evaluations) minus L. The mean curves are the
  // mean over seeds at the steps every finished run of the variant evaluated; each seed's gap
  // pairs it with the baseline's run of the same seed.
  if (at_loss.empty()) return;
  md += "\n## At equal progress\n\n";
  if (mixed_settings) {  // a mean over runs of other settings (two rates, say) is no curve of either
    md += "Not read: these runs were not all trained with the same settings (above), so a variant's mean curve would "
          "mix them. Give each setting its own directory (runs/ may hold links) and report on each.\n";
    return;
  }
  if (by[baseline].empty()) {
    md += fmt::format("Not read: no run of {} has finished.\n", baseline);
    return;
  }
  auto mean_curve = [&](const std::string& v) {
    std::map<double, double> sum;
    std::map<double, size_t> count;
    for (auto* r : by[v])
      if (auto c = vloss_of.find(r->name); c != vloss_of.end())
        for (auto& [step, loss] : c->second) sum[step] += loss, count[step]++;
    std::map<double, double> mean;
    for (auto& [step, total] : sum)
      if (count[step] == by[v].size()) mean[step] = total / double(count[step]);
    return mean;
  };
  auto run_of = [&](const std::string& v, int seed) -> const std::map<double, double>* {
    for (auto* r : by[v])
      if (r->seed == seed)
        if (auto c = vloss_of.find(r->name); c != vloss_of.end()) return &c->second;
    return nullptr;  // (one run per seed: the settings are the same, and read_runs refuses a copy)
  };
  auto gap_text = [](std::optional<double> g) { return g ? fmt::format("{:+.3f}", *g) : std::string("—"); };
  auto seed_list = [&](const std::string& v) {
    std::string list;
    for (auto* r : by[v]) list += (list.empty() ? "" : ", ") + std::to_string(r->seed);
    return list;
  };
  const std::map<double, double> base = mean_curve(baseline);
  std::set<int> seeds;
  for (auto* r : by[baseline]) seeds.insert(r->seed);
  md += fmt::format("Each variant's validation loss at the step where {}'s reaches L (its mean curve over seeds; the step "
                    "read linearly between evaluations, the first time the curve is at or below L), minus L: the gap at "
                    "equal progress rather than at equal step. The seed columns pair each seed with {}'s run of the same "
                    "seed, each at that run's own crossing. — : {} does not reach L (or starts below it), or the variant "
                    "was not evaluated that far.\n\n",
                    baseline, baseline, baseline);
  if (!base.empty()) {
    auto lowest = std::min_element(base.begin(), base.end(), [](auto& x, auto& y) { return x.second < y.second; });
    md += fmt::format("{}'s mean curve ({} {}: seed{} {}) starts at {:.3f} (step {:.0f}) and is lowest at {:.3f} (step "
                      "{:.0f}).\n\n", baseline, by[baseline].size(), by[baseline].size() == 1 ? "run" : "runs",
                      by[baseline].size() == 1 ? "" : "s", seed_list(baseline), base.begin()->second, base.begin()->first,
                      lowest->second, lowest->first);
  }
  md += "| variant (seeds) | L | " + baseline + " reaches L at step | gap (mean curves) |";
  for (int s : seeds) md += fmt::format(" seed {} |", s);
  md += "\n|---|---|---|---|";
  for (size_t i = 0; i < seeds.size(); i++) md += "---|";
  md += "\n";
  std::string csv = "variant,level,seed," + baseline + "_step,gap\n";  // seed "mean": the mean curves
  auto csv_num = [](std::optional<double> x, const char* f) { return x ? fmt::format(fmt::runtime(f), *x) : std::string(); };
  for (auto& v : order) {
    if (v == baseline || by[v].empty()) continue;
    const std::map<double, double> var = mean_curve(v);
    for (const Level& level : at_loss) {
      const std::optional<double> step = step_at_loss(base, level.value);
      std::optional<double> gap;
      if (step)
        if (auto l = loss_at_step(var, *step)) gap = *l - level.value;
      md += fmt::format("| {} ({}) | {} | {} | {} |", v, seed_list(v), level.text,
                        step ? fmt::format("{:.0f}", *step) : std::string("—"), gap_text(gap));
      csv += fmt::format("{},{},mean,{},{}\n", csv_field(v), level.text, csv_num(step, "{:.1f}"), csv_num(gap, "{:.5f}"));
      for (int seed : seeds) {
        const std::map<double, double>*b = run_of(baseline, seed), *w = run_of(v, seed);
        std::optional<double> s, g;
        if (b && w && (s = step_at_loss(*b, level.value)))
          if (auto l = loss_at_step(*w, *s)) g = *l - level.value;
        md += " " + gap_text(g) + " |";
        csv += fmt::format("{},{},{},{},{}\n", csv_field(v), level.text, seed, csv_num(s, "{:.1f}"), csv_num(g, "{:.5f}"));
      }
      md += "\n";
    }
  }
  out.write("at_loss.csv", csv);
  at_loss_written = true;
}

// One series of a plot's data file: x, the mean over seeds, the lowest and the highest seed.
// `seeds`: whether any point has more than one seed (the plot then shades the spread).
static std::string series_block(const std::string& label, const std::map<double, std::vector<double>>& pts, bool& seeds) {
  std::string data = "# " + label + " (x,mean,min,max over seeds)\n";
  for (auto& [x, ys] : pts) {
    data += fmt::format("{},{:.6g},{:.6g},{:.6g}\n", x, stat(ys).mean, *std::min_element(ys.begin(), ys.end()),
                        *std::max_element(ys.begin(), ys.end()));
    seeds = seeds || ys.size() > 1;
  }
  return data + "\n\n";
}

std::string ComparisonReport::series_plot(const std::string& name, const std::string& title_, const std::string& xl,
                                        const std::string& yl, const SeriesMap& series, bool logy, double xmin, bool zero_line,
                                        double ref, const std::string& ref_title) {
  if (series.empty()) return std::string();
  // Each point: x, the mean over seeds, and the lowest and highest seed; a series with more
  // than one seed gets a shaded band between them, so the seed spread is visible.
  std::string data, cmd;  // the data file, and the plot command
  int idx = 0;
  // Variants in the table's order (then any other series, e.g. layers, in name order).
  std::vector<std::pair<std::string, const std::map<double, std::vector<double>>*>> ordered;
  for (auto& [label, pts] : series) ordered.push_back({label, &pts});
  auto rank_of = [&](const std::string& l) { return size_t(std::find(order.begin(), order.end(), l) - order.begin()); };
  std::stable_sort(ordered.begin(), ordered.end(), [&](auto& a, auto& b) { return rank_of(a.first) < rank_of(b.first); });
  for (auto& [label, pts_ptr] : ordered) {
    bool seeds = false;
    data += series_block(label, *pts_ptr, seeds);
    const std::string src = fmt::format("'plots/{}.csv' index {}", name, idx);
    // A variant keeps its style (colour and dashes) in every plot: its place in the table, when
    // the table fits the palette; otherwise, and for other series (layers), the series' place here.
    const bool by_variant = order.size() <= plot::kStyles && rank_of(label) < order.size();
    const int style = (by_variant ? int(rank_of(label)) : idx) % int(plot::kStyles) + 1;
    if (seeds) cmd += fmt::format("{}{} using 1:3:4 with filledcurves fs transparent solid 0.15 noborder lt {} notitle",
                                   cmd.empty() ? "" : ", ", src, style);
    cmd += fmt::format("{}{} using 1:2 with linespoints pt 7 ps 0.4 lt {} title {}", cmd.empty() ? "" : ", ", src,
                        style, plot::quoted(label));
    idx++;
  }
  out.write("plots/" + name + ".csv", data);
  const std::string range = xmin >= 0 ? fmt::format("set xrange [{}:*]\n", xmin) : "";
  if (zero_line) cmd += ", 0 with lines dt 2 lc 'black' notitle";
  if (!ref_title.empty()) cmd += fmt::format(", {} with lines dt 3 lw 2 lc 'black' title {}", ref, plot::quoted(ref_title));
  gp += fmt::format("set output {}\nset title {}\nset xlabel {}\nset ylabel {}\n{}{}plot {}\n{}{}", plot::quoted("plots/" + name + ".png"),
                    plot::quoted(title_), plot::quoted(xl), plot::quoted(yl), logy ? "set logscale y\n" : "", range, cmd, logy ? "unset logscale y\n" : "",
                    range.empty() ? "" : "set xrange [*:*]\n");
  return "plots/" + name + ".png";
}

void ComparisonReport::plots() {
  // One data file per plot: blocks separated by two blank lines, one block per series. The
  // directory is the report's own: what an earlier report drew there goes first.
  fs::create_directories(out.path() + "/plots");  // replaces the earlier report's plots/ whole (StagedDir)
  gp = plot::script_header("the report's plots", "plots.gp", 900, 520, 10, 1.5, false);
  auto add = [&](const std::string& caption, const std::string& path) {
    if (!path.empty()) images.push_back({caption, path});
  };
  add("Validation loss by step (mean over seeds; shaded: from the lowest to the highest seed)", series_plot("valid_loss_by_step", "validation loss by step", "step", "valid loss", vloss_step));
  // The same from half-way on, where the variants' gaps and the seed spread are a few hundredths
  // of a nat, invisible next to the first evaluation's loss of 4-5.
  double last_step = 0;
  for (auto& [label, pts] : vloss_step)
    if (!pts.empty()) last_step = std::max(last_step, pts.rbegin()->first);
  if (last_step > 0)
    add("Validation loss in the second half of training (the same, zoomed in)",
        series_plot("valid_loss_late", "validation loss, second half of training", "step", "valid loss", vloss_step, false,
                    last_step / 2));
  // Each variant minus the baseline, seed by seed at the steps both evaluated: the common
  // downward trend drops out, and whether (and when) a variant is ahead or behind is visible.
  std::map<std::string, std::map<double, std::vector<double>>> vloss_diff;
  for (auto& [key, pts] : vloss_run) {
    const auto& [variant, seed] = key;
    auto base = vloss_run.find({baseline, seed});
    if (variant == baseline || base == vloss_run.end()) continue;
    for (auto& [step, loss] : pts)
      if (base->second.count(step)) vloss_diff[variant][step].push_back(loss - base->second.at(step));
  }
  add("Validation loss minus the baseline's, seed by seed (mean over seeds; shaded: lowest to highest; below 0: lower "
      "loss than " + baseline + ")",
      series_plot("valid_loss_diff", "validation loss minus " + baseline + "'s (same seed)", "step", "difference in valid loss",
                  vloss_diff, false, -1, true));
  add("Validation loss by training wall time", series_plot("valid_loss_by_time", "validation loss by wall time", "seconds", "valid loss", vloss_time));
  add("Training loss (window means)", series_plot("train_loss", "training loss", "step", "train loss", tloss_step));
  // A plot with more series than the palette has styles is drawn as several (layers 1-12, 13-...).
  auto dyn_plot = [&](const std::string& metric, const std::string& caption, const std::string& yl, bool logy,
                      double ref = 0, const std::string& ref_title = "") {
    if (!dyn.count(metric)) return;
    const SeriesMap& all = dyn[metric];
    if (all.size() <= plot::kStyles) {
      add(caption, series_plot(safe(metric), caption, "step", yl, all, logy, -1, false, ref, ref_title));
      return;
    }
    SeriesMap part;
    int n = 0;
    for (auto it = all.begin(); it != all.end(); ++it) {
      part.insert(*it);
      if (part.size() == plot::kStyles || std::next(it) == all.end()) {
        const std::string c = fmt::format("{} (part {})", caption, ++n);
        add(c, series_plot(fmt::format("{}_{}", safe(metric), n), c, "step", yl, part, logy, -1, false, ref, ref_title));
        part.clear();
      }
    }
  };
  for (const char* kind : {"enc self", "dec self", "cross"})
    dyn_plot(std::string("entropy|") + kind, fmt::format("Attention entropy (nats), {}-attention, mean over layers, heads and "
                                                         "query positions", kind), "entropy (nats)", false);
  for (const char* kind : {"enc self", "dec self"})
    dyn_plot(std::string("diag_mass|") + kind, fmt::format("Attention mass on the diagonal P(i,i), {}-attention, mean over "
                                                           "layers", kind), "P(i,i)", false);
  for (auto& v : order) {
    dyn_plot("wqk_asymmetry|" + v, "[" + v + "] asymmetry of each layer\u2019s W_q W_kᵀ: |A - Aᵀ| / |A| (QQᵀ forces 0)",
             "asymmetry |A - Aᵀ| / |A|", false, std::sqrt(2.0), "a random matrix (√2)");
    dyn_plot("grad_wq|" + v, "[" + v + "] gradient norm of W_q per layer (for qq sites: the shared W)", "|dL/dW_q|", true);
    dyn_plot("grad_wk|" + v, "[" + v + "] gradient norm of W_k per layer", "|dL/dW_k|", true);
  }
  out.write("plots.gp", gp);
}

void ComparisonReport::draw_and_finish() {
  const plot::Drawn drawn = plot::draw(out.path(), "plots.gp", "plots.log");
  md += "\n## Plots\n\n";
  if (drawn == plot::Drawn::no_gnuplot) {
    md += "gnuplot was not available, so the plots were not drawn. Their data is in `plots/*.csv`; install "
          "`gnuplot-nox` and run `gnuplot plots.gp` in this directory to draw them.\n\n";
  } else if (drawn == plot::Drawn::failed) {
    out.check_written("gnuplot");
    md += "gnuplot failed, so the plots were not drawn (its messages are in `plots.log`). Their data is in "
          "`plots/*.csv`; `gnuplot plots.gp` in this directory draws them.\n\n";
    out.write("summary.txt", summary += fmt::format("(the plots were not drawn: gnuplot failed on {}/plots.gp, see {}/plots.log)\n", dir, dir));
  }
  for (auto& [caption, path] : images) md += fmt::format("### {}\n\n![{}]({})\n\n", caption, caption, path);
  if (!left_out.empty()) {
    md += "## Left out\n\n";
    for (auto& line : left_out) md += "- " + line + "\n";
    md += "\n";
  }
  md += "## Unfinished runs\n\n";
  bool any = false;
  for (auto& r : runs) {
    if (r.finished) continue;
    any = true;
    const Progress& pr = progress[r.name];
    std::string where = pr.step.empty() ? "no step logged yet" : "logged up to step " + pr.step;
    if (!pr.valid_loss.empty()) where += fmt::format(", validation loss {} at step {}", pr.valid_loss, pr.valid_step);
    md += fmt::format("- `{}`: {} (its curves are in the plots; resume it with `attnlab compare` again, or "
                      "`attnlab train --resume --out {}/runs/{}`)\n", r.name, where, dir, r.name);
  }
  if (!any) md += "None.\n";
  md += "\n## Files\n\n`summary.csv` (one row per run: the table above), `summary.txt` (the verdicts in brief, as compare prints them), `paired.csv` (each variant minus the baseline, "
        "seed by seed, and the loss difference as a share of the baseline's), `curves.csv` (every logged step of every run), "
        "`dynamics.csv` (gradient norms, attention entropy, diagonal mass, W_q W_kᵀ asymmetry), `plots/*.csv` (the series "
        "drawn), `plots.gp` (the gnuplot script)";
  if (ended)
    md += fmt::format(", `to_the_end.csv` (each variant's gap to the baseline at step {} and at the end, and the change)", gap_from);
  if (at_loss_written)
    md += ", `at_loss.csv` (each variant's gap where the baseline reaches each --at-loss level: the mean curves, then each seed)";
  md += ".\n";
  out.write("report.md", md);
  out.commit();
  // An earlier report's optional CSVs that this one does not make (other runs, or no --at-loss)
  // would be read as this report's.
  std::error_code absent;
  if (!ended) fs::remove(fs::path(dir) / "to_the_end.csv", absent);
  if (!at_loss_written) fs::remove(fs::path(dir) / "at_loss.csv", absent);
}

std::string ComparisonReport::write() {
  group();
  summary_table();
  settings_note();
  verdicts();
  read_curves();
  to_the_end();
  at_equal_loss();
  plots();
  draw_and_finish();
  return dir + "/report.md";
}

}  // namespace

std::string write_report(const std::string& dir, const std::string& baseline, const std::string& title, const ReportOptions& opts) {
  return ComparisonReport(dir, baseline, title, opts).write();
}

std::string summary_text(const std::string& dir) { return read_file(dir + "/summary.txt"); }

}  // namespace attn
