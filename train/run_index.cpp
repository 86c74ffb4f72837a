// train/run_index.cpp — every run and grid below a folder, from the runs' own files.
#include <attnlab/train/run_index.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <fmt/core.h>

#include <attnlab/core/csv.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/train/run_dir.h>

namespace attn {
namespace fs = std::filesystem;

static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

// Linux lists every held lock in /proc/locks, one a line: "1: FLOCK  ADVISORY  WRITE 4711
// 08:01:1234567 0 EOF" (the holder's pid, then device major:minor in hex and the inode). Reading
// it takes nothing from the writer. Elsewhere the lock file's presence stands in (the writer
// removes it when it ends; one that crashed leaves it, and reads as running).
static bool lock_held(const fs::path& lock_file) {
  struct stat st {};
  if (::stat(lock_file.c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  if (!locks) return true;
  const std::string dev_ino = fmt::format("{:02x}:{:02x}:{}", major(st.st_dev), minor(st.st_dev), uint64_t(st.st_ino));
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string word;
    while (in >> word)
      if (word == dev_ino) return true;
  }
  return false;
}

std::string run_status(const fs::path& run_dir) {
  if (lock_held(run_dir / WriterLock::kFile)) return "running";
  std::error_code ec;
  if (fs::is_regular_file(run_dir / "results.json", ec)) return "finished";
  return "interrupted";
}

static double number_or_none(const std::string& cell) {
  if (cell.empty()) return kNone;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  return end && *end == '\0' ? v : kNone;
}

nlohmann::json metrics_columns(const fs::path& csv_file) {
  const auto rows = parse_csv(read_file_limited(csv_file.string(), int64_t(64) << 20, csv_file.string()), csv_file.string());
  nlohmann::json columns = nlohmann::json::object();
  if (rows.empty()) return columns;
  const auto& header = rows[0];
  for (const auto& name : header) columns[name] = nlohmann::json::array();
  for (size_t r = 1; r < rows.size(); r++)
    for (size_t c = 0; c < header.size(); c++) {
      const double v = c < rows[r].size() ? number_or_none(rows[r][c]) : kNone;
      columns[header[c]].push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    }
  return columns;
}

RunIndex::RunIndex(const std::vector<std::string>& roots, const std::string& flag) {
  for (const auto& r : roots) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(r, ec);
    if (ec || !fs::is_directory(canonical, ec))
      throw UsageError(fmt::format("{} {}: not a directory (give a folder that holds runs or grids)", flag, r));
    roots_.push_back(canonical);
  }
}

// real (a canonical path) is root or below it
static bool within(const fs::path& real, const fs::path& root) {
  const fs::path inside = real.lexically_relative(root);
  return !inside.empty() && *inside.begin() != "..";
}

std::optional<fs::path> RunIndex::resolve(const std::string& id) const {
  const size_t slash = id.find('/');
  const std::string index = id.substr(0, slash);
  if (index.empty() || index.size() > 3 || index.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const size_t root = std::stoul(index);
  if (root >= roots_.size()) return std::nullopt;
  const std::string rest = slash == std::string::npos ? "" : id.substr(slash + 1);
  if (rest.find('\0') != std::string::npos || rest.find('\\') != std::string::npos) return std::nullopt;
  const fs::path rel(rest);
  if (rel.is_absolute() || rel.has_root_name()) return std::nullopt;
  for (const auto& part : rel)
    if (part == "..") return std::nullopt;
  std::error_code ec;
  const fs::path real = fs::canonical(roots_[root] / rel, ec);  // every symlink followed
  if (ec || !within(real, roots_[root])) return std::nullopt;
  return real;
}

std::optional<fs::path> RunIndex::file(const std::string& id, const std::string& name) const {
  const auto p = resolve(id + "/" + name);
  std::error_code ec;
  if (!p || !fs::is_regular_file(*p, ec)) return std::nullopt;
  return p;
}

std::optional<fs::path> RunIndex::readable(size_t root, const fs::path& path) const {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec || !fs::is_regular_file(real, ec) || !within(real, roots_[root])) return std::nullopt;
  return real;
}

std::string RunIndex::foreign_entry(const fs::path& run_dir) const {
  std::error_code ec;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code gone;
    if (!fs::exists(fs::symlink_status(it->path(), gone))) continue;  // removed since listed (a writer's temporary)
    const fs::path real = fs::canonical(it->path(), ec);
    bool ok = !ec && (fs::is_regular_file(real, ec) || fs::is_directory(real, ec));
    ok = ok && std::any_of(roots_.begin(), roots_.end(), [&](const fs::path& root) { return within(real, root); });
    if (!ok) return it->path().filename().string();
    ec.clear();
  }
  return "";
}

static double file_number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : kNone;
}

