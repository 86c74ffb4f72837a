// train/run_index.h — what a folder of runs holds, read without disturbing the runs: every run
// (a folder with a config.json) and every grid (a folder whose runs/ holds runs) below it, each
// run's progress and status from its own files. It never takes a run's lock: a run is "running"
// while its writer lock is held by some process, which Linux lists in /proc/locks.
//   RunIndex index({"/work/runs"});
//   for (const IndexedRun& r : index.list().runs) fmt::print("{} step {} {}\n", r.id, r.step, r.status);
//   std::optional<std::filesystem::path> p = index.resolve("0/quick/runs/qk-s1/metrics.csv");
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attn {

// NaN where a run has no such figure (yet).
struct IndexedRun {
  std::string id;    // "<root index>/<path inside that root>": how the other calls name it
  std::string name;  // the path inside its root
  std::string grid;  // the grid's id, or empty
  std::string arch, variant;
  int64_t params = -1;  // from results.json: -1 until the run has finished
  int d_model = 0, steps = 0, step = 0;
  uint64_t seed = 0;
  double lr = 0, train_loss = 0, valid_loss = 0, bleu = 0, accuracy = 0;
  std::string status;  // "running", "finished" (a results.json) or "interrupted"
  double updated = 0;  // metrics.csv's modification time, seconds since the epoch (to the ns)
  int64_t metrics_bytes = 0;
};
struct IndexedGrid {
  std::string id, name;
  bool report = false;  // has a report.md
};

// "running" while the run's writer lock (RunDir's .writer.lock) is held, "finished" once it
// wrote results.json, else "interrupted" (stopped, crashed, or not started).
std::string run_status(const std::filesystem::path& run_dir);

// A metrics.csv as columns of numbers, null where a row leaves the cell empty.
nlohmann::json metrics_columns(const std::filesystem::path& csv_file);

class RunIndex {
 public:
  // Each root must be a directory (else a one-line error naming the flag and the path).
  RunIndex(const std::vector<std::string>& roots, const std::string& flag = "--runs");
  const std::vector<std::filesystem::path>& roots() const { return roots_; }
  // A fresh scan (at most kMaxDepth folders deep, kMaxRuns runs); a run's files are read again
  // only when they changed since the last scan.
  struct Listing {
    std::vector<IndexedRun> runs;
    std::vector<IndexedGrid> grids;
  };
  Listing list();
  // The path an id names ("<root index>/<path>", or "<root index>" alone for the root), when it
  // exists and stays inside its root once symlinks are followed; nullopt otherwise (absolute
  // paths, "..", a symlink that leads out, a root index that is not one).
  std::optional<std::filesystem::path> resolve(const std::string& id) const;
  // resolve(id + "/" + name) when that is a regular file (not a FIFO, a device, a folder).
  std::optional<std::filesystem::path> file(const std::string& id, const std::string& name) const;
  // The first entry of a run folder that is not a regular file or folder inside a root once
  // symlinks are followed (a link out, a FIFO that would block a reader), or empty: what
  // load_run may open there is then all inside --runs.
  std::string foreign_entry(const std::filesystem::path& run_dir) const;

  static constexpr int kMaxDepth = 5;
  static constexpr size_t kMaxRuns = 5000;

 private:
  struct Cached {
    std::filesystem::file_time_type metrics_time{}, results_time{};
    uintmax_t metrics_size = 0;
    IndexedRun summary;
  };
  // grid: the id of the grid whose runs/ `dir` is, or empty
  void scan(size_t root, const std::filesystem::path& dir, int depth, const std::string& grid, std::vector<IndexedRun>& runs,
            std::vector<IndexedGrid>& grids);
  void add_run(size_t root, const std::filesystem::path& dir, const std::string& grid, std::vector<IndexedRun>& runs);
  IndexedRun summarise(size_t root, const std::filesystem::path& dir, const std::string& grid);
  // path, when it is a regular file inside roots_[root] once symlinks are followed
  std::optional<std::filesystem::path> readable(size_t root, const std::filesystem::path& path) const;
  std::vector<std::filesystem::path> roots_;
  std::map<std::string, Cached> cache_;
  std::mutex mutex_;
};

}  // namespace attn
