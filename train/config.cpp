// train/config.cpp — TrainConfig to and from config.json, its checks, and what runs compare by.
#include "train/config.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "core/usage_error.h"

#ifndef ATTNLAB_SOURCE_DIR
#define ATTNLAB_SOURCE_DIR "."
#endif

namespace attn {
using json = nlohmann::json;

// The fields config.json holds, each under its own name; a missing one is named on reading
// ("run/config.json: key 'seed' not found").
#define ATTNLAB_TRAIN_CONFIG_FIELDS(X)                                                                          \
  X(corpus) X(task) X(task_train) X(task_eval) X(src_lang) X(tgt_lang) X(vocab) X(variant) X(match_params)     \
  X(match_widen) X(optimizer) X(lr) X(weight_decay) X(clip) X(schedule) X(warmup) X(batch_tokens) X(accum)      \
  X(steps) X(time_budget) X(eval_every) X(log_every) X(eval_sentences) X(test_sentences) X(beam) X(seed)         \
  X(threads)

json TrainConfig::to_json() const {
  json j;
#define X(field) j[#field] = field;
  ATTNLAB_TRAIN_CONFIG_FIELDS(X)
#undef X
  j["model"] = model.to_json();
  if (model.arch != "seq2seq") j["lm_text"] = lm_text;  // (a translation model reads pairs)
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
#define X(field) j.at(#field).get_to(c.field);
  ATTNLAB_TRAIN_CONFIG_FIELDS(X)
#undef X
  c.model = ModelConfig::from_json(j.at("model"));
  c.lm_text = j.value("lm_text", std::string("both"));
  return c;
}

void TrainConfig::validate() const {
  // The command line checks these too; this catches a hand-edited config.json or a caller in code,
  // before minutes go into a tokenizer (the model's own sizes: ModelConfig::validate).
  auto need = [](bool ok, const char* flag, const std::string& what, auto got) {
    if (!ok) throw UsageError(fmt::format("--{}: expected {}, got {}", flag, what, got));
  };
  need(std::isfinite(lr) && lr > 0, "lr", "a number > 0", lr);
  need(std::isfinite(weight_decay) && weight_decay >= 0, "weight-decay", "a number >= 0", weight_decay);
  need(std::isfinite(clip) && clip >= 0, "clip", "a number >= 0 (0: off)", clip);
  need(std::isfinite(time_budget) && time_budget >= 0, "time-budget", "seconds >= 0 (0: no limit)", time_budget);
  need(warmup >= 0, "warmup", "a whole number >= 0", warmup);
  need(batch_tokens >= 1, "batch-tokens", "a whole number >= 1", batch_tokens);
  need(accum >= 1, "accum", "a whole number >= 1", accum);
  need(steps >= 1 && steps <= 2147483647, "steps", "a whole number >= 1", steps);
  need(eval_every >= 1, "eval-every", "a whole number >= 1", eval_every);
  need(log_every >= 1, "log-every", "a whole number >= 1", log_every);
  need(eval_sentences >= 0, "eval-sentences", "a whole number >= 0", eval_sentences);
  need(test_sentences >= 0, "test-sentences", "a whole number >= 0 (0: all)", test_sentences);
  need(beam >= 1 && beam <= 64, "beam", "a whole number from 1 to 64", beam);
  need(threads >= 0, "threads", "a whole number >= 0 (0: all cores)", threads);
  need(task_train >= 1, "task-train", "a whole number >= 1", task_train);
  need(vocab >= 8, "vocab", "a whole number >= 8", vocab);
  need(optimizer == "adam" || optimizer == "adamw", "optimizer", "adam or adamw", "'" + optimizer + "'");
  need(lm_text == "both" || lm_text == "src" || lm_text == "tgt", "lm-text", "both, src or tgt", "'" + lm_text + "'");
  if (!resume) {
    ModelConfig probe;
    probe.arch = model.arch;
    probe.validate();             // an unknown --arch
    probe.apply_preset(variant);  // an unknown --variant, or one that changes nothing in this arch
  }
}

json comparable_settings(const json& config) {
  static const std::set<std::string> per_run = {"variant", "seed", "match_params", "out", "resume", "threads", "quiet",
                                                "tokenizer", "config_file", "dump_tape", "dot", "model"};
  static const std::set<std::string> model_keys = {"arch", "d_model", "heads", "enc_layers", "dec_layers", "dropout",
                                                   "label_smoothing", "post_ln", "gelu", "max_len"};
  json out = json::object();
  for (auto& [key, value] : config.items())
    if (!per_run.count(key)) out[key] = value;
  // --match-params --match-widen d_model widens d_model itself: it then belongs to the variant.
  const bool widened = config.value("match_params", false) && config.value("match_widen", "d_ff") == "d_model";
  if (config.contains("model"))
    for (auto& [key, value] : config.at("model").items())
      if (model_keys.count(key) && !(widened && key == "d_model")) out["model." + key] = value;
  return out;
}

std::string default_corpus_dir() {
  if (const char* env = std::getenv("ATTNLAB_DATA_DIR")) return std::string(env) + "/corpora/gettext-en-de";
  return std::string(ATTNLAB_SOURCE_DIR) + "/data/corpora/gettext-en-de";
}

}  // namespace attn