IndexedRun RunIndex::summarise(size_t root, const fs::path& dir, const std::string& grid) {
  IndexedRun s;
  s.name = dir.lexically_relative(roots_[root]).generic_string();
  s.id = fmt::format("{}/{}", root, s.name);
  if (s.name == ".") s.name = roots_[root].filename().string(), s.id = std::to_string(root);  // --runs is the run
  s.grid = grid;
  s.train_loss = s.valid_loss = s.bleu = s.accuracy = kNone;
  try {
    const auto config = readable(root, dir / "config.json");
    if (!config) throw std::runtime_error("config.json: not a file inside the root");
    const auto cfg = nlohmann::json::parse(read_file_limited(config->string(), 1 << 20, "config.json"));
    const auto model = cfg.value("model", nlohmann::json::object());
    s.arch = model.value("arch", "seq2seq");
    s.variant = cfg.value("variant", model.value("preset", ""));
    s.d_model = model.value("d_model", 0);
    s.steps = cfg.value("steps", 0);
    s.seed = cfg.value("seed", uint64_t(0));
    s.lr = cfg.value("lr", 0.0);
  } catch (const std::exception&) {
    s.arch.assign(1, '?');  // a config being written, or not attnlab's: listed, with what is known (assign: GCC 12 warns wrongly on = "?")
  }
  std::error_code ec;
  std::vector<std::vector<std::string>> csv;
  try {  // none yet (a run that has just started); one being written is read up to its last whole line
    if (const auto metrics = readable(root, dir / "metrics.csv"))
      csv = parse_csv(read_file_limited(metrics->string(), int64_t(64) << 20, "metrics.csv"), metrics->string());
  } catch (const std::exception&) {
  }
  if (!csv.empty()) {
    const auto& header = csv[0];
    auto col = [&](const char* name) {
      for (size_t c = 0; c < header.size(); c++)
        if (header[c] == name) return int(c);
      return -1;
    };
    const int step = col("step"), train = col("train_loss"), valid = col("valid_loss"), bleu = col("valid_bleu"),
              acc = col("valid_accuracy");
    auto cell = [&](size_t r, int c) { return c >= 0 && size_t(c) < csv[r].size() ? number_or_none(csv[r][size_t(c)]) : kNone; };
    for (size_t r = 1; r < csv.size(); r++) {
      if (const double v = cell(r, step); v >= 0 && v < 1e9) s.step = int(v);
      if (std::isfinite(cell(r, train))) s.train_loss = cell(r, train);
      if (std::isfinite(cell(r, valid))) s.valid_loss = cell(r, valid), s.bleu = cell(r, bleu), s.accuracy = cell(r, acc);
    }
    const auto t = fs::last_write_time(dir / "metrics.csv", ec);
    // to the nanosecond (with the size, beside it): two writes within one second are two changes
    if (!ec) s.updated = 1e-9 * double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::file_clock::to_sys(t).time_since_epoch()).count());
    s.metrics_bytes = int64_t(fs::file_size(dir / "metrics.csv", ec));
  }
  if (const auto results = readable(root, dir / "results.json")) {
    try {
      const auto res = nlohmann::json::parse(read_file_limited(results->string(), 1 << 20, "results.json"));
      if (res.contains("params") && res.at("params").is_number()) s.params = res.at("params").get<int64_t>();
      if (const double v = file_number(res, "valid_loss"); std::isfinite(v)) s.valid_loss = v;
      if (const double v = file_number(res, "test_bleu"); std::isfinite(v)) s.bleu = v;
      if (const double v = file_number(res, "test_accuracy"); std::isfinite(v)) s.accuracy = 100 * v;
      if (const double v = file_number(res, "steps"); v >= 0 && v < 1e9) s.step = int(v);
    } catch (const std::exception&) {
    }
  }
  return s;
}

void RunIndex::scan(size_t root, const fs::path& dir, int depth, const std::string& grid, std::vector<IndexedRun>& runs,
                    std::vector<IndexedGrid>& grids) {
  std::error_code ec;
  if (runs.size() >= kMaxRuns || depth > kMaxDepth) return;
  std::vector<fs::path> children;
  for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    // symlinked folders are not followed: a link could lead out of the root, or in a circle
    if (it->is_directory(ec) && !it->is_symlink(ec)) children.push_back(it->path());
  }
  std::sort(children.begin(), children.end());
  const std::string name = dir.lexically_relative(roots_[root]).generic_string();
  const std::string id = name == "." ? std::to_string(root) : fmt::format("{}/{}", root, name);
  const bool is_grid = fs::is_directory(dir / "runs", ec) && !fs::is_symlink(dir / "runs", ec);
  if (is_grid) grids.push_back({id, name == "." ? roots_[root].filename().string() : name, fs::is_regular_file(dir / "report.md", ec)});
  for (const auto& child : children) {
    if (runs.size() >= kMaxRuns) return;
    if (fs::is_regular_file(child / "config.json", ec)) {
      add_run(root, child, grid, runs);
    } else {
      scan(root, child, depth + 1, is_grid && child.filename() == "runs" ? id : "", runs, grids);
    }
  }
}

void RunIndex::add_run(size_t root, const fs::path& dir, const std::string& grid, std::vector<IndexedRun>& runs) {
  // a run's folder is read again only when its metrics or results changed
  std::error_code ec;
  Cached& c = cache_[dir.string()];
  const auto mt = fs::last_write_time(dir / "metrics.csv", ec);
  const auto ms = ec ? 0 : fs::file_size(dir / "metrics.csv", ec);
  const auto rt = fs::last_write_time(dir / "results.json", ec);
  if (c.summary.id.empty() || mt != c.metrics_time || ms != c.metrics_size || rt != c.results_time) {
    c.summary = summarise(root, dir, grid);
    c.metrics_time = mt, c.metrics_size = ms, c.results_time = rt;
  }
  IndexedRun s = c.summary;
  s.status = run_status(dir);  // the lock changes without the files
  runs.push_back(s);
}

RunIndex::Listing RunIndex::list() {
  std::lock_guard<std::mutex> lock(mutex_);
  Listing l;
  std::error_code ec;
  for (size_t r = 0; r < roots_.size(); r++) {
    if (fs::is_regular_file(roots_[r] / "config.json", ec)) add_run(r, roots_[r], "", l.runs);  // --runs is a run itself
    else scan(r, roots_[r], 0, "", l.runs, l.grids);
  }
  return l;
}

}  // namespace attn
