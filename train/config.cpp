// train/config.cpp — TrainConfig to and from config.json, its checks, and what runs compare by.
#include <attnlab/train/config.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <attnlab/core/usage_error.h>

#ifndef ATTNLAB_INSTALL_DATADIR
#define ATTNLAB_INSTALL_DATADIR "/usr/local/share/attnlab"
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
  if (until_plateau > 0) {
    j["until_plateau"] = until_plateau;
    j["plateau_delta"] = plateau_delta;
  }
  j["model"] = model.to_json();
  if (!traits(model.arch).translates()) j["lm_text"] = lm_text;  // (a translation model reads pairs)
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
#define X(field) j.at(#field).get_to(c.field);
  ATTNLAB_TRAIN_CONFIG_FIELDS(X)
#undef X
  c.until_plateau = j.value("until_plateau", 0);
  c.plateau_delta = j.value("plateau_delta", 0.002);
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
  need(until_plateau >= 0, "until-plateau", "a whole number of evaluations >= 0 (0: off)", until_plateau);
  need(std::isfinite(plateau_delta) && plateau_delta >= 0, "plateau-delta", "a loss difference >= 0", plateau_delta);
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
  // What an architecture does not use (train refuses it typed, train/config.h) does not tell runs
  // apart: an lm has no encoder and decodes no translation, an mlm has no decoder.
  const ArchTraits& a = traits(config.contains("model") && config.at("model").contains("arch")
                                    ? parse_arch(config.at("model").at("arch").get<std::string>(), "\"arch\"")
                                    : Arch::seq2seq);
  if (!a.translates()) out.erase("beam");
  // --match-params --match-widen d_model widens d_model itself: it then belongs to the variant.
  const bool widened = config.value("match_params", false) && config.value("match_widen", "d_ff") == "d_model";
  if (config.contains("model"))
    for (auto& [key, value] : config.at("model").items())
      if (model_keys.count(key) && !(widened && key == "d_model") && !(!a.has_encoder && key == "enc_layers") &&
          !(!a.has_decoder && key == "dec_layers"))
        out["model." + key] = value;
  return out;
}

std::string flag_not_applying(const std::string& flag, Arch arch) {
  const ArchTraits& a = traits(arch);
  if (!a.has_encoder && flag == "--enc-layers")
    return fmt::format("--enc-layers: does not apply to --arch {} (a {} model: its layers are --dec-layers)", a.name, a.shape);
  if (!a.has_decoder && flag == "--dec-layers")
    return fmt::format("--dec-layers: does not apply to --arch {} (an {} model: its layers are --enc-layers)", a.name, a.shape);
  if (!a.translates() && flag == "--beam") return fmt::format("--beam: does not apply to --arch {} (it decodes no translation)", a.name);
  if (a.translates() && flag == "--lm-text") return "--lm-text: applies to --arch lm and mlm (a translation model reads both sides)";
  return "";
}

const std::vector<std::string>& resume_may_change() {
  static const std::vector<std::string> flags = {"--steps", "--threads", "--quiet"};
  return flags;
}

std::string resume_conflict(json saved, json given, const std::vector<std::string>& flags, const std::string& run_dir) {
  for (json* j : {&saved, &given})  // config.json leaves out a translation model's arch (runs from before lm and mlm)
    if (j->contains("model") && !j->at("model").contains("arch")) (*j)["model"]["arch"] = arch_name(Arch::seq2seq);
  // Read or handled elsewhere: where the run is, the switch itself, the file the flags came from,
  // and --tokenizer (compared by its files, see apps/commands.cpp).
  static const std::set<std::string> not_settings = {"--out", "--resume", "--config", "--tokenizer"};
  // a value as it would be typed: 3e-3 (not the float's 0.003000000026077032), qq, true
  auto shown = [](const json& v) {
    if (v.is_string()) return v.get<std::string>().empty() ? std::string("''") : v.get<std::string>();
    if (v.is_number_float()) return fmt::format("{:g}", v.get<double>());
    return v.dump();
  };
  // --match-params widened one dimension of the saved model: the typed value is the one before it.
  const std::string widened = saved.value("match_params", false) ? saved.value("match_widen", std::string("d_ff")) : "";
  const auto& may = resume_may_change();
  for (const std::string& flag : flags) {
    if (not_settings.count(flag) || std::find(may.begin(), may.end(), flag) != may.end()) continue;
    std::string key = flag.substr(flag.find_first_not_of('-'));
    std::replace(key.begin(), key.end(), '-', '_');
    const json* was = saved.contains(key) ? &saved.at(key) : nullptr;
    const json* now = given.contains(key) ? &given.at(key) : nullptr;
    if (!was && saved.contains("model") && saved.at("model").contains(key)) {
      if (key == widened) continue;
      was = &saved.at("model").at(key);
      now = given.contains("model") && given.at("model").contains(key) ? &given.at("model").at(key) : nullptr;
    }
    if (!was && !now)
      return fmt::format("{}: does not apply to --resume (it acts on a run's first step); resume without it", flag);
    if (!was || !now || *was != *now)
      return fmt::format("{}{}: the run in {} has {} {}, and a resumed run keeps its settings (only {} may change); "
                         "train it under another --out to change it", flag,
                         now && now->is_boolean() ? "" : " " + (now ? shown(*now) : std::string("(not set)")), run_dir, key,
                         was ? shown(*was) : "(not set)", fmt::join(may, ", "));
  }
  return "";
}

std::string default_corpus_dir() {
  namespace fs = std::filesystem;
  const std::string corpus = "corpora/gettext-en-de";
  if (const char* env = std::getenv("ATTNLAB_DATA_DIR"); env && *env) return std::string(env) + "/" + corpus;
  std::vector<fs::path> tried = {fs::path(ATTNLAB_INSTALL_DATADIR)};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // Linux; elsewhere the install prefix alone
  if (!ec) tried.insert(tried.end(), {exe.parent_path() / "share/attnlab", exe.parent_path().parent_path() / "share/attnlab"});
  std::vector<std::string> names;
  for (const fs::path& d : tried) {
    if (fs::is_directory(d / corpus, ec)) return (d / corpus).string();
    names.push_back(d.lexically_normal().string());
  }
  throw std::runtime_error(fmt::format("the embedded corpus is not installed: no {} in {}; give --corpus DIR, or set "
                                       "ATTNLAB_DATA_DIR to the folder that holds {}", corpus, fmt::join(names, ", "),
                                       corpus));
}

}  // namespace attn
