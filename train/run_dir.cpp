// train/run_dir.cpp — a run's files: config, logs, checkpoints, results.
#include <attnlab/train/run_dir.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/models/checkpoint.h>

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;

bool RunDir::has_config() const { return fs::exists(file("config.json")); }
bool RunDir::has_checkpoint() const { return fs::exists(file("last.json")); }
bool RunDir::finished() const { return fs::exists(file("results.json")); }

bool RunDir::create(const char* flag) const {
  std::error_code ec;
  const bool made = fs::create_directories(path_, ec);
  if (ec || !fs::is_directory(path_))
    throw std::runtime_error(fmt::format("{} {}: cannot create directory: {}", flag, path_, ec.message()));
  if (::access(path_.c_str(), W_OK) != 0) throw std::runtime_error(fmt::format("{} {}: directory is not writable", flag, path_));
  return made;
}

TrainConfig RunDir::read_config() const { return with_json_file(file("config.json"), TrainConfig::from_json); }

void RunDir::write_config(const TrainConfig& cfg) const { write_file_atomic(file("config.json"), cfg.to_json().dump(2)); }

// ---- one writer ------------------------------------------------------------------------

static std::string host_name() {
  char h[256] = {};
  return ::gethostname(h, sizeof h - 1) == 0 && h[0] ? std::string(h) : std::string("?");
}

WriterLock::WriterLock(const std::string& dir, const std::string& flag) : path_(dir + "/" + kFile) {
  // The file exists only while a writer holds it (the destructor removes it), so a finished or
  // refused command leaves the directory as it was. A file removed between our open and our
  // lock is another inode than the path's now: open again.
  for (;;) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(fmt::format("{} {}: cannot open {}: {}", flag, dir, kFile, std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder;
      char buf[512] = {};
      if (::pread(fd_, buf, sizeof buf - 1, 0) > 0) holder = buf;
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK)
        throw std::runtime_error(fmt::format("{} {}: cannot lock {}: {}", flag, dir, kFile, std::strerror(err)));
      // holder: "pid 4711 on host h" as the holder wrote it (empty for the moment between its
      // lock and its write)
      throw std::runtime_error(fmt::format("{} {}: another attnlab ({}) is writing there; wait for it to end, or stop it "
                                           "(it checkpoints on Ctrl-C or kill -TERM) and give --resume", flag, dir,
                                           holder.empty() ? "pid unknown" : holder));
    }
    struct stat held {}, named {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev)
      break;
    ::close(fd_);  // the holder before us removed it after we opened it
    fd_ = -1;
  }
  const std::string me = fmt::format("pid {} on host {}\n", ::getpid(), host_name());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size())) {
    // the lock itself holds; only the message for a second writer would lack the pid
  }
}

void WriterLock::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // still holding the lock: no one else can have it open and locked
  ::close(fd_);             // releases the flock
  fd_ = -1;
}

WriterLock::~WriterLock() { release(); }

WriterLock& WriterLock::operator=(WriterLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

int remove_stale_temporaries(const std::string& dir) {
  static const std::regex tmp_name(R"(\..+\.tmp\.([0-9]+))");
  std::error_code ec;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::smatch m;
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec) || !std::regex_match(name, m, tmp_name)) continue;
    const long pid = std::strtol(m[1].str().c_str(), nullptr, 10);
    const bool alive = pid > 0 && pid != ::getpid() && (::kill(pid_t(pid), 0) == 0 || errno == EPERM);
    if (!alive && pid != ::getpid()) stale.push_back(it->path());
  }
  int removed = 0;
  for (auto& p : stale) removed += fs::remove(p, ec) ? 1 : 0;
  return removed;
}

SetupUndo::SetupUndo(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  if (dir_.empty() || !fs::is_directory(dir_, ec)) return;
  existed_ = true;
  for (const auto& e : fs::directory_iterator(dir_, ec)) before_.push_back(e.path().filename().string());
}

SetupUndo::SetupUndo(std::string dir, bool created) : SetupUndo(std::move(dir)) {
  if (created) existed_ = false, before_.clear();
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
    metrics_ << metrics_header() << "\n";
    dynamics_ << dynamics_header() << "\n";
  }
}

void RunDir::log_metrics(const MetricsRow& row) { metrics_ << metrics_line(row) << "\n"; }

void RunDir::log_dynamics(const std::vector<DynRow>& rows) {
  for (auto& d : rows) dynamics_ << dynamics_line(d) << "\n";
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
  for (const Segment& g : st.segments)
    s["segments"].push_back({{"from_step", g.from_step}, {"attnlab", g.attnlab}, {"machine", g.machine},
                             {"blas_kernels", g.blas_kernels}, {"vector_isa", g.vector_isa}, {"threads", g.threads}});
  if (st.plateau_on) {
    s["plateau_best"] = std::isfinite(st.plateau_best) ? json(st.plateau_best) : json(nullptr);
    s["plateau_stale"] = st.plateau_stale;
  }
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
    if (s.contains("segments"))
      for (const json& g : s.at("segments"))
        st.segments.push_back({g.at("from_step").get<int64_t>(), g.at("attnlab"), g.at("machine"), g.at("blas_kernels"),
                               g.at("vector_isa"), g.at("threads")});
    else  // a checkpoint from before segments were kept: where its steps were made is unknown
      st.segments.push_back({0, "not recorded", "not recorded", "not recorded", "not recorded", 0});
    if (s.contains("plateau_stale")) {  // a run with --until-plateau (also one that had it before a resume)
      st.plateau_best = s.at("plateau_best").is_null() ? std::numeric_limits<double>::infinity()
                                                       : s.at("plateau_best").get<double>();
      st.plateau_stale = s.at("plateau_stale");
    }
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

}  // namespace attn
