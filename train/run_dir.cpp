// train/run_dir.cpp — a run's files: config, logs, checkpoints, results; loading a finished run.
#include "train/run_dir.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "core/fileio.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "core/usage_error.h"
#include "models/checkpoint.h"

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;

bool RunDir::has_config() const { return fs::exists(file("config.json")); }
bool RunDir::has_checkpoint() const { return fs::exists(file("last.json")); }
bool RunDir::finished() const { return fs::exists(file("results.json")); }

void RunDir::create(const char* flag) const {
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec || !fs::is_directory(path_))
    throw std::runtime_error(fmt::format("{} {}: cannot create directory: {}", flag, path_, ec.message()));
  if (::access(path_.c_str(), W_OK) != 0) throw std::runtime_error(fmt::format("{} {}: directory is not writable", flag, path_));
}

TrainConfig RunDir::read_config() const { return with_json_file(file("config.json"), TrainConfig::from_json); }

void RunDir::write_config(const TrainConfig& cfg) const { write_file_atomic(file("config.json"), cfg.to_json().dump(2)); }

SetupUndo::SetupUndo(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  if (dir_.empty() || !fs::is_directory(dir_, ec)) return;
  existed_ = true;
  for (const auto& e : fs::directory_iterator(dir_, ec)) before_.push_back(e.path().filename().string());
}

SetupUndo::~SetupUndo() {
  if (dir_.empty()) return;
  std::error_code ec;
  if (!existed_) {
    fs::remove_all(dir_, ec);
    return;
  }
  std::vector<fs::path> added;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (std::find(before_.begin(), before_.end(), e.path().filename().string()) == before_.end()) added.push_back(e.path());
  for (const auto& p : added) fs::remove_all(p, ec);
}

// ---- logs ------------------------------------------------------------------------------

void RunDir::open_logs() {
  const bool new_files = !fs::exists(file("metrics.csv"));
  metrics_.open(file("metrics.csv"), std::ios::app);
  dynamics_.open(file("dynamics.csv"), std::ios::app);
  if (!metrics_ || !dynamics_) throw std::runtime_error(file("metrics.csv") + ": cannot open for writing");
  if (new_files) {
    metrics_ << "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n";
    dynamics_ << "step,site,metric,value\n";
  }
}

void RunDir::log_metrics(const std::string& row) { metrics_ << row << "\n"; }

void RunDir::log_dynamics(const std::vector<DynRow>& rows) {
  for (auto& d : rows) dynamics_ << fmt::format("{},{},{},{:.6g}\n", d.step, d.site, d.metric, d.value);
}

void RunDir::flush_logs() {
  metrics_.flush();
  dynamics_.flush();
}

// Keeps only the CSV rows whose first field (the step) is <= step.
static void truncate_csv(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, out;
  bool header = true;
  for (int n = 1; std::getline(in, line); n++) {
    if (header) {
      out += line + "\n";
      header = false;
      continue;
    }
    if (line.empty()) continue;
    int64_t row_step = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), row_step).ec != std::errc())
      throw std::runtime_error(fmt::format("{}:{}: expected the step first, got '{}'", path, n, line.substr(0, line.find(','))));
    if (row_step <= step) out += line + "\n";
  }
  write_file_atomic(path, out);
}

void RunDir::clear_logs() const {
  fs::remove(file("metrics.csv"));
  fs::remove(file("dynamics.csv"));
}

void RunDir::truncate_logs(int64_t step) const {
  truncate_csv(file("metrics.csv"), step);
  truncate_csv(file("dynamics.csv"), step);
}

// ---- checkpoints -----------------------------------------------------------------------
// checkpoints/step-N/{model,state}.safetensors + state.json, then last.json points at it:
// the pointer is replaced atomically only after the whole directory is on disk.

void RunDir::save_checkpoint(const Model& model, const Adam& opt, const TrainState& st) const {
  const std::string rel = fmt::format("checkpoints/step-{:07d}", st.step);
  const std::string dir = file(rel);
  fs::create_directories(dir);
  save_model(model, dir + "/model.safetensors", {{"step", std::to_string(st.step)}});
  std::vector<std::pair<std::string, Tensor>> moments;
  for (size_t i = 0; i < opt.params.size(); i++) {
    moments.push_back({"m/" + opt.params[i]->name, opt.m[i]});
    moments.push_back({"v/" + opt.params[i]->name, opt.v[i]});
  }
  save_safetensors(dir + "/state.safetensors", moments, {{"step", std::to_string(st.step)}});
  json s = {{"step", st.step},        {"adam_t", opt.t},         {"epoch", st.pos.epoch},
            {"index", st.pos.index},  {"rng", st.rng},           {"best_valid", st.best_valid},
            {"train_seconds", st.train_seconds}, {"wall_seconds", st.wall_seconds}, {"tokens", st.tokens}};
  write_file_atomic(dir + "/state.json", s.dump(2));
  const std::string prev = has_checkpoint() ? read_json(file("last.json")).value("dir", "") : "";
  write_file_atomic(file("last.json"), json{{"dir", rel}, {"step", st.step}}.dump());
  if (!prev.empty() && prev != rel) fs::remove_all(file(prev));
}

