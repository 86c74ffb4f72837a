// train/run_logs.h — a run's two logs, metrics.csv and dynamics.csv: one row type each, written
// and read by this file alone (the trainer writes rows, the reports read them).
//
//   metrics.csv   a logged step (every --log-every, and every evaluation):
//                 step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,
//                 valid_loss,valid_ppl,valid_bleu,valid_chrf   (the last four empty between evaluations)
//   dynamics.csv  step,site,metric,value: W_q/W_k gradient norms, attention entropy, diagonal
//                 mass, W_q W_kᵀ asymmetry (train/evaluate.h)
//
//   for (const MetricsRow& r : read_metrics("runs/qk/metrics.csv"))
//     if (r.valid_loss) fmt::print("{} {}\n", r.step, *r.valid_loss);
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attn {

struct MetricsRow {
  int64_t step = 0, epoch = 0;
  double train_loss = 0;  // mean over the steps since the previous row
  double lr = 0, grad_norm = 0, tokens_per_s = 0;
  double train_seconds = 0, wall_seconds = 0;  // training alone; and with evaluations, from the run's start
  // At an evaluation: the validation loss and perplexity, and BLEU and chrF of a translation model
  // that decodes some validation sentences (--eval-sentences). Empty cells otherwise.
  std::optional<double> valid_loss, valid_ppl, valid_bleu, valid_chrf;
};

struct DynRow {
  int64_t step = 0;
  std::string site, metric;  // "enc.0.self_attn", "diag_mass"; "model" for a whole-model metric
  double value = 0;
};

// The header lines, and a row as its file holds it (no newline). Each number is written with
// its column's precision (train_loss 5 decimals, ...), so a row read and written again is the
// same text.
std::string metrics_header();
std::string metrics_line(const MetricsRow& r);
std::string dynamics_header();
std::string dynamics_line(const DynRow& r);
// One column of a row, as metrics_line writes it: metrics_cell(r, "wall_seconds") -> "61.27".
std::string metrics_cell(const MetricsRow& r, std::string_view column);

// The rows of a run's log, in order; none when the file does not exist. A last line without its
// newline is one the run is still writing and is left out. Refused, naming path:line: a first
// line that is not the header, a row of another width, a cell that is not a number, a step not
// after the previous one (two writers, or lines copied in by hand). NaN and inf are read as such:
// the reader decides what a diverged value means.
std::vector<MetricsRow> read_metrics(const std::string& path);
std::vector<DynRow> read_dynamics(const std::string& path);

}  // namespace attn
