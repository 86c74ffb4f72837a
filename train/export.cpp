// train/export.cpp — a run's validation batches, one batch's gradients and its greedy test
// translations, as attnlab computes them (see export.h for the two files' contents).
#include <attnlab/train/export.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <attnlab/core/fileio.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/models/decode.h>
#include <attnlab/models/lm.h>
#include <attnlab/train/run_dir.h>
#include <attnlab/train/loaded_run.h>
#include <attnlab/train/trainer.h>

namespace attn {
using json = nlohmann::json;

// The seed of the mlm mask drawn for the gradient batch (any seed: it is exported with the mask).
static constexpr uint64_t kGradSeed = 1;

static json batch_json(const Batch& b) {
  return {{"B", b.B}, {"S", b.S}, {"T", b.T}, {"src", b.src}, {"tgt_in", b.tgt_in}, {"tgt_out", b.tgt_out}};
}

static json with_mask(json j, const Masked& m) {
  j["input"] = m.input;
  j["targets"] = m.targets;
  return j;
}

// The run's model with dropout 0, holding the loaded weights: a training-mode loss (label
// smoothing, an mlm's drawn mask) that is deterministic.
static std::unique_ptr<Model> without_dropout(const LoadedRun& run) {
  ModelConfig exact = run.model->cfg;
  exact.dropout = 0.f;
  std::unique_ptr<Model> m = make_model(exact, run.cfg.seed);
  for (size_t i = 0; i < m->params.params.size(); i++) m->params.params[i]->value = run.model->params.params[i]->value;
  return m;
}

// ReLU's derivative jumps at 0: an input within rounding of 0 can fall on one side in attnlab and
// on the other in another implementation, and the gradients then differ by that unit's whole
// contribution (at the default size a batch has millions of inputs; some are that close). Each
// ReLU's inputs within kNearZero of its largest |input| are listed with the side attnlab took
// (derivative 1 when positive), so that a checker can take the same side there and only there.
static constexpr float kNearZero = 1e-4f;

static json relu_sides(const Tape& tape) {
  json out = json::array();
  for (const TapeEntry& e : tape.entries) {
    if (e.op != "relu" && e.op != "relu_dropout") continue;  // in both, inputs[0] is the ReLU's input
    const Tensor& h = e.inputs[0]->value;
    float top = 0.f;
    for (int64_t i = 0; i < h.numel(); i++) top = std::max(top, std::fabs(h.data()[i]));
    std::vector<int64_t> index;
    std::vector<int> positive;
    for (int64_t i = 0; i < h.numel(); i++)
      if (std::fabs(h.data()[i]) <= kNearZero * top) index.push_back(i), positive.push_back(h.data()[i] > 0.f);
    out.push_back({{"node", e.out->name}, {"index", index}, {"positive", positive}});
  }
  return out;
}

// The training loss of b and every parameter's gradient; the batch with the masks that loss used,
// and the ReLU inputs near 0 with their sides.
static json gradients(const Model& model, const Batch& b, std::vector<std::pair<std::string, Tensor>>& out) {
  json j = batch_json(b);
  if (model.arch().masks()) {
    Rng draws(kGradSeed);  // the draws MaskedLM::loss makes first from an Rng of the same seed
    j = with_mask(j, mask_tokens(b, model.cfg, &draws));
  }
  j["grad_seed"] = kGradSeed;
  Tape tape;
  TapeScope scope(tape);
  Rng rng(kGradSeed);
  Var loss = model.loss(b, Context{true, &rng});
  tape.backward(loss);
  j["relu_near_zero"] = relu_sides(tape);
  j["near_zero"] = kNearZero;
  out.push_back({"loss", loss->value.reshape({1})});
  for (const Var& p : model.params.params)
    out.push_back({"grad/" + p->name, p->grad.defined() ? p->grad : Tensor::zeros(p->value.shape())});
  return j;
}

// The first n test source lines, their ids as translate reads them, and their greedy translations.
static json greedy_test(const LoadedRun& run, const Model& model, const ParallelCorpus& test, size_t n) {
  const std::vector<std::string> lines(test.src.begin(), test.src.begin() + int64_t(std::min(n, test.size())));
  const std::vector<std::vector<int32_t>> srcs = encode_sources(*run.tok, lines, model.cfg.max_len);
  DecodeOptions greedy;  // beam 1
  return {{"lines", lines}, {"src", srcs}, {"greedy", translate_ids(*model.translator(), srcs, greedy)}};
}

RunExport export_run(const std::string& dir, const std::string& which, int test_sentences) {
  LoadedRun run = load_run(dir, which);
  const TrainConfig& cfg = run.cfg;
  const ArchTraits& arch = traits(cfg.model.arch);
  if (test_sentences >= 0 && !arch.translates())
    throw UsageError(fmt::format("--test-sentences: --run {} is an --arch {} model, which does not translate", dir, arch.name));
  std::unique_ptr<Model> model = without_dropout(run);
  const CorpusSplits text = load_text(cfg);
  int64_t skipped = 0;
  const std::vector<Example> valid = encode_examples(text.valid, *run.tok, cfg, &skipped);
  if (valid.empty()) throw std::runtime_error(fmt::format("{}: no usable validation {}", text.dir, arch.translates() ? "pair" : "sentence"));

  RunExport e;
  json batches = json::array();
  Batcher plan(valid, cfg.batch_tokens, 0, /*shuffle=*/false);  // as evaluation batches the split
  Batch first;
  for (size_t i = 0; i < plan.batches_per_epoch(); i++) {
    Batch b = plan.next();
    batches.push_back(arch.masks() ? with_mask(batch_json(b), mask_tokens(b, model->cfg, nullptr)) : batch_json(b));
    if (i == 0) first = b;
  }
  e.reference = {{"run", dir},
                 {"weights", run_weights_file(dir, which)},
                 {"arch", arch.name},
                 {"valid", {{"loss", eval_loss(*model, valid, cfg.batch_tokens)}, {"batches", batches}}}};
  e.reference["grad_batch"] = gradients(*model, first, e.gradients);
  if (arch.translates()) {
    const int n = test_sentences >= 0 ? test_sentences : cfg.test_sentences > 0 ? cfg.test_sentences : int(text.test.size());
    e.reference["test"] = greedy_test(run, *model, text.test, size_t(n));
  }
  return e;
}

void write_run_export(const RunExport& e, const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw std::runtime_error(fmt::format("--out {}: cannot create the directory: {}", out_dir, ec.message()));
  write_file_atomic(out_dir + "/reference.json", e.reference.dump() + "\n");
  save_safetensors(out_dir + "/gradients.safetensors", e.gradients);
}

}  // namespace attn
