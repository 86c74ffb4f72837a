// tests/test_train.cpp — the run layer's arithmetic: the frontier's interpolation, the verdict
// rule, the settlement rule, the operations count, and the frontier report on a synthetic grid
// whose answers are known.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/train/config.h>
#include <attnlab/train/frontier.h>
#include <attnlab/train/run_logs.h>
#include <attnlab/train/loaded_run.h>
#include <attnlab/train/report.h>
#include <attnlab/train/trainer.h>
#include <attnlab/train/tune.h>
#include <attnlab/data/metrics.h>
#include <attnlab/models/decode.h>
#include "tests/decisions.h"

using namespace attn;
namespace fs = std::filesystem;

TEST_CASE("the frontier is linear in log(parameters) between the baseline's widths, and not extended beyond them") {
  const std::vector<std::pair<double, double>> pts = {{400, 3.0}, {100, 4.0}, {1600, 2.5}};  // any order
  REQUIRE(interpolate_log_params(pts, 100).value() == Approx(4.0));
  REQUIRE(interpolate_log_params(pts, 200).value() == Approx(3.5));   // half-way in log between 100 and 400
  REQUIRE(interpolate_log_params(pts, 800).value() == Approx(2.75));  // half-way in log between 400 and 1600
  REQUIRE(interpolate_log_params(pts, 400 * std::pow(4.0, 0.25)).value() == Approx(2.875));
  REQUIRE(interpolate_log_params(pts, 1600).value() == Approx(2.5));
  REQUIRE_FALSE(interpolate_log_params(pts, 99).has_value());
  REQUIRE_FALSE(interpolate_log_params(pts, 1601).has_value());
  REQUIRE_FALSE(interpolate_log_params({}, 100).has_value());
}

TEST_CASE("the verdict: above when the difference exceeds the spread, below when it is under minus the spread, else on") {
  REQUIRE(frontier_verdict(0.05, 0.02, 2, 2) == FrontierVerdict::Above);
  REQUIRE(frontier_verdict(-0.05, 0.02, 3, 2) == FrontierVerdict::Below);
  REQUIRE(frontier_verdict(0.019, 0.02, 2, 2) == FrontierVerdict::On);
  REQUIRE(frontier_verdict(-0.02, 0.02, 2, 2) == FrontierVerdict::On);  // the boundary is on the frontier
  REQUIRE(frontier_verdict(0.5, 0.0, 1, 2) == FrontierVerdict::Unconfirmed);
  REQUIRE(frontier_verdict(0.5, 0.0, 2, 1) == FrontierVerdict::Unconfirmed);
  REQUIRE(frontier_verdict(std::nullopt, 0.0, 2, 2) == FrontierVerdict::Outside);
}

static LossCurve curve(std::map<int64_t, double> mean, double final_std, int seeds = 2) {
  LossCurve c;
  c.mean = mean;
  c.final_mean = mean.rbegin()->second;
  c.final_std = final_std;
  c.seeds = seeds;
  return c;
}

TEST_CASE("the order has settled unless a pair apart by more than its spread swaps in the last third") {
  // qq ahead early, behind from step 1000 of 1500: the last third starts at 1000
  const LossCurve qk = curve({{500, 3.6}, {1000, 2.80}, {1250, 2.64}, {1500, 2.50}}, 0.01);
  const LossCurve qq = curve({{500, 3.5}, {1000, 2.85}, {1250, 2.70}, {1500, 2.60}}, 0.01);
  REQUIRE(order_settled({{"qk", qk}, {"qq", qq}}).settled);
  // the same pair, but qq still ahead at step 1250: a swap in the last third
  const LossCurve late = curve({{500, 3.5}, {1000, 2.78}, {1250, 2.63}, {1500, 2.60}}, 0.01);
  const Settlement s = order_settled({{"qk", qk}, {"qq", late}});
  REQUIRE_FALSE(s.settled);
  REQUIRE(s.detail == "qk and qq swap at step 1000");
  // a final difference within the spread is no order to keep
  const LossCurve close = curve({{500, 3.5}, {1000, 2.78}, {1250, 2.63}, {1500, 2.51}}, 0.01);
  REQUIRE(order_settled({{"qk", qk}, {"qq", close}}).settled);
}

TEST_CASE("operations per target token: dropping the output projection saves 6 C^2 per site and token") {
  ModelConfig c;
  c.vocab = 40;
  c.d_model = 16;
  c.heads = 2;
  c.enc_layers = 1;
  c.dec_layers = 1;
  c.d_ff = 32;
  c.apply_preset("qk");
  ModelConfig no = c;
  no.apply_preset("noO");
  // one output projection per site (encoder self, decoder self, cross): forward, dX and dW are
  // each 2 R C^2 for the site's R rows, and every site has R = B·len rows when source and
  // target have the same length.
  const double saved = train_flops_per_target_token(c, 10, 4) - train_flops_per_target_token(no, 10, 4);
  REQUIRE(saved == Approx(6.0 * 16 * 16 * 3));
  ModelConfig qq = c;
  qq.apply_preset("qq");
  REQUIRE(train_flops_per_target_token(qq, 10, 4) < train_flops_per_target_token(c, 10, 4));
}

// A run directory with the files the report reads; its validation loss falls to `loss`.
static void fake_run(const fs::path& dir, const std::string& variant, int d, int seed, double lr, double loss, double bleu) {
  fs::create_directories(dir);
  TrainConfig cfg;
  cfg.variant = variant;
  cfg.seed = uint64_t(seed);
  cfg.lr = float(lr);
  cfg.steps = 300;
  cfg.model.vocab = 40;
  cfg.model.d_model = d;
  cfg.model.heads = 2;
  cfg.model.enc_layers = cfg.model.dec_layers = 1;
  cfg.model.d_ff = 4 * d;
  cfg.model.apply_preset(variant);
  write_file_atomic((dir / "config.json").string(), cfg.to_json().dump(2));
  nlohmann::json res = {{"params", count_params(cfg.model)}, {"steps", 300}, {"train_seconds", 10.0}, {"tokens_per_s", 100.0},
                        {"valid_loss", loss}, {"valid_ppl", std::exp(loss)}, {"test_bleu", bleu}, {"test_chrf", 30.0},
                        {"attnlab", "test"}, {"machine", "test"}};
  write_file_atomic((dir / "results.json").string(), res.dump(2));
  std::string m = "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n";
  for (int step : {100, 200, 300})
    m += fmt::format("{},0,4,0.001,1,100,1,1,{:.5f},1,,\n", step, loss + 0.1 * (300 - step) / 100.0);
  write_file_atomic((dir / "metrics.csv").string(), m);
  write_file_atomic((dir / "dynamics.csv").string(),
                    fmt::format("step,site,metric,value\n300,enc.0.self_attn,diag_mass,{}\n300,dec.0.self_attn,diag_mass,0.3\n",
                                variant == "qq" ? 0.6 : 0.2));
}

