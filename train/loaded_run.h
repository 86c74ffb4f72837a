// train/loaded_run.h — a finished run loaded for use: its configuration, tokenizer and weights, and
// what its model can do (translate, generate), refused with the command that fits when it cannot.
//   LoadedRun r = load_run("runs/qq");      // config, tokenizer and best weights
//   auto hyps = translate_lines(r, {"Open file"}, DecodeOptions{});
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <attnlab/data/tokenizer.h>
#include <attnlab/models/lm.h>
#include <attnlab/models/transformer.h>
#include <attnlab/train/config.h>
#include <attnlab/train/evaluate.h>

namespace attn {

// Everything needed to use a finished run.
struct LoadedRun {
  std::string dir;
  TrainConfig cfg;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Model> model;
};
// `which`: "best" (model.best.safetensors) or "last" (the newest checkpoint).
LoadedRun load_run(const std::string& dir, const std::string& which = "best");
// The weights file load_run reads for `which`.
std::string run_weights_file(const std::string& dir, const std::string& which);
// The run's model as a translation model; an lm or mlm run is refused naming the command it needs.
const Transformer& translation_model(const LoadedRun& run);
// The run's model as a language model; a translation or mlm run is refused the same way.
const LanguageModel& language_model(const LoadedRun& run);
std::vector<std::string> translate_lines(const LoadedRun& run, const std::vector<std::string>& lines,
                                         const DecodeOptions& opt, std::vector<CutLine>* cut = nullptr);

}  // namespace attn
