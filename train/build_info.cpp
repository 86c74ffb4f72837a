// train/build_info.cpp — which attnlab build and which machine a run was made with.
#include <attnlab/train/build_info.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include <attnlab/version.h>

namespace attn {

std::string attnlab_build() { return fmt::format("{} (commit {})", version(), commit()); }

std::string machine_description() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "unknown host");
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");  // Linux; elsewhere the CPU stays unknown
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      cpu = line.substr(line.find(':') + 1);
      cpu.erase(0, cpu.find_first_not_of(" \t"));
      break;
    }
  return fmt::format("{}, {}, {} cores", host, cpu, std::thread::hardware_concurrency());
}

}  // namespace attn
