// core/fileio.cpp — POSIX file plumbing with errors that name the file.
#include <attnlab/core/fileio.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace attn {

static int64_t g_fault_after = -1;
void set_write_fault_after(int64_t bytes) { g_fault_after = bytes; }

std::string read_file(const std::string& path) {
  if (std::error_code ec; std::filesystem::is_directory(path, ec))
    throw std::runtime_error(fmt::format("{}: is a directory, expected a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(fmt::format("{}: read error", path));
  return ss.str();
}

std::string read_file_limited(const std::string& path, int64_t max_bytes, const std::string& what) {
  if (std::error_code ec; std::filesystem::is_directory(path, ec))
    throw std::runtime_error(fmt::format("{}: is a directory, expected a file", what));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading: {}", what, std::strerror(errno)));
  std::string out;
  char buf[1 << 16];
  while (in && int64_t(out.size()) <= max_bytes) {
    in.read(buf, sizeof buf);
    out.append(buf, size_t(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error(fmt::format("{}: read error", what));
  if (int64_t(out.size()) > max_bytes)
    throw std::runtime_error(fmt::format("{}: larger than {} (the limit for this input; is it the right file?)", what,
                                         max_bytes >= (1 << 20) ? fmt::format("{} MiB", max_bytes >> 20)
                                                                : fmt::format("{} KiB", max_bytes >> 10)));
  return out;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  fs::path dest(path);
  fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + dest.filename().string() + fmt::format(".tmp.{}", getpid()))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    size_t chunk = std::min<size_t>(bytes.size() - done, 1 << 20);
    ssize_t n;
    if (g_fault_after >= 0 && int64_t(done + chunk) > g_fault_after) {
      n = -1;
      errno = ENOSPC;
    } else {
      n = ::write(fd, bytes.data() + done, chunk);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      const bool had = ::access(path.c_str(), F_OK) == 0;
      throw std::runtime_error(fmt::format("{}: write failed: {} ({})", path, std::strerror(err),
                                           had ? "the previous file is untouched" : "nothing was written"));
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("{}: could not flush to disk: {}", path, std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("{}: could not replace: {}", path, std::strerror(err)));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

static void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(fmt::format("{}: cannot open to flush: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(fmt::format("{}: could not flush to disk: {}", path, std::strerror(err)));
}

StagedDir::StagedDir(std::string dir) : dir_(std::move(dir)) {
  namespace fs = std::filesystem;
  fs::create_directories(dir_);
  // a staging folder a killed writer left (its pid gone) holds nothing anyone will commit
  for (auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".staged.", 0) != 0 || !e.is_directory()) continue;
    const long pid = std::strtol(name.c_str() + 8, nullptr, 10);
    if (pid > 0 && pid != long(getpid()) && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path());
  }
  staging_ = (fs::path(dir_) / fmt::format(".staged.{}", getpid())).string();
  fs::remove_all(staging_);
  fs::create_directories(staging_);
}

StagedDir::~StagedDir() {
  std::error_code ec;
  if (!committed_) std::filesystem::remove_all(staging_, ec);
}

void StagedDir::write(const std::string& relative, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path p = fs::path(staging_) / relative;
  fs::create_directories(p.parent_path());
  try {
    write_file_atomic(p.string(), bytes);
  } catch (const std::runtime_error& e) {  // name the file where it was going, and what is kept
    std::string why = e.what();  // "STAGING/x: write failed: No space left on device (nothing was written)"
    if (why.rfind(p.string() + ": ", 0) == 0) why = why.substr(p.string().size() + 2);
    if (const size_t paren = why.rfind(" ("); paren != std::string::npos) why.erase(paren);
    throw std::runtime_error(fmt::format("{}/{}: {}; the previous files in {} are untouched", dir_, relative, why, dir_));
  }
}

void StagedDir::check_written(const std::string& program) const {
  const auto space = std::filesystem::space(staging_);
  if (space.available < (uint64_t(1) << 20))
    throw std::runtime_error(fmt::format("{}: {} could not write its files ({} bytes free: is the disk full?); the previous "
                                         "files in {} are untouched", dir_, program, space.available, dir_));
}

void StagedDir::commit() {
  namespace fs = std::filesystem;
  std::vector<std::string> files;  // relative paths
  for (auto& e : fs::recursive_directory_iterator(staging_))
    if (e.is_regular_file()) {
      const std::string rel = fs::relative(e.path(), staging_).string();
      if (e.file_size() == 0 && rel.size() > 4 && rel.compare(rel.size() - 4, 4, ".png") == 0)
        throw std::runtime_error(fmt::format("{}/{}: the plot was written empty (a full disk?); the previous files in {} are untouched",
                                             dir_, rel, dir_));
      fsync_path(e.path().string(), false);  // a program (gnuplot) wrote some of them: flush each here
      files.push_back(rel);
    }
  // Top-level files are renamed over their old selves; a top-level folder (plots/) replaces the
  // old one whole, so that what an earlier report drew and this one does not goes with it.
  std::vector<fs::path> entries;
  for (auto& e : fs::directory_iterator(staging_)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const fs::path& from : entries) {
    const fs::path to = fs::path(dir_) / from.filename();
    if (fs::is_directory(from) && fs::exists(to)) {
      const fs::path old = fs::path(dir_) / fmt::format(".replaced.{}.{}", getpid(), from.filename().string());
      fs::remove_all(old);
      fs::rename(to, old);
      fs::rename(from, to);
      fs::remove_all(old);
    } else {
      fs::rename(from, to);
    }
  }
  committed_ = true;
  std::error_code ec;
  fs::remove_all(staging_, ec);
  std::set<std::string> dirs = {dir_};
  for (const std::string& rel : files) dirs.insert((fs::path(dir_) / rel).parent_path().string());
  for (const std::string& d : dirs) fsync_path(d, true);
}

}  // namespace attn
