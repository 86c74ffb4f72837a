// train/run_dir.h — a run's directory and the files it owns.
//
// A run directory holds everything a run needs to be evaluated, translated with or resumed:
//   config.json            model + training configuration (TrainConfig::to_json)
//   tokenizer.model        SentencePiece (or tokenizer.symbols for synthetic tasks)
//   metrics.csv            step, train loss, lr, grad norm, tokens/s, and at evaluations
//                          valid loss, perplexity, BLEU, chrF (train/run_logs.h)
//   dynamics.csv           step, site, metric, value: W_q/W_k grad norms, attention entropy,
//                          diagonal mass, asymmetry of W_q W_kᵀ (train/run_logs.h)
//   model.best.safetensors the weights of the best validation loss
//   checkpoints/step-N/    model.safetensors, state.safetensors (Adam moments), state.json;
//   last.json              points at the newest complete checkpoint (replaced atomically)
//   test.hyp, results.json written when the run finishes: the summary the report reads
//
//   RunDir dir("runs/qq");
//   dir.open_logs();  dir.log_metrics(row);  dir.save_checkpoint(model, opt, state);
// A finished run is loaded for use by train/loaded_run.h.
#pragma once
#include <array>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <attnlab/data/batching.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/models/lm.h>
#include <attnlab/models/transformer.h>
#include <attnlab/nn/optim.h>
#include <attnlab/train/config.h>
#include <attnlab/train/evaluate.h>

namespace attn {

// Where training stands: what a checkpoint stores besides the weights and Adam's moments.
// One stretch of a run's training on one build and machine: from its start, and from each resume.
struct Segment {
  int64_t from_step = 0;
  std::string attnlab, machine, blas_kernels, vector_isa;  // "not recorded" in checkpoints older than segments
  int threads = 0;                                          // 0: not recorded
};

struct TrainState {
  int64_t step = 0;
  Batcher::Position pos;
  std::array<uint32_t, 4> rng{};  // the dropout generator
  double best_valid = std::numeric_limits<double>::infinity();
  // --until-plateau: the loss of the last evaluation that improved by more than the delta, and
  // the evaluations since (in state.json only when the run uses it).
  double plateau_best = std::numeric_limits<double>::infinity();
  int plateau_stale = 0;
  bool plateau_on = false;
  double train_seconds = 0, wall_seconds = 0;
  int64_t tokens = 0;
  std::vector<Segment> segments;  // in order; the last is the one running
};

class RunDir {
 public:
  explicit RunDir(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool has_config() const;
  bool has_checkpoint() const;  // last.json
  bool finished() const;        // results.json

  // Creates the directory; throws naming `flag` when it cannot be created or written. True when
  // this call made it (of two processes creating it at once, one only).
  bool create(const char* flag) const;
  TrainConfig read_config() const;  // errors name config.json and the key
  void write_config(const TrainConfig& cfg) const;

  // metrics.csv and dynamics.csv, opened for appending (with their headers when new).
  void open_logs();
  void log_metrics(const MetricsRow& row);
  void log_dynamics(const std::vector<DynRow>& rows);
  void flush_logs();
  // Keeps only the rows up to `step` in both logs: a resumed run rewrites what the
  // interrupted one logged after its last checkpoint.
  void truncate_logs(int64_t step) const;
  // Removes both logs: a run that stopped before its first checkpoint starts again from step 0,
  // and its logs must then be those of an uninterrupted run.
  void clear_logs() const;

  void save_checkpoint(const Model& model, const Adam& opt, const TrainState& st) const;
  // Removes checkpoint directories last.json does not point to: what a kill between writing a
  // new checkpoint and deleting the previous one (or before last.json moved) leaves behind.
  void remove_stale_checkpoints() const;
  TrainState load_checkpoint(Model& model, Adam& opt) const;
  void save_best(const Model& model, int64_t step) const;
  void save_best(const Model& model) const;  // without a step in its metadata
  void write_test_hyps(const std::vector<std::string>& hyps) const;
  void write_results(const nlohmann::json& results) const;

 private:
  std::string path_;
  std::ofstream metrics_, dynamics_;
};

// One writer per run directory. `attnlab train` (and `compare`, on its grid's directory) holds an
// exclusive flock(2) on DIR/.writer.lock for as long as it may write there; the kernel releases
// it when the process ends in any way, kill -9 included, so a lock is never stale. The file holds
// the holder's pid and host, for the refusal's message. Readers (translate, a report) never lock.
//
//   WriterLock lock(cfg.out, "--out");   // throws: "--out runs/a: another attnlab (pid 4711 on
//                                        //  host h) is writing there; ..."
class WriterLock {
 public:
  WriterLock() = default;
  WriterLock(const std::string& dir, const std::string& flag);  // dir must exist
  ~WriterLock();
  WriterLock(WriterLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  WriterLock& operator=(WriterLock&& o) noexcept;
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  static constexpr const char* kFile = ".writer.lock";  // present only while held

 private:
  void release();
  int fd_ = -1;
  std::string path_;
};

// Removes what a killed writer's atomic writes left in dir (and its subdirectories): files named
// `.NAME.tmp.PID` (core/fileio.cpp) whose PID is no live process. Call it holding the dir's
// WriterLock; another live process's temporaries (a `translate --output` into the directory) stay.
// Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

// Puts a directory back as it was when a setup fails: removes the directory if this attempt
// created it, else the entries that were not there before. A new run validates everything
// (flags, corpus, tokenizer, model shape) before it may keep anything it wrote.
//
//   SetupUndo undo(cfg.out);   ...setup that may throw...   undo.keep();
class SetupUndo {
 public:
  explicit SetupUndo(std::string dir);  // an empty dir: nothing to undo
  // `created`: this process made dir (RunDir::create's answer), so undoing removes it whole;
  // otherwise its entries now are what was there before. Taken under dir's WriterLock, the
  // snapshot cannot include another writer's files.
  SetupUndo(std::string dir, bool created);
  ~SetupUndo();
  void keep() { dir_.clear(); }
  SetupUndo(const SetupUndo&) = delete;
  SetupUndo& operator=(const SetupUndo&) = delete;

 private:
  std::string dir_;
  bool existed_ = false;
  std::vector<std::string> before_;  // its entries' names, when it existed
};

}  // namespace attn
