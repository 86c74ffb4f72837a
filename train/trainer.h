// train/trainer.h — a training run: data, tokenizer, model and optimizer prepared from a
// TrainConfig, steps, evaluations, checkpoints, resume, and the final test-set scores.
//
// Nothing here prints: what a person would want to see arrives at the progress callback.
//   TrainConfig cfg;  cfg.out = "runs/qq";  cfg.variant = "qq";  cfg.steps = 1000;
//   Trainer t(cfg, [](const Progress& p) { if (p.kind == Progress::Kind::Note) std::puts(p.text.c_str()); });
//   while (!t.done()) t.step();           // logs, evaluates and checkpoints on cfg's schedule
//   nlohmann::json results = t.finish();  // best weights on the test set; results.json
// or, to the end with an interrupt flag (SIGINT in the command line): run_training(cfg, progress, &stop).
// A program's main calls attn::init_runtime(argv) first (core/runtime.h): then it runs the kernels
// `attnlab train` runs, and the same config gives the same losses (examples/train_reverse.cpp).
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <attnlab/core/rng.h>
#include <attnlab/data/batching.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/models/transformer.h>
#include <attnlab/nn/optim.h>
#include <attnlab/train/config.h>
#include <attnlab/train/run_dir.h>

namespace attn {

struct EvalResult {
  double loss = 0, ppl = 0, bleu = -1, chrf = -1;  // bleu/chrf -1: not measured (eval_sentences 0; lm, mlm)
  double accuracy = -1;                            // lm, mlm: top-1 accuracy on the scored tokens
};

// What training reports as it goes.
struct Progress {
  enum class Kind {
    Note,  // `text`: a line about what is happening (resumed, corpus and model, tape dump)
    Step,  // a logged step (every log_every, and every evaluation)
    Eval,  // an evaluation at `step`: `eval`
    Done,  // finished: `eval` holds the best weights' valid loss, `text` the summary
  };
  Kind kind = Kind::Note;
  std::string text;
  int64_t step = 0, steps = 0;
  double train_loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, eta_seconds = 0;
  bool log_step = false;  // Step: a log_every step (not only an evaluation)
  EvalResult eval;
};
using ProgressFn = std::function<void(const Progress&)>;

class Trainer {
 public:
  // Reads the data, trains or loads the tokenizer, builds the model and optimizer, and resumes
  // from the newest checkpoint when cfg.resume and the run has one. Throws on bad settings or
  // data, naming the flag or file; writes config.json of a new run.
  explicit Trainer(TrainConfig cfg, ProgressFn progress = {});
  bool done() const;   // the step budget (or time budget) is spent, or --until-plateau's count is reached
  bool plateaued() const;  // --until-plateau stopped it
  void step();         // one optimizer step; logs, evaluates and checkpoints on the config's schedule
  EvalResult evaluate();  // valid loss, perplexity, BLEU/chrF; attention statistics into dynamics.csv
  void checkpoint();      // saves where training stands (the newest checkpoint replaces the previous)
  void stop();            // a checkpoint with the wall time up to now: before leaving unfinished
  nlohmann::json finish();  // best weights on the test set: test.hyp and results.json, returned

  const TrainConfig& config() const { return cfg_; }
  const Model& model() const { return *model_; }
  const TrainState& state() const { return st_; }

 private:
  void prepare_data();
  void build_model();
  void resume();
  void announce() const;
  void log(double train_loss, float lr, double gnorm, bool log_now, bool eval_now, const std::vector<DynRow>& grad_rows);
  double wall_now() const;
  void note(const std::string& text) const;

  TrainConfig cfg_;
  ProgressFn progress_;
  RunDir dir_;
  WriterLock lock_;  // held from setup to the end: one writer per run directory
  bool resuming_ = false;
  CorpusSplits text_;
  std::vector<Example> train_, valid_, test_;
  int64_t skipped_long_ = 0;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Adam> opt_;
  Schedule sched_;
  std::unique_ptr<Batcher> batcher_;
  Rng drop_rng_{0};
  TrainState st_;
  void count_plateau(double valid_loss);
  Batch probe_batch_;  // a fixed validation batch for attention statistics
  std::chrono::steady_clock::time_point t_start_;
  double wall_before_ = 0;
  // the window since the last logged step
  double window_loss_ = 0, window_tokens_ = 0, window_seconds_ = 0;
  int window_n_ = 0;
};

// A SentencePiece tokenizer's settings beside it (PREFIX.json), and the check that one found in
// a run directory or given with --tokenizer was trained with the vocabulary asked for (throws
// naming --vocab; tokenizers from before settings were recorded pass). `shared`: a tokenizer other
// runs use (--tokenizer, a grid's), which the refusal never suggests removing.
void record_tokenizer_settings(const std::string& prefix, int vocab);
void check_tokenizer_settings(const std::string& prefix, int vocab, bool shared);
// The vocabulary size recorded beside a SentencePiece tokenizer; 0 when none is recorded.
int recorded_tokenizer_vocab(const std::string& prefix);

// The text a run trains, validates and tests on: the synthetic task's seeded splits (--task),
// or the corpus directory's (--corpus, else the embedded default corpus).
CorpusSplits load_text(const TrainConfig& cfg);

// A split as the run trains and evaluates on it: translation pairs (seq2seq), or the sentences of
// --lm-text's sides (lm, mlm); what is longer than --max-len allows is left out and counted in *skipped.
std::vector<Example> encode_examples(const ParallelCorpus& c, const Tokenizer& tok, const TrainConfig& cfg, int64_t* skipped);

// "4m05s", "1h02m" ("?" when not known).
std::string format_duration(double seconds);

// Trains to the end, or until *stop becomes true (a checkpoint is saved first). Returns the
// process exit code: 0 finished, 130 stopped; *step_reached, when given, the last step taken.
int run_training(TrainConfig cfg, ProgressFn progress = {}, const std::atomic<bool>* stop = nullptr,
                 int64_t* step_reached = nullptr);

}  // namespace attn
