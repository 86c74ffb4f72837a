// train/loaded_run.cpp — loading a finished run, and asking its model to translate or generate.
#include <attnlab/train/loaded_run.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include <attnlab/core/json_file.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/models/checkpoint.h>

namespace attn {

namespace fs = std::filesystem;
using json = nlohmann::json;

LoadedRun load_run(const std::string& dir, const std::string& which) {
  if (!fs::exists(dir + "/config.json")) throw std::runtime_error("--run " + dir + ": not a run directory (no config.json)");
  LoadedRun r;
  r.dir = dir;
  r.cfg = with_json_file(dir + "/config.json", [](const json& j) {
    TrainConfig c = TrainConfig::from_json(j);
    c.model.validate();
    return c;
  });
  r.tok = Tokenizer::load(dir + "/tokenizer");
  if (r.tok->vocab_size() != r.cfg.model.vocab)
    throw std::runtime_error(fmt::format("{}/tokenizer: vocabulary of {} does not match the model's {}", dir,
                                         r.tok->vocab_size(), r.cfg.model.vocab));
  r.model = make_model(r.cfg.model, r.cfg.seed);
  load_model_weights(*r.model, run_weights_file(dir, which));
  return r;
}

std::string run_weights_file(const std::string& dir, const std::string& which) {
  if (which != "last") return dir + "/model." + which + ".safetensors";
  return dir + "/" + with_json_file(dir + "/last.json", [](const json& j) { return j.at("dir").get<std::string>(); }) +
         "/model.safetensors";
}

// What a run's model cannot do, said with what it can.
static std::string cannot(const LoadedRun& run, const char* what) {
  const ArchTraits& a = run.model->arch();
  const std::string head = fmt::format("--run {}: {} (--arch {})", run.dir, a.kind, a.name);
  if (a.translates()) return fmt::format("{} does not {}; attnlab translate --run {} translates", head, what, run.dir);
  if (a.generates()) return fmt::format("{} does not {}; attnlab generate --run {} continues a prompt", head, what, run.dir);
  return head + " neither translates nor generates";
}

const Transformer& translation_model(const LoadedRun& run) {
  if (const Transformer* t = run.model->translator()) return *t;
  throw UsageError(cannot(run, "translate"));
}

const LanguageModel& language_model(const LoadedRun& run) {
  if (const LanguageModel* lm = run.model->generator()) return *lm;
  throw UsageError(cannot(run, "generate"));
}

std::vector<std::string> translate_lines(const LoadedRun& run, const std::vector<std::string>& lines,
                                         const DecodeOptions& opt, std::vector<CutLine>* cut) {
  return translate_texts(translation_model(run), *run.tok, lines, opt, cut);
}

}  // namespace attn
