// apps/train.h — the training loop behind `attnlab train` and each run of `attnlab compare`.
//
// A run directory holds everything a run needs to be evaluated, translated with or resumed:
//   config.json            model + training configuration
//   tokenizer.model        SentencePiece (or tokenizer.symbols for synthetic tasks)
//   metrics.csv            step, train loss, lr, grad norm, tokens/s, and at evaluations
//                          valid loss, perplexity, BLEU, chrF
//   dynamics.csv           step, site, metric, value: W_q/W_k grad norms, attention entropy,
//                          diagonal mass, symmetry of W_q W_kᵀ
//   model.best.safetensors, model.last.safetensors, state.last.safetensors + state.last.json
//   results.json           written when the run finishes: the summary the report reads
//
//   TrainConfig cfg;  cfg.out = "runs/qq";  cfg.model.apply_preset("qq");
//   int code = run_training(cfg);
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/tokenizer.h"
#include "models/decode.h"
#include "models/transformer.h"

namespace attn {

struct TrainConfig {
  // data
  std::string corpus;            // corpus directory; empty: the embedded default (or --task)
  std::string task;              // synthetic task instead of a corpus: copy | reverse | sort
  int task_train = 4000, task_eval = 200;
  std::string src_lang = "en", tgt_lang = "de";
  int vocab = 8000;
  std::string tokenizer;         // existing tokenizer prefix to reuse (compare shares one)
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
  int eval_every = 500, log_every = 50;
  int eval_sentences = 300;      // valid sentences decoded (greedy) for BLEU/chrF at evaluations
  int test_sentences = 0;        // 0: the whole test set at the end
  int beam = 5;                  // final test decoding
  uint64_t seed = 1;
  int threads = 0;
  std::string out = "runs/default";
  bool resume = false;
  bool dump_tape = false;        // print the tape of the first step
  std::string dot;               // write the first step's tape as Graphviz
  bool quiet = false;
  std::string config_file;       // the --config it came from (already expanded into flags)

  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming the flag of the first value out of range.
  void validate() const;
  static TrainConfig from_json(const nlohmann::json& j);
};

// The settings of a run's config.json (TrainConfig::to_json) that runs compared with each other
// must share, flattened ("warmup", "model.d_model", ...): everything that shapes training except
// the variant and seed, and what the variant and --match-params derive from them (W_k, d_ff of a
// widened model). Not: where the run writes, its threads, or how its output is printed.
nlohmann::json comparable_settings(const nlohmann::json& config);

// The embedded default corpus directory (data/corpora/gettext-en-de in the source tree, or
// ATTNLAB_DATA_DIR), resolved at run time.
std::string default_corpus_dir();

// A JSON file's content; a file that is not JSON raises "PATH: not valid JSON (...)".
nlohmann::json read_json(const std::string& path);
// f(the file's JSON), with a missing key, a wrong type or a value f refuses (invalid_argument)
// named with the file: "run/config.json: key 'seed' not found" rather than nlohmann's bare message.
std::string json_error(const std::string& path, const nlohmann::json::exception& e);
template <class F>
auto with_json_file(const std::string& path, F&& f) {
  const nlohmann::json j = read_json(path);
  try {
    return f(j);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(json_error(path, e));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

// Trains to completion (or interruption). Returns the process exit code: 0 finished,
// 130 interrupted by SIGINT after saving a checkpoint.
int run_training(TrainConfig cfg);

// Everything needed to use a finished run.
struct LoadedRun {
  TrainConfig cfg;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Transformer> model;
};
LoadedRun load_run(const std::string& dir, const std::string& which = "best");

// A source line longer than the model reads: only its first `kept` tokens were translated.
struct CutLine {
  size_t line;  // 0-based index into the lines given
  size_t tokens, kept;
};
// Translate source lines. Lines longer than the model's max_len - 1 tokens are cut to that
// length; `cut`, when given, lists them so the caller can say so.
std::vector<std::string> translate_texts(const Transformer& model, const Tokenizer& tok,
                                         const std::vector<std::string>& lines, const DecodeOptions& opt,
                                         std::vector<CutLine>* cut = nullptr);
std::vector<std::string> translate_lines(const LoadedRun& run, const std::vector<std::string>& lines,
                                         const DecodeOptions& opt, std::vector<CutLine>* cut = nullptr);

}  // namespace attn