// Every plot command of a gnuplot script: no two titled series share a line style (lt N).
static void require_distinct_styles(const std::string& gp) {
  std::istringstream in(gp);
  int plots = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("plot ", 0) != 0) continue;
    plots++;
    std::set<std::string> styles;
    const std::regex titled(R"(lt (\d+) title)");
    size_t styled = 0;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), titled); it != std::sregex_iterator(); ++it, ++styled) {
      INFO(line);
      REQUIRE(styles.insert((*it)[1]).second);
    }
    // every titled series names its style (a reference line, drawn in black, has no lt)
    size_t titled_series = 0;
    for (size_t at = line.find(" title '"); at != std::string::npos; at = line.find(" title '", at + 1)) titled_series++;
    const size_t references = line.find(" with lines dt 3 ") != std::string::npos ? 1 : 0;
    INFO(line);
    REQUIRE(styled + references == titled_series);
  }
  REQUIRE(plots > 0);
}

TEST_CASE("the frontier report on a synthetic grid: interpolated frontier, verdicts, settlement, sweep, per-width reports") {
  const fs::path d = fs::temp_directory_path() / ("attnlab-frontier-" + std::to_string(::getpid()));
  fs::remove_all(d);
  // qk at 16, 32, 64 (2 seeds, spread 0.01); qq at 32 well above, noO at 32 on the line;
  // a learning-rate sweep run of qk at 64.
  for (int w : {16, 32, 64})
    for (int s : {1, 2}) fake_run(d / "runs" / fmt::format("qk-d{}-s{}", w, s), "qk", w, s, 1e-3, 5.0 - w / 32.0 + (s == 1 ? 0.005 : -0.005), 10);
  for (int s : {1, 2}) {
    fake_run(d / "runs" / fmt::format("qq-d32-s{}", s), "qq", 32, s, 1e-3, 4.3 + (s == 1 ? 0.005 : -0.005), 8);
    fake_run(d / "runs" / fmt::format("noO-d32-s{}", s), "noO", 32, s, 1e-3, 0, 9);
  }
  fake_run(d / "runs" / "qk-d64-lr3e-3-s1", "qk", 64, 1, 3e-3, 3.2, 9);
  fake_run(d / "runs" / "qq-d64-lr3e-3-s1", "qq", 64, 1, 3e-3, 3.5, 9);  // a variant at the swept rate too
  // noO's loss: exactly the frontier at its parameter count, read back from the interpolation
  const auto p = [](const std::string& v, int w) {
    ModelConfig c;
    c.vocab = 40, c.d_model = w, c.heads = 2, c.enc_layers = c.dec_layers = 1, c.d_ff = 4 * w;
    c.apply_preset(v);
    return double(count_params(c));
  };
  const double on_line = *interpolate_log_params({{p("qk", 16), 4.5}, {p("qk", 32), 4.0}, {p("qk", 64), 3.0}}, p("noO", 32));
  for (int s : {1, 2}) fake_run(d / "runs" / fmt::format("noO-d32-s{}", s), "noO", 32, s, 1e-3, on_line + (s == 1 ? 0.001 : -0.001), 9);

  REQUIRE(is_width_grid(read_runs(d.string())));
  const std::string report = write_grid_report(d.string());
  REQUIRE(report == (d / "report.md").string());
  const std::string csv = read_file((d / "frontier.csv").string());
  INFO(csv);
  // qq at 32: 4.3 against a frontier a little above 4.0 (qq has fewer parameters): above
  auto row = [&](const std::string& start) {
    const size_t at = csv.find("\n" + start);
    REQUIRE(at != std::string::npos);
    return csv.substr(at + 1, csv.find('\n', at + 1) - at - 1);
  };
  REQUIRE_THAT(row("qq,32,2,"), Catch::EndsWith(",above (worse)"));
  REQUIRE_THAT(row("noO,32,2,"), Catch::EndsWith(",on (within the spread)"));
  REQUIRE_THAT(row("qk,64,2,"), Catch::EndsWith(",baseline"));
  const std::string md = read_file(report);
  REQUIRE_THAT(md, Catch::Contains("- d_model 32: settled"));
  REQUIRE_THAT(md, Catch::Contains("| 64 | qk | 0.003 | 3.2000 | 3.0050 | — |"));  // the sweep beside the recipe's seed 1
  REQUIRE_THAT(md, Catch::Contains("| 64 | qq | 0.003 | 3.5000 | — | +0.3000 |"));  // qq minus qk at the same rate
  REQUIRE_THAT(read_file((d / "sweep.csv").string()), Catch::Contains("\n64,qq,0.003,1,qq-d64-lr3e-3-s1,3.50000,,0.30000\n"));
  REQUIRE(fs::exists(d / "widths" / "d32" / "report.md"));
  require_distinct_styles(read_file((d / "frontier.gp").string()));
  require_distinct_styles(read_file((d / "widths" / "d32" / "plots.gp").string()));
  // qq against qk at the same step: every synthetic curve falls by 0.1 per 100 steps, so the
  // difference is the final one at every step, beside qk's mean loss there
  const std::string progress = read_file((d / "progress.csv").string());
  REQUIRE_THAT(progress, Catch::StartsWith("variant,d_model,step,qk_loss,variant_loss,difference\n"));
  REQUIRE_THAT(progress, Catch::Contains("\nqq,32,200,4.10000,4.40000,0.30000\n"));
  REQUIRE_THAT(progress, Catch::Contains("\nnoO,32,300,"));
  REQUIRE(fs::exists(d / "plots" / "progress_qq.csv"));
  REQUIRE_THAT(md, Catch::Contains("(plots/progress_qq.png)"));
  REQUIRE_FALSE(fs::exists(d / "widths" / "d16"));  // qk alone at 16: nothing to compare there
  // the summary has one row per finished run, sweep included
  const std::string summary = read_file((d / "summary.csv").string());
  REQUIRE(std::count(summary.begin(), summary.end(), '\n') == 1 + 6 + 4 + 2);
  // a second report over the same runs writes the same files
  write_grid_report(d.string());
  REQUIRE(read_file((d / "summary.csv").string()) == summary);
  REQUIRE(read_file((d / "frontier.csv").string()) == csv);
  // A wider baseline with one seed so far leaves the verdicts between two-seed widths standing,
  // and makes those it brackets unconfirmed
  fake_run(d / "runs" / "qk-d128-s1", "qk", 128, 1, 1e-3, 1.0, 20);
  for (int s : {1, 2}) fake_run(d / "runs" / fmt::format("qq-d128-s{}", s), "qq", 128, s, 1e-3, 1.5 + (s == 1 ? 0.005 : -0.005), 15);
  write_grid_report(d.string());
  const std::string csv2 = read_file((d / "frontier.csv").string());
  auto row2 = [&](const std::string& start) {
    const size_t at = csv2.find("\n" + start);
    REQUIRE(at != std::string::npos);
    return csv2.substr(at + 1, csv2.find('\n', at + 1) - at - 1);
  };
  REQUIRE_THAT(row2("qq,32,2,"), Catch::EndsWith(",above (worse)"));
  REQUIRE_THAT(row2("qq,128,2,"), Catch::EndsWith(",unconfirmed (one seed)"));
  // a damaged log stops the report with the file and line, as the comparison report's does
  std::ofstream(d / "runs" / "qq-d32-s1" / "metrics.csv", std::ios::app) << "x,0,4,0.001,1,100,1,1,4.1,1,,\n";
  REQUIRE_THROWS_WITH(write_grid_report(d.string()), Catch::Contains("qq-d32-s1/metrics.csv:5: expected a number, got 'x'"));
  fs::remove_all(d);
}

