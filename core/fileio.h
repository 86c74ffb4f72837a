// core/fileio.h — whole-file reads and crash-safe (atomic) writes.
//
// write_file_atomic() writes a temp file in the destination's directory, fsyncs it, renames
// it over the destination and fsyncs the directory: a crash at any point leaves either the old
// complete file or the new complete file, never a torn one.
//   write_file_atomic("run/model.safetensors", bytes);
//   std::string s = read_file("corpus/train.en");   // throws "corpus/train.en: No such file..."
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace attn {

std::string read_file(const std::string& path);
// read_file for an input that has a size limit (a config file, a matrix, a file of sentences):
// refuses one larger than max_bytes, naming `what` (e.g. "--config base.toml") and the limit, after
// reading at most max_bytes + 1 — /dev/zero or a wrong file is refused, not read into memory.
std::string read_file_limited(const std::string& path, int64_t max_bytes, const std::string& what);
void write_file_atomic(const std::string& path, std::string_view bytes);
// Fault injection for tests: the next writes fail with ENOSPC once `bytes` have been written
// in total (negative: off). Used to check that a full disk loses no earlier data.
void set_write_fault_after(int64_t bytes);

// A set of files replaced together (a report: report.md, its CSVs and its PNGs). Each is written
// under dir/.staged.PID/ (the same file system); commit() fsyncs every file there and only then
// renames each into dir. A write that fails (a full disk) throws before anything in dir is
// replaced, and the destructor removes the staging folder: the previous files stay whole.
//   StagedDir out("reports/quick");
//   out.write("summary.csv", csv);                 // out.path() + "/summary.csv"
//   std::system(("cd " + out.path() + " && gnuplot plots.gp").c_str());  // programs write there too
//   out.commit();                                   // summary.csv, plots/*.png, ... into reports/quick
class StagedDir {
 public:
  explicit StagedDir(std::string dir);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;
  const std::string& path() const { return staging_; }
  void write(const std::string& relative, std::string_view bytes);  // relative may hold one folder: "plots/x.csv"
  // After a program that wrote into path() failed: throws (the previous files untouched) when the
  // disk it wrote to is full, since its files are then missing rather than not drawable.
  void check_written(const std::string& program) const;
  void commit();

 private:
  std::string dir_, staging_;
  bool committed_ = false;
};

}  // namespace attn