void RunDir::remove_stale_checkpoints() const {
  const fs::path dir = file("checkpoints");
  if (!fs::is_directory(dir)) return;
  const std::string keep =
      has_checkpoint() ? with_json_file(file("last.json"), [](const json& j) { return j.at("dir").get<std::string>(); }) : "";
  for (auto& e : fs::directory_iterator(dir))
    if ("checkpoints/" + e.path().filename().string() != keep) fs::remove_all(e.path());
}

TrainState RunDir::load_checkpoint(Model& model, Adam& opt) const {
  const std::string dir = file(with_json_file(file("last.json"), [](const json& j) { return j.at("dir").get<std::string>(); }));
  load_model_weights(model, dir + "/model.safetensors");
  SafetensorsFile f = load_safetensors(dir + "/state.safetensors");
  for (size_t i = 0; i < opt.params.size(); i++) {
    const Tensor* m = f.find("m/" + opt.params[i]->name);
    const Tensor* v = f.find("v/" + opt.params[i]->name);
    if (!m || !v || m->shape() != opt.m[i].shape() || v->shape() != opt.v[i].shape())
      throw std::runtime_error(dir + "/state.safetensors: optimizer state does not fit parameter " + opt.params[i]->name);
    if (!all_finite(*m) || !all_finite(*v))
      throw std::runtime_error(dir + "/state.safetensors: optimizer state of " + opt.params[i]->name + " holds NaN or Inf");
    opt.m[i] = m->clone();
    opt.v[i] = v->clone();
  }
  if (f.tensors.size() != 2 * opt.params.size())
    for (auto& [name, t] : f.tensors) {
      const bool moment = name.rfind("m/", 0) == 0 || name.rfind("v/", 0) == 0;
      bool known = false;
      for (auto& p : opt.params) known = known || (moment && name.substr(2) == p->name);
      if (!known) throw std::runtime_error(dir + "/state.safetensors: tensor '" + name + "' does not belong to this model's optimizer state");
    }
  TrainState st;
  with_json_file(dir + "/state.json", [&](const json& s) {
    st.step = s.at("step");
    opt.t = s.at("adam_t");
    st.pos.epoch = s.at("epoch");
    st.pos.index = s.at("index");
    st.rng = s.at("rng").get<std::array<uint32_t, 4>>();
    st.best_valid = s.at("best_valid").is_null() ? std::numeric_limits<double>::infinity() : s.at("best_valid").get<double>();
    st.train_seconds = s.at("train_seconds");
    st.wall_seconds = s.at("wall_seconds");
    st.tokens = s.at("tokens");
  });
  return st;
}

void RunDir::save_best(const Model& model, int64_t step) const {
  save_model(model, file("model.best.safetensors"), {{"step", std::to_string(step)}});
}
void RunDir::save_best(const Model& model) const { save_model(model, file("model.best.safetensors")); }

void RunDir::write_test_hyps(const std::vector<std::string>& hyps) const {
  std::string text;
  for (auto& h : hyps) text += h + "\n";
  write_file_atomic(file("test.hyp"), text);
}

void RunDir::write_results(const json& results) const { write_file_atomic(file("results.json"), results.dump(2)); }

// ---- a finished run --------------------------------------------------------------------

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
  std::string path = dir + "/model." + which + ".safetensors";
  if (which == "last")
    path = dir + "/" + with_json_file(dir + "/last.json", [](const json& j) { return j.at("dir").get<std::string>(); }) +
           "/model.safetensors";
  load_model_weights(*r.model, path);
  return r;
}

const Transformer& translation_model(const LoadedRun& run) {
  const std::string& arch = run.cfg.model.arch;
  if (arch == "lm")
    throw UsageError("--run " + run.dir + ": a language model (--arch lm) does not translate; "
                     "attnlab generate --run " + run.dir + " continues a prompt");
  if (arch == "mlm")
    throw UsageError("--run " + run.dir + ": a masked-token model (--arch mlm) neither translates nor generates");
  return dynamic_cast<const Transformer&>(*run.model);
}

const LanguageModel& language_model(const LoadedRun& run) {
  const std::string& arch = run.cfg.model.arch;
  if (arch == "seq2seq")
    throw UsageError("--run " + run.dir + ": a translation model (--arch seq2seq) does not generate; "
                     "attnlab translate --run " + run.dir + " translates");
  if (arch == "mlm")
    throw UsageError("--run " + run.dir + ": a masked-token model (--arch mlm) neither translates nor generates");
  return dynamic_cast<const LanguageModel&>(*run.model);
}

std::vector<std::string> translate_lines(const LoadedRun& run, const std::vector<std::string>& lines,
                                         const DecodeOptions& opt, std::vector<CutLine>* cut) {
  return translate_texts(translation_model(run), *run.tok, lines, opt, cut);
}

}  // namespace attn