TEST_CASE("the gap's change: closes below g0 minus both spreads, grows above g0 plus them, else holds") {
  REQUIRE(gap_change(0.20, 0.02, 0.05, 0.02, 2, 2) == GapChange::Closes);
  REQUIRE(gap_change(0.20, 0.02, 0.30, 0.02, 2, 2) == GapChange::Grows);
  REQUIRE(gap_change(0.20, 0.02, 0.17, 0.02, 2, 2) == GapChange::Holds);
  REQUIRE(gap_change(0.20, 0.02, 0.16, 0.02, 2, 2) == GapChange::Holds);  // the boundary holds
  REQUIRE(gap_change(0.20, 0.02, 0.25, 0.03, 3, 2) == GapChange::Holds);
  REQUIRE(gap_change(-0.10, 0.01, 0.00, 0.01, 2, 2) == GapChange::Grows);  // a variant ahead that falls behind
  REQUIRE(gap_change(0.20, 0.00, 0.0, 0.00, 1, 2) == GapChange::Unconfirmed);
  REQUIRE(gap_change(0.20, 0.00, 0.0, 0.00, 2, 1) == GapChange::Unconfirmed);
}

// A run of compare --until-plateau: evaluations every 250 steps, falling linearly to `at2000` at
// step 2,000 and on to `best` at `steps`; the best checkpoint's loss is `best`.
static void fake_long_run(const fs::path& dir, const std::string& variant, int seed, double at2000, double best, int steps,
                          bool plateaued) {
  fs::create_directories(dir);
  TrainConfig cfg;
  cfg.variant = variant;
  cfg.seed = uint64_t(seed);
  cfg.steps = 20000;
  cfg.until_plateau = 5;
  cfg.model.vocab = 40;
  cfg.model.d_model = 16;
  cfg.model.heads = 2;
  cfg.model.enc_layers = cfg.model.dec_layers = 1;
  cfg.model.d_ff = 64;
  cfg.model.apply_preset(variant);
  write_file_atomic((dir / "config.json").string(), cfg.to_json().dump(2));
  nlohmann::json res = {{"params", count_params(cfg.model)}, {"steps", steps}, {"train_seconds", 10.0}, {"tokens_per_s", 100.0},
                        {"valid_loss", best}, {"valid_ppl", std::exp(best)}, {"test_bleu", 30.0 - 10 * best}, {"test_chrf", 30.0},
                        {"plateaued", plateaued}, {"attnlab", "test"}, {"machine", "test"}};
  write_file_atomic((dir / "results.json").string(), res.dump(2));
  std::string m = "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n";
  for (int step = 250; step <= steps; step += 250) {
    const double loss = step <= 2000 ? at2000 + 0.5 * (2000 - step) / 1750.0 : at2000 + (best - at2000) * (step - 2000) / (steps - 2000);
    m += fmt::format("{},0,4,0.001,1,100,1,1,{:.5f},1,,\n", step, loss);
  }
  write_file_atomic((dir / "metrics.csv").string(), m);
  write_file_atomic((dir / "dynamics.csv").string(), "step,site,metric,value\n");
}

TEST_CASE("a curve read at equal progress: the first step it reaches a loss, and its loss at a step, between evaluations") {
  const std::map<double, double> c = {{250, 4.0}, {500, 3.0}, {750, 2.5}, {1000, 2.6}, {1250, 2.0}};
  // 3.5 lies half-way from 4.0 to 3.0; 2.55 is first reached between 500 and 750 (the rise at 1000 does not count).
  REQUIRE(*step_at_loss(c, 3.5) == Approx(375));
  REQUIRE(*step_at_loss(c, 2.55) == Approx(725));
  REQUIRE(*step_at_loss(c, 3.0) == Approx(500));  // reached at an evaluation
  REQUIRE_FALSE(step_at_loss(c, 4.5));             // the first evaluation is already below: where it crossed is not known
  REQUIRE_FALSE(step_at_loss(c, 1.9));             // never reached
  REQUIRE_FALSE(step_at_loss({}, 2.0));
  REQUIRE(*loss_at_step(c, 875) == Approx(2.55));
  REQUIRE(*step_at_loss(c, 3.8) == Approx(300));   // a fifth of the way: weights swapped would give 450
  REQUIRE(*loss_at_step(c, 800) == Approx(2.52));  // ... and 2.58
  REQUIRE(*loss_at_step(c, 1250) == Approx(2.0));
  REQUIRE_FALSE(loss_at_step(c, 1300));  // not evaluated that far
  REQUIRE_FALSE(loss_at_step(c, 100));
}

