// train/config.h — everything a training run is configured by, as config.json stores it.
//
// One home per setting: the field here (with its default), the one list of fields that
// config.json holds (ATTNLAB_TRAIN_CONFIG_FIELDS below), and validate() beside it. The command
// line's flags (apps/commands.cpp) write into these fields.
//   TrainConfig cfg;  cfg.variant = "qq";  cfg.steps = 1000;  cfg.validate();
//   nlohmann::json j = cfg.to_json();   TrainConfig back = TrainConfig::from_json(j);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <attnlab/models/transformer.h>

namespace attn {

struct TrainConfig {
  // data
  std::string corpus;            // corpus directory; empty: the embedded default (or --task)
  std::string task;              // synthetic task instead of a corpus: copy | reverse | sort
  int task_train = 4000, task_eval = 200;
  std::string src_lang = "en", tgt_lang = "de";
  int vocab = 8000;
  std::string tokenizer;         // existing tokenizer prefix to reuse (compare shares one)
  std::string lm_text = "both";  // --arch lm/mlm: the corpus sentences used as text: both, src or tgt
  // model
  ModelConfig model;
  std::string variant = "qk";
  bool match_params = false;
  std::string match_widen = "d_ff";
  // optimisation
  std::string optimizer = "adam";  // adam | adamw
  float lr = 7e-4f, weight_decay = 0.f, clip = 1.f;
  std::string schedule = "inverse_sqrt";
  int warmup = 800;
  int batch_tokens = 2048, accum = 1;
  int64_t steps = 8000;
  double time_budget = 0;        // seconds; 0: steps only
  // Training to the end: stop once the validation loss has not fallen by more than plateau_delta
  // below its best for until_plateau evaluations in a row (0: off; `steps` stays the limit). In
  // config.json only when on, so that the files of runs without it stay as they were.
  int until_plateau = 0;
  double plateau_delta = 0.002;
  int eval_every = 500, log_every = 50;
  int eval_sentences = 300;      // valid sentences decoded (greedy) for BLEU/chrF at evaluations
  int test_sentences = 0;        // 0: the whole test set at the end
  int beam = 5;                  // final test decoding
  uint64_t seed = 1;
  int threads = 0;
  // where and how (not in config.json)
  std::string out = "runs/default";
  bool resume = false;
  bool steps_given = false;
  bool vocab_given = true;       // false: a --tokenizer's own vocabulary size is taken (the command line: --vocab not typed)      // with resume: `steps` is the new budget (else the run's own stands)
  bool dump_tape = false;        // show the tape of the first step (through the progress callback)
  std::string dot;               // write the first step's tape as Graphviz
  bool quiet = false;
  std::string config_file;       // the --config it came from (already expanded into flags)

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);
  // Throws UsageError (core/usage_error.h) naming the flag of the first value out of range.
  void validate() const;
};

// The settings of a run's config.json (TrainConfig::to_json) that runs compared with each other
// must share, flattened ("warmup", "model.d_model", ...): everything that shapes training except
// the variant and seed, and what the variant and --match-params derive from them (W_k, d_ff of a
// widened model). Not: where the run writes, its threads, or how its output is printed.
nlohmann::json comparable_settings(const nlohmann::json& config);

// The flags a resumed run may change; any other flag given with --resume must have the run's own
// value (train --help lists these).
const std::vector<std::string>& resume_may_change();
// With --resume: the first of `flags` (as typed, e.g. "--d-model") whose value in `given`
// (TrainConfig::to_json of the command line) differs from the run's config.json `saved`, as a
// refusal naming the flag, the run's value and the given one; empty when all agree. A flag with
// no place in config.json (--dot, --dump-tape) does not apply to a resumed run and is refused.
std::string resume_conflict(nlohmann::json saved, nlohmann::json given, const std::vector<std::string>& flags,
                            const std::string& run_dir);

// Why `flag` (as typed: "--enc-layers") does not apply to a model of `arch`, or "" when it does:
// --enc-layers for an lm, --dec-layers for an mlm, --beam for either, --lm-text for translation.
std::string flag_not_applying(const std::string& flag, Arch arch);

// The embedded default corpus directory, DATA/corpora/gettext-en-de, where DATA is the first of:
// $ATTNLAB_DATA_DIR; the install prefix's share/attnlab (as configured); share/attnlab beside
// the running program or one folder above it (the build tree keeps a copy beside attnlab; an
// install moved elsewhere has bin/ and share/ side by side). Throws naming all three when none
// holds it. A corpus given by path (--corpus) is used as given and never looked up here.
std::string default_corpus_dir();

}  // namespace attn