TEST_CASE("compare --at-loss reads qq's gap at equal progress as docs/results.md section 7 does, from the committed d 256 runs") {
  // §7's table (computed from these runs' metrics.csv when the prediction was written): qq's gap
  // where qk's curve reaches L, at d 256 and lr 1.5e-3, seed 1 / seed 2: +0.100 / +0.108 at 2.4,
  // +0.177 / +0.181 at 2.0, +0.213 / +0.229 at 1.8; qk never reaches 1.7 at that rate.
  const fs::path from = fs::path(ATTNLAB_TEST_DIR) / ".." / "docs" / "results" / "frontier-tuned" / "runs";
  const fs::path d = fs::temp_directory_path() / ("attnlab-at-loss-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "runs");
  for (const char* run : {"qk-d256-s1", "qk-d256-s2", "qq-d256-s1", "qq-d256-s2"})
    fs::copy(from / run, d / "runs" / run, fs::copy_options::recursive);
  const ReportOptions levels{.gap_from = 2000, .at_loss = {{"2.4", 2.4}, {"2.0", 2.0}, {"1.8", 1.8}, {"1.7", 1.7}}};
  const std::string md = read_file(write_report(d.string(), "qk", "", levels));
  REQUIRE_THAT(md, Catch::Contains("## At equal progress"));
  // The mean curves' row (the number §7 judges) was also recomputed from metrics.csv outside attnlab.
  REQUIRE_THAT(md, Catch::Contains("| qq (1, 2) | 2.4 | 753 | +0.104 | +0.100 | +0.108 |\n"));
  REQUIRE_THAT(md, Catch::Contains("| qq (1, 2) | 2.0 | 1229 | +0.178 | +0.177 | +0.181 |\n"));  // 2.0 as typed
  REQUIRE_THAT(md, Catch::Contains("| qq (1, 2) | 1.8 | 1713 | +0.221 | +0.213 | +0.229 |\n"));
  REQUIRE_THAT(md, Catch::Contains("| qq (1, 2) | 1.7 | — | — | — | — |\n"));
  REQUIRE_THAT(md, Catch::Contains("qk's mean curve (2 runs: seeds 1, 2) starts at "));
  const std::string csv = read_file((d / "at_loss.csv").string());
  REQUIRE_THAT(csv, Catch::StartsWith("variant,level,seed,qk_step,gap\n"));
  REQUIRE_THAT(csv, Catch::Contains("\nqq,1.7,mean,,\n"));
  REQUIRE_THAT(csv, Catch::Contains("\nqq,2.4,1,"));
  // Runs of another rate among them: a mean over both rates is no curve of either, so not read.
  fs::copy(from / "qk-d256-lr3e-3-s1", d / "runs" / "qk-d256-lr3e-3-s1", fs::copy_options::recursive);
  REQUIRE_THAT(read_file(write_report(d.string(), "qk", "", levels)),
               Catch::Contains("## At equal progress\n\nNot read: these runs were not all trained with the same settings"));
  REQUIRE_FALSE(fs::exists(d / "at_loss.csv"));
  fs::remove_all(d / "runs" / "qk-d256-lr3e-3-s1");
  // Without --at-loss the section is not there.
  REQUIRE_THAT(read_file(write_report(d.string())), !Catch::Contains("## At equal progress"));
  REQUIRE_FALSE(fs::exists(d / "at_loss.csv"));
  fs::remove_all(d);
}

TEST_CASE("a grid trained to the end: where each run stopped, and whether each gap closes, holds or grows") {
  const fs::path d = fs::temp_directory_path() / ("attnlab-to-the-end-" + std::to_string(::getpid()));
  fs::remove_all(d);
  // qk: 2.00/2.02 at step 2000, best 1.60/1.62. qq: 0.20 behind at 2000, 0.05 at the end (closes);
  // qq-noself: 0.05 behind at 2000, 0.20 at the end (grows), one seed stopped by the step limit;
  // noO: 0.10 behind at both (holds).
  for (int s : {1, 2}) {
    const double e = s == 1 ? 0.0 : 0.02;
    fake_long_run(d / "runs" / fmt::format("qk-s{}", s), "qk", s, 2.00 + e, 1.60 + e, 4000, true);
    fake_long_run(d / "runs" / fmt::format("qq-s{}", s), "qq", s, 2.20 + e, 1.65 + e, 3000, true);
    fake_long_run(d / "runs" / fmt::format("qq-noself-s{}", s), "qq-noself", s, 2.05 + e, 1.80 + e, s == 1 ? 20000 : 5000, s != 1);
    fake_long_run(d / "runs" / fmt::format("noO-s{}", s), "noO", s, 2.10 + e, 1.70 + e, 4500, true);
  }
  const std::string md = read_file(write_report(d.string()));
  REQUIRE_THAT(md, Catch::Contains("## Trained to the end"));
  REQUIRE_THAT(md, Catch::Contains("| qk-s1 | 4000 | plateau | 1.6000 (4000) | 14.00 |"));
  REQUIRE_THAT(md, Catch::Contains("| qq-noself-s1 | 20000 | step limit: not converged | 1.8000 (20000) |"));
  REQUIRE_THAT(md, Catch::Contains("- **qq**: g(2000) = +0.2000 (σ 0.0283), g_end = +0.0500 (σ 0.0283): the gap **closes**.\n"));
  REQUIRE_THAT(md, Catch::Contains("- **qq-noself**: g(2000) = +0.0500 (σ 0.0283), g_end = +0.2000 (σ 0.0283): the gap **grows** — "
                                   "but qq-noself-s1 reached the step limit without a plateau (not converged).\n"));
  REQUIRE_THAT(md, Catch::Contains("- **noO**: g(2000) = +0.1000 (σ 0.0283), g_end = +0.1000 (σ 0.0283): the gap **holds**.\n"));
  const std::string csv = read_file((d / "to_the_end.csv").string());
  REQUIRE_THAT(csv, Catch::Contains("\nqq,2,2000,0.20000,0.02828,0.05000,0.02828,closes,\n"));
  REQUIRE_THAT(md, !Catch::Contains("Runs resumed on another build or machine"));
  // Another reference step: at 1000 every curve is 0.5 · 1000/1750 above its step-2000 value, so
  // the gaps there are the same; at 2100 (not evaluated) the change cannot be stated.
  REQUIRE_THAT(read_file(write_report(d.string(), "qk", "", {.gap_from = 1000, .at_loss = {}})),
               Catch::Contains("- **qq**: g(1000) = +0.2000 (σ 0.0283), g_end = +0.0500 (σ 0.0283): the gap **closes**.\n"));
  REQUIRE_THAT(read_file(write_report(d.string(), "qk", "", {.gap_from = 2100, .at_loss = {}})),
               Catch::Contains("- **qq**: no validation loss at step 2100 in every run of qq and qk"));
  // A fixed-length run among them is not judged against runs trained to the end.
  fake_run(d / "runs" / "qq-normk-s1", "qq-normk", 16, 1, 1e-3, 2.0, 10);
  const std::string mixed = read_file(write_report(d.string()));
  REQUIRE_THAT(mixed, Catch::Contains("- **qq-normk**: not every run of qq-normk and qk was trained to the end"));
  REQUIRE_THAT(mixed, Catch::Contains("| qq-normk-s1 | 300 | fixed steps |"));
  REQUIRE_THAT(mixed, Catch::Contains("the gap **closes**"));  // the others keep their verdicts
  fs::remove_all(d / "runs" / "qq-normk-s1");
  // A run resumed on another machine is named, stretch by stretch (its train time mixes them).
  const fs::path res = d / "runs" / "qk-s1" / "results.json";
  nlohmann::json j = nlohmann::json::parse(read_file(res.string()));
  j["segments"] = {{{"from_step", 0}, {"to_step", 2000}, {"attnlab", "test"}, {"machine", "A"}},
                   {{"from_step", 2000}, {"to_step", 4000}, {"attnlab", "test"}, {"machine", "B"}}};
  write_file_atomic(res.string(), j.dump(2));
  REQUIRE_THAT(read_file(write_report(d.string())),
               Catch::Contains("- `qk-s1`: steps 0–2000: attnlab test on A; steps 2000–4000: attnlab test on B\n"));
  // Damaged fields are refused with the file's name, not read as something else.
  for (auto [key, bad] : {std::pair<const char*, nlohmann::json>{"plateaued", "yes"}, {"segments", nlohmann::json::array({1, 2})}}) {
    nlohmann::json broken = j;
    broken[key] = bad;
    write_file_atomic(res.string(), broken.dump(2));
    INFO(key);
    REQUIRE_THROWS_WITH(write_report(d.string()), Catch::Contains(res.string()));
  }
  write_file_atomic(res.string(), j.dump(2));
  // A grid of fixed-length runs has no such section.
  const fs::path f = fs::temp_directory_path() / ("attnlab-fixed-" + std::to_string(::getpid()));
  fs::remove_all(f);
  for (int s : {1, 2}) {
    fake_run(f / "runs" / fmt::format("qk-s{}", s), "qk", 16, s, 1e-3, 2.0 + 0.01 * s, 10);
    fake_run(f / "runs" / fmt::format("qq-s{}", s), "qq", 16, s, 1e-3, 2.2 + 0.01 * s, 10);
  }
  REQUIRE_THAT(read_file(write_report(f.string())), !Catch::Contains("Trained to the end"));
  REQUIRE_FALSE(fs::exists(f / "to_the_end.csv"));
  fs::remove_all(d);
  fs::remove_all(f);
}

TEST_CASE("the rate sweep's rules on synthetic sweeps whose answers are known") {
  const std::vector<Rate> rates = parse_rates("6e-3,1.5e-3,3e-3", "--tune-lr");  // any order: ascending after
  REQUIRE(rates.size() == 3);
  CHECK(rates[0].text == "1.5e-3");
  CHECK(rates[2].text == "6e-3");
  CHECK(doubled(rates[2]).text == "1.2e-2");
  CHECK(doubled(rates[0]).text == "3e-3");
  CHECK(doubled({"5e-4", 5e-4}).text == "1e-3");
  CHECK(doubled({"0.01", 0.01}).text == "2e-2");
  CHECK_THROWS_WITH(parse_rates("1e-3,x", "--tune-lr"), Catch::StartsWith("--tune-lr '1e-3,x': expected comma-separated learning rates"));
  CHECK_THROWS_WITH(parse_rates("0,1e-3", "--tune-lr"), Catch::EndsWith("got '0'"));
  CHECK_THROWS_WITH(parse_rates("1e-3,0.001", "--tune-lr"), Catch::Contains("1e-3 and 0.001 are the same rate"));
  CHECK_THROWS_WITH(parse_rates(",", "--tune-lr"), Catch::Contains("no learning rates given"));
  CHECK_THROWS_WITH(parse_rates("1e-3,,2e-3", "--tune-lr"), Catch::EndsWith("got ''"));  // an empty item is a mistake
  CHECK_THROWS_WITH(parse_rates("1e-3,", "--tune-lr"), Catch::EndsWith("got ''"));
  CHECK(parse_positive_numbers(" 2.4, 2.0 ", "--at-loss", "validation losses", "2.4").at(1).text == "2.0");  // spaces dropped

  using S = RateOutcome::State;
  auto sweep = [&](std::map<std::string, RateOutcome> known) {
    return sweep_state(rates, [&](const Rate& r) { return known.count(r.text) ? known[r.text] : RateOutcome{}; });
  };
  auto texts = [](const std::vector<Rate>& v) {
    std::vector<std::string> t;
    for (auto& r : v) t.push_back(r.text);
    return t;
  };
  const RateOutcome nan{S::diverged, 0};
  auto at = [](double loss) { return RateOutcome{S::finished, loss}; };
  // Nothing run: the two lowest rates, the third waits for them.
  Sweep s = sweep({});
  CHECK(texts(s.to_run) == std::vector<std::string>{"1.5e-3", "3e-3"});
  CHECK(texts(s.waiting) == std::vector<std::string>{"6e-3"});
  CHECK_FALSE(s.settled);
  // 3e-3 better than 1.5e-3: 6e-3 runs; still better: the doubling 1.2e-2, once.
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", at(2.5)}});
  CHECK(texts(s.to_run) == std::vector<std::string>{"6e-3"});
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", at(2.5)}, {"6e-3", at(2.4)}});
  CHECK(texts(s.to_run) == std::vector<std::string>{"1.2e-2"});
  CHECK(s.doubling);
  CHECK_FALSE(s.settled);
  // The doubling worse: 6e-3 is the best, inside the sweep.
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", at(2.5)}, {"6e-3", at(2.4)}, {"1.2e-2", at(2.6)}});
  REQUIRE(s.settled);
  CHECK(s.best.text == "6e-3");
  CHECK_FALSE(s.at_edge);
  // The doubling better still: at the edge of the sweep, and nothing more is tried.
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", at(2.5)}, {"6e-3", at(2.4)}, {"1.2e-2", at(2.3)}});
  REQUIRE(s.settled);
  CHECK(s.best.text == "1.2e-2");
  CHECK(s.at_edge);
  CHECK(s.to_run.empty());
  // 3e-3 worse than 1.5e-3: 6e-3 is skipped, whatever it would have given; the best is the lowest.
  s = sweep({{"1.5e-3", at(2.5)}, {"3e-3", at(2.7)}, {"6e-3", at(1.0)}});
  REQUIRE(s.settled);
  CHECK(texts(s.skipped) == std::vector<std::string>{"6e-3"});
  CHECK(s.best.text == "1.5e-3");
  CHECK(s.at_low_edge);
  CHECK(s.tried.size() == 2);
  // A diverged run ranks worst and stops nothing but the rates above it.
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", nan}});
  REQUIRE(s.settled);
  CHECK(texts(s.skipped) == std::vector<std::string>{"6e-3"});
  CHECK(s.best.text == "1.5e-3");
  s = sweep({{"1.5e-3", at(3.0)}, {"3e-3", at(2.0)}, {"6e-3", nan}});
  REQUIRE(s.settled);
  CHECK(s.best.text == "3e-3");
  // A tie goes to the lower rate.
  s = sweep({{"1.5e-3", at(2.5)}, {"3e-3", at(2.5)}, {"6e-3", at(2.6)}});
  REQUIRE(s.settled);
  CHECK(s.best.text == "1.5e-3");
  // One rate given: it is the highest, so its doubling is tried.
  const std::vector<Rate> one = parse_rates("1e-3", "--tune-lr");
  s = sweep_state(one, [&](const Rate& r) { return r.text == "1e-3" ? at(2.0) : RateOutcome{}; });
  CHECK(texts(s.to_run) == std::vector<std::string>{"2e-3"});
}

TEST_CASE("a run's outcome: finished, diverged (NaN, or ending above its first evaluation), or not run") {
  const fs::path d = fs::temp_directory_path() / ("attnlab-outcome-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fake_run(d / "ok", "qk", 16, 1, 1e-3, 3.0, 10);  // its evaluations fall from 3.2 to 3.0
  CHECK(run_outcome((d / "ok").string()).state == RateOutcome::State::finished);
  CHECK(run_outcome((d / "ok").string()).loss == 3.0);
  fake_run(d / "up", "qk", 16, 1, 1e-3, 3.0, 10);
  write_file_atomic((d / "up" / "metrics.csv").string(),
                    "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n"
                    "100,0,4,0.001,1,100,1,1,2.90000,1,,\n300,0,4,0.001,1,100,1,1,3.00000,1,,\n");
  CHECK(run_outcome((d / "up").string()).state == RateOutcome::State::diverged);
  fs::create_directories(d / "nan");
  write_file_atomic((d / "nan" / "diverged.json").string(), "{\"step\": 40}\n");
  CHECK(run_outcome((d / "nan").string()).state == RateOutcome::State::diverged);
  fs::create_directories(d / "half");
  CHECK(run_outcome((d / "half").string()).state == RateOutcome::State::not_run);
  fs::remove_all(d);
}

TEST_CASE("a tuned grid: the runs the rules call for, round by round, and the report's tuned verdicts") {
  const fs::path d = fs::temp_directory_path() / ("attnlab-tuned-" + std::to_string(::getpid()));
  fs::remove_all(d);
  GridOptions o;
  o.preset = "frontier";
  o.out = d.string();
  o.task = "reverse";
  o.variants = {"qk", "qq"};
  o.widths = "16,32";
  o.exe = "attnlab";
  const GridPreset& pre = grid_preset("frontier");
  const std::vector<Rate> rates = parse_rates("1.5e-3,3e-3,6e-3", "--tune-lr");
  CHECK(grid_recipe_lr(pre, o) == "1.5e-3");
  auto pending = [&](TunedPlan* plan = nullptr) {
    TunedPlan p = plan_tuned_grid(pre, o, rates);
    std::set<std::string> names;
    for (auto& r : p.specs)
      if (!fs::exists(r.dir + "/results.json")) names.insert(r.name);
    REQUIRE(int(names.size()) == p.pending);
    if (plan) *plan = p;
    return names;
  };
  // seed 1 and the final loss of each (variant, width) at each rate; seed 2 ends 0.02 above seed 1
  const std::map<std::string, double> loss = {
      {"qk-d16-s1", 4.0}, {"qk-d16-lr3e-3-s1", 3.7}, {"qk-d16-lr6e-3-s1", 3.8},       // best 3e-3
      {"qk-d32-s1", 3.5}, {"qk-d32-lr3e-3-s1", 3.2}, {"qk-d32-lr6e-3-s1", 3.3},       // best 3e-3
      {"qq-d16-s1", 4.1}, {"qq-d16-lr3e-3-s1", 3.9}, {"qq-d16-lr6e-3-s1", 3.8},       // the doubling, then 6e-3
      {"qq-d16-lr1.2e-2-s1", 3.85},
      {"qq-d32-s1", 3.4}, {"qq-d32-lr3e-3-s1", 3.6}};                                  // 6e-3 skipped: 1.5e-3
  auto finish = [&](const std::set<std::string>& names) {
    for (auto& n : names) {
      const bool s2 = n.size() > 3 && n.substr(n.size() - 3) == "-s2";
      const std::string s1 = s2 ? n.substr(0, n.size() - 1) + "1" : n;
      REQUIRE(loss.count(s1));
      const std::string v = n.substr(0, 2);
      const int w = std::stoi(n.substr(4, 2));
      const size_t lr_at = n.find("-lr");
      const double lr = lr_at == std::string::npos ? 1.5e-3 : std::stod(n.substr(lr_at + 3, n.rfind("-s") - lr_at - 3));
      fake_run(d / "runs" / n, v, w, s2 ? 2 : 1, lr, loss.at(s1) + (s2 ? 0.02 : 0), 10);
    }
  };
  TunedPlan p;
  auto round1 = pending(&p);
  CHECK(round1 == std::set<std::string>{"qk-d16-s1", "qk-d16-lr3e-3-s1", "qq-d16-s1", "qq-d16-lr3e-3-s1", "qk-d32-s1",
                                        "qk-d32-lr3e-3-s1", "qq-d32-s1", "qq-d32-lr3e-3-s1"});
  CHECK(p.waiting == 4);
  CHECK(p.settled == 0);
  finish(round1);
  auto round2 = pending(&p);
  CHECK(round2 == std::set<std::string>{"qk-d16-lr6e-3-s1", "qk-d32-lr6e-3-s1", "qq-d16-lr6e-3-s1", "qq-d32-s2"});
  CHECK(p.settled == 1);
  finish(round2);
  auto round3 = pending(&p);
  CHECK(round3 == std::set<std::string>{"qk-d16-lr3e-3-s2", "qk-d32-lr3e-3-s2", "qq-d16-lr1.2e-2-s1"});
  finish(round3);
  auto round4 = pending(&p);
  CHECK(round4 == std::set<std::string>{"qq-d16-lr6e-3-s2"});
  finish(round4);
  CHECK(pending(&p).empty());
  CHECK(p.settled == 4);
  // Seed 2 comes after every seed-1 run in a plan.
  bool seen_s2 = false;
  for (auto& r : p.specs) {
    const bool s2 = r.name.substr(r.name.size() - 3) == "-s2";
    CHECK(!(seen_s2 && !s2));
    seen_s2 = seen_s2 || s2;
  }

  write_tune_file(d.string(), rates, "1.5e-3");
  REQUIRE(read_tune_file(d.string()).rates.size() == 3);
  write_grid_report(d.string());
  const std::string md = read_file((d / "report.md").string());
  INFO(md);
  CHECK_THAT(md, Catch::Contains("| qq | 16 | 4.1000 | 3.9000 | **3.8000** | 3.8500 | 6e-3 |"));
  CHECK_THAT(md, Catch::Contains("| qq | 32 | **3.4000** | 3.6000 | skipped | — | 1.5e-3 (the lowest rate tried) |"));
  CHECK_THAT(md, Catch::Contains("| qk | 32 | 3.5000 | **3.2000** | 3.3000 | — | 3e-3 |"));
  // qq at d 32 (fewer parameters than qk at 32): 3.41 against qk's tuned frontier between 3.71 and
  // 3.21, near 3.21 — above it by far more than the spread.
  const std::string tuned = read_file((d / "tuned.csv").string());
  INFO(tuned);
  CHECK_THAT(tuned, Catch::Contains("\nqq,32,1.5e-3,bottom,2,"));
  CHECK_THAT(tuned, Catch::Contains(",above (worse),"));
  CHECK_THAT(tuned, Catch::Contains("\nqk,16,3e-3,,2,"));
  CHECK(fs::exists(d / "plots" / "loss_vs_rate_d16.csv"));
  CHECK_THAT(read_file((d / "plots" / "loss_vs_rate_d16.csv").string()), Catch::Contains("0.012,3.85,0"));
  CHECK_THAT(md, Catch::Contains("- qq at d_model 32: best rate 1.5e-3 (the lowest rate tried); "));
  fs::remove_all(d);
}

TEST_CASE("a run written before the run layer existed (commit 7ee9dfd) still loads and scores the same") {
  // tests/fixtures/run-7ee9dfd: `attnlab train --task reverse --task-train 300 --d-model 16 --heads 2
  // --enc-layers 1 --dec-layers 1 --d-ff 32 --variant qq-noself --steps 30 --eval-every 15
  // --eval-sentences 0 --test-sentences 10 --beam 1 --threads 1 --seed 3`, by the build of 7ee9dfd,
  // on an Intel Xeon (AVX-512, OpenBLAS SkylakeX). It was made on another machine, so its figures
  // are compared within float32's reach (docs/reliability.md), not bit for bit.
  const fs::path fixture = fs::path(ATTNLAB_TEST_DIR) / "fixtures" / "run-7ee9dfd";
  const fs::path d = fs::temp_directory_path() / ("attnlab-fixture-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::copy(fixture, d, fs::copy_options::recursive);
  const nlohmann::json before = read_json((fixture / "results.json").string());
  LoadedRun run = load_run(d.string());
  REQUIRE(run.model->params.count() == before.at("params").get<int64_t>());
  // resumed at its last checkpoint (step 30 of 30): finishing again evaluates the best weights
  TrainConfig cfg;
  cfg.out = d.string();
  cfg.resume = true;
  cfg.threads = 1;
  Trainer t(cfg);
  REQUIRE(t.done());
  REQUIRE(t.state().step == 30);
  const nlohmann::json after = t.finish();
  // The validation loss is a mean, accumulated in double, of per-token losses that each come out
  // of float32 sums: one rounding per term of each reduction on the way (Higham's bound γ_n: a
  // sum of n terms is within n·u of its terms' absolute sum, u = 2⁻²⁴). Reordering those sums
  // (another BLAS kernel family, AVX2's 8 lanes against AVX-512's 16) moves each per-token loss
  // by at most depth · n · u · |loss|, with n the longest reduction here (d_ff 32, one
  // per-token log-sum-exp over the vocabulary of 20) and depth the reductions in sequence (6 a
  // layer — q/k/v and the scores, softmax, W_o, two feed-forward products, the layer norm — over
  // 2 layers and the cross-attention, and the output layer: 20). The mean keeps the bound. On
  // an AMD EPYC (Zen kernels, AVX2 loops) the loss moved by 2.5e-8; the bound is 6.0e-5.
  const double loss_before = before.at("valid_loss").get<double>(), loss_after = after.at("valid_loss").get<double>();
  const double u = std::ldexp(1.0, -24), loss_bound = 20 * 32 * u * loss_before;
  INFO("valid loss " << loss_after << ", recorded " << loss_before << ", bound " << loss_bound);
  REQUIRE(std::abs(loss_after - loss_before) <= loss_bound);
  // The translations are greedy: a token is compared while the choices before it were decided
  // by a margin wider than two paths' log-probabilities may differ (tests/decisions.h); at least
  // 80% must be. Their difference across kernel families is bounded as the loss's is, per
  // log-probability: δ = depth · n · u · L, with L = 20 bounding their magnitude (checked below).
  auto lines = [](const fs::path& f) {
    std::vector<std::string> out;
    std::istringstream in(read_file(f.string()));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  const std::vector<std::string> now = lines(d / "test.hyp"), then = lines(fixture / "test.hyp");
  REQUIRE(now.size() == then.size());
  const CorpusSplits text = load_text(t.config());
  const Transformer& model = *t.model().translator();
  const double delta = 20 * 32 * u * 20;
  DecidedTokens decided;
  for (size_t i = 0; i < now.size(); i++) {
    INFO("test sentence " << i + 1 << ": " << text.test.src[i]);
    std::vector<int32_t> src = run.tok->encode(text.test.src[i]);
    src.push_back(model.cfg.eos_id);
    DecodeOptions opt;
    opt.beam = 1;
    std::vector<std::vector<float>> margins;
    opt.margins = &margins;
    const std::vector<int32_t> here = translate_ids(model, {src}, opt)[0];
    REQUIRE(run.tok->decode(here) == now[i]);  // the run's own test.hyp is this decoding
    NoGradScope no_grad;
    std::vector<int32_t> prefix = {model.cfg.bos_id};
    for (size_t j = 0; j <= here.size(); j++) {  // L bounds every log-probability compared
      const Tensor lp = next_logprobs_full(model, model.encode(src, 1, int(src.size()), Context{}), src, int(src.size()), {prefix});
      for (int64_t v = 0; v < lp.numel(); v++) REQUIRE(std::abs(lp[v]) < 20.f);
      if (j < here.size()) prefix.push_back(here[j]);
    }
    decided.greedy(run.tok->encode(then[i]), here, margins[0], 2 * delta);
  }
  decided.require_enough();
  // BLEU is recomputed from the translations made here; where they equal the fixture's, so does
  // the score
  REQUIRE(after.at("test_bleu").get<double>() == corpus_bleu(now, std::vector<std::string>(text.test.tgt.begin(), text.test.tgt.begin() + int64_t(now.size()))).score);
  if (now == then) REQUIRE(after.at("test_bleu").get<double>() == before.at("test_bleu").get<double>());
  fs::remove_all(d);
}

TEST_CASE("run logs: one row type each, written and read by one piece of code") {
  using namespace attn;
  const fs::path d = fs::temp_directory_path() / fmt::format("attnlab-logs-{}", getpid());
  fs::create_directories(d);
  MetricsRow a;
  a.step = 25, a.epoch = 0, a.train_loss = 7.123456, a.lr = 0.000125, a.grad_norm = 1.23456, a.tokens_per_s = 1945.04,
  a.train_seconds = 12.345, a.wall_seconds = 13.5;
  MetricsRow b = a;
  b.step = 50, b.valid_loss = 6.5, b.valid_ppl = 665.14, b.valid_bleu = 1.5;
  // the text is the schema's: each column at its precision, empty cells where nothing was measured
  REQUIRE(metrics_header() == "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,"
                              "valid_bleu,valid_chrf");
  REQUIRE(metrics_line(a) == "25,0,7.12346,0.000125,1.2346,1945.0,12.35,13.50,,,,");
  REQUIRE(metrics_line(b) == "50,0,7.12346,0.000125,1.2346,1945.0,12.35,13.50,6.50000,665.1400,1.50,");
  REQUIRE(metrics_cell(b, "valid_loss") == "6.50000");
  REQUIRE_THROWS(metrics_cell(b, "valid_los"));
  const std::string text = metrics_header() + "\n" + metrics_line(a) + "\n" + metrics_line(b) + "\n";
  const std::string path = (d / "metrics.csv").string();
  write_file_atomic(path, text);
  std::vector<MetricsRow> rows = read_metrics(path);
  REQUIRE(rows.size() == 2);
  REQUIRE(!rows[0].valid_loss);
  REQUIRE(*rows[1].valid_loss == 6.5);
  REQUIRE(!rows[1].valid_chrf);
  std::string again = metrics_header() + "\n";  // read and written again: the same text
  for (auto& r : rows) again += metrics_line(r) + "\n";
  REQUIRE(again == text);
  // what a reader refuses, naming the file and line
  write_file_atomic(path, metrics_line(a) + "\n");
  REQUIRE_THROWS_WITH(read_metrics(path), Catch::StartsWith(path + ":1: expected the header line 'step,epoch,"));
  write_file_atomic(path, metrics_header() + "\n25,0,1\n");
  REQUIRE_THROWS_WITH(read_metrics(path), path + ":2: expected 12 comma-separated fields, got 3");
  write_file_atomic(path, text + metrics_line(a) + "\n");
  REQUIRE_THROWS_WITH(read_metrics(path), path + ":4: step 25 after step 50: the steps of a run increase (two writers, or "
                                                 "lines copied in by hand?)");
  // dynamics: several rows share a step; a site name with a comma survives the round trip
  const std::vector<DynRow> dyn = {{25, "enc.0.self_attn", "diag_mass", 0.125}, {25, "odd,site", "entropy", 1.5e-7}};
  std::string dtext = dynamics_header() + "\n";
  for (auto& r : dyn) dtext += dynamics_line(r) + "\n";
  write_file_atomic((d / "dynamics.csv").string(), dtext);
  std::vector<DynRow> back = read_dynamics((d / "dynamics.csv").string());
  REQUIRE(back.size() == 2);
  REQUIRE(back[1].site == "odd,site");
  REQUIRE(back[1].value == Approx(1.5e-7));
  fs::remove_all(d);
}
