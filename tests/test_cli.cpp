// tests/test_cli.cpp — the terminal user: one writer per run directory, runs that end on SIGTERM
// and SIGHUP as on Ctrl-C, a standard output that cannot be written, corpora with nothing usable,
// and resumed runs that refuse other settings. Each case asserts the exact line, the exit code
// and, where files are involved, that nothing was changed or lost.
#include <catch2/catch.hpp>

#include <sched.h>

#include <algorithm>

#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <attnlab/core/fileio.h>
#include <attnlab/core/runtime.h>
#include "tests/cli.h"
#include "tests/skip.h"

namespace {

// Starts `attnlab <args>` with its output in `log`; returns its pid (the attnlab process itself:
// the shell execs it).
pid_t start(const std::string& args, const fs::path& log) {
  const std::string cmd = "exec " + std::string(ATTNLAB_BINARY) + " " + args + " >" + log.string() + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

// Waits for a started process; its exit code, or 128 + the signal that killed it.
int finish(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls until `ready` holds (at most 60 s); false if it never did.
template <class F>
bool wait_until(F ready) {
  for (int i = 0; i < 1200; i++) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string host() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return h;
}

// The step column of metrics.csv, with its header checked: line 1 is the header, once.
std::vector<long> metric_steps(const fs::path& run) {
  std::istringstream in(read_file((run / "metrics.csv").string()));
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("step,epoch,", 0) == 0);
  std::vector<long> steps;
  while (std::getline(in, line)) {
    REQUIRE(line.rfind("step,", 0) != 0);
    steps.push_back(std::stol(line.substr(0, line.find(','))));
  }
  return steps;
}

bool strictly_increasing(const std::vector<long>& v) {
  for (size_t i = 1; i < v.size(); i++)
    if (v[i] <= v[i - 1]) return false;
  return !v.empty();
}

// True while some process holds the run's writer lock.
bool locked(const fs::path& run) {
  const int fd = ::open((run / ".writer.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

// A pid that is certainly no live process: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int status;
  ::waitpid(p, &status, 0);
  return p;
}

// A training run long enough to be caught in the middle (it is always stopped by the test).
const std::string kLong = std::string(kTiny) + " --steps 1000000 --eval-every 20";

}  // namespace

TEST_CASE("one writer per run directory: a second train, or a --resume while it trains, is refused naming the holder") {
  const fs::path d = temp_dir("cli-lock");
  const fs::path run = d / "a";
  const pid_t first = start("train " + kLong + " --out " + run.string(), d / "first.log");
  REQUIRE(wait_until([&] { return fs::exists(run / "last.json"); }));
  const std::string holder = "another attnlab (pid " + std::to_string(first) + " on host " + host() +
                             ") is writing there; wait for it to end, or stop it (it checkpoints on Ctrl-C or kill -TERM) "
                             "and give --resume";
  {
    Result second = attnlab("train " + kLong + " --out " + run.string());
    INFO(second.out);
    CHECK(second.code == 1);
    CHECK(last_line(second.out) == "attnlab: error: --out " + run.string() + ": " + holder);
  }
  {
    Result again = attnlab("train " + kLong + " --resume --out " + run.string());
    INFO(again.out);
    CHECK(again.code == 1);
    CHECK(last_line(again.out) == "attnlab: error: --out " + run.string() + ": " + holder);
  }
  // the first is untouched by both: it still trains, and stops at a checkpoint when asked
  REQUIRE(::kill(first, 0) == 0);
  ::kill(first, SIGINT);
  REQUIRE(finish(first) == 130);
  const std::vector<long> steps = metric_steps(run);
  CHECK(strictly_increasing(steps));
  // ended, it holds nothing: the next writer takes the directory
  CHECK_FALSE(locked(run));
  Result resumed = attnlab("train --resume --out " + run.string() + " --steps " + std::to_string(steps.back() + 5) + " --quiet");
  INFO(resumed.out);
  CHECK(resumed.code == 0);
  CHECK(strictly_increasing(metric_steps(run)));
  fs::remove_all(d);
}

TEST_CASE("two trains started together on one new --out: one trains, the other is refused and removes nothing") {
  const fs::path d = temp_dir("cli-race");
  for (int attempt = 0; attempt < 3; attempt++) {
    const fs::path run = d / ("r" + std::to_string(attempt));
    const std::string args = "train " + std::string(kTiny) + " --steps 40 --eval-every 20 --out " + run.string();
    const pid_t a = start(args, d / "a.log"), b = start(args, d / "b.log");
    const int ca = finish(a), cb = finish(b);
    const std::string la = read_file((d / "a.log").string()), lb = read_file((d / "b.log").string());
    INFO("a: " << ca << " " << la << "\nb: " << cb << " " << lb);
    // Either one wins the lock and the other is refused, or one ends before the other starts and
    // the second finds a run there already: never both writing.
    REQUIRE(((ca == 0) != (cb == 0)));
    const std::string& lost = ca == 0 ? lb : la;
    const bool refused = lost.find("is writing there") != std::string::npos;
    const bool holds_run = lost.find("holds a run already (config.json)") != std::string::npos;
    CHECK((refused || holds_run));
    REQUIRE(fs::exists(run / "results.json"));
    CHECK(strictly_increasing(metric_steps(run)));
  }
  fs::remove_all(d);
}

TEST_CASE("SIGTERM and SIGHUP end a run like Ctrl-C: a checkpoint, the resume line, and 128 + the signal") {
  const fs::path d = temp_dir("cli-signals");
  for (auto [sig, code, said] : {std::tuple{SIGTERM, 143, "terminated (SIGTERM)"}, std::tuple{SIGHUP, 129, "hung up (SIGHUP)"}}) {
    const fs::path run = d / std::to_string(sig);
    // not --quiet: the stop is said on standard error whatever the output
    const std::string args = "train " + std::string(kLong).replace(kLong.find(" --quiet"), 8, "") + " --out " + run.string();
    const pid_t p = start(args, d / "log");
    REQUIRE(wait_until([&] { return fs::exists(run / "last.json"); }));
    ::kill(p, sig);
    CHECK(finish(p) == code);
    const auto last = nlohmann::json::parse(read_file((run / "last.json").string()));
    const std::string log = read_file((d / "log").string());
    INFO(log);
    CHECK(last_line(log) == fmt::format("{} at step {}: checkpoint saved; continue with: attnlab train --resume --out {}",
                                        said, last.at("step").get<int>(), run.string()));
    Result r = attnlab("train --resume --out " + run.string() + " --steps " + std::to_string(last.at("step").get<int>() + 5) + " --quiet");
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK(fs::exists(run / "results.json"));
  }
  fs::remove_all(d);
}

TEST_CASE("a compare killed with kill -9 takes its runs down at a checkpoint, and the same command then resumes") {
  const fs::path d = temp_dir("cli-compare-kill");
  auto command = [&](int steps) {
    return "compare --task reverse --out " + d.string() + " --variants qk,qq --jobs 2 --train-args=--steps," +
           std::to_string(steps) + ",--d-model,16,--d-ff,32,--eval-every,20,--test-sentences,20,--eval-sentences,10";
  };
  const pid_t grid = start(command(1000000), d / "compare.log");
  REQUIRE(wait_until([&] { return fs::exists(d / "runs/qk-s1/last.json") && fs::exists(d / "runs/qq-s1/last.json"); }));
  ::kill(grid, SIGKILL);
  CHECK(finish(grid) == 128 + SIGKILL);
  // the kernel sends each run SIGTERM (PR_SET_PDEATHSIG): it checkpoints and lets go of its directory
  for (const char* r : {"qk-s1", "qq-s1"}) {
    INFO(r);
    CHECK(wait_until([&] { return !locked(d / "runs" / r); }));
    // (the run lets go of its lock as its trainer ends, and prints the line just after)
    const fs::path log = d / "runs" / r / "train.log";
    CHECK(wait_until([&] { return read_file(log.string()).find("terminated (SIGTERM) at step") != std::string::npos; }));
    INFO(read_file(log.string()));
  }
  int furthest = 0;
  for (const char* r : {"qk-s1", "qq-s1"})
    furthest = std::max(furthest, nlohmann::json::parse(read_file((d / "runs" / r / "last.json").string()))["step"].get<int>());
  Result again = attnlab(command(furthest + 5));
  INFO(again.out);
  CHECK(again.code == 0);
  for (const char* r : {"qk-s1", "qq-s1"}) {
    CHECK(fs::exists(d / "runs" / r / "results.json"));
    CHECK(strictly_increasing(metric_steps(d / "runs" / r)));
  }
  fs::remove_all(d);
}

TEST_CASE("a second compare on one --out is refused while the first runs") {
  const fs::path d = temp_dir("cli-compare-two");
  const std::string cmd = "compare --task reverse --out " + d.string() + " --variants qk --jobs 1 "
                          "--train-args=--steps,1000000,--d-model,16,--d-ff,32,--eval-every,20";
  const pid_t grid = start(cmd, d / "compare.log");
  REQUIRE(wait_until([&] { return fs::exists(d / "runs/qk-s1/last.json"); }));
  Result second = attnlab(cmd);
  INFO(second.out);
  CHECK(second.code == 1);
  CHECK(last_line(second.out) == "attnlab: error: --out " + d.string() + ": another attnlab (pid " + std::to_string(grid) +
                                     " on host " + host() + ") is writing there; wait for it to end, or stop it (it "
                                     "checkpoints on Ctrl-C or kill -TERM) and give --resume");
  ::kill(grid, SIGINT);
  CHECK(finish(grid) == 130);
  fs::remove_all(d);
}

TEST_CASE("the next writer removes a killed run's temporaries, not a live process's") {
  const fs::path d = temp_dir("cli-tmp");
  const fs::path run = d / "r";
  const pid_t p = start("train " + kLong + " --out " + run.string(), d / "log");
  REQUIRE(wait_until([&] { return fs::exists(run / "last.json"); }));
  ::kill(p, SIGKILL);
  finish(p);
  // what a kill in the middle of write_file_atomic leaves (core/fileio.cpp names them so)
  const pid_t gone = dead_pid();
  const std::vector<std::string> stale = {".metrics.csv.tmp." + std::to_string(gone),
                                          ".model.best.safetensors.tmp." + std::to_string(gone)};
  for (auto& f : stale) attn::write_file_atomic((run / f).string(), "partial");
  const std::string live = ".test.hyp.tmp." + std::to_string(::getpid());  // this test is alive
  attn::write_file_atomic((run / live).string(), "another process's");
  const auto last = nlohmann::json::parse(read_file((run / "last.json").string()));
  Result r = attnlab("train --resume --out " + run.string() + " --steps " + std::to_string(last.at("step").get<int>() + 5));
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("removed 2 temporary files left by a killed run in " + run.string()));
  for (auto& f : stale) CHECK_FALSE(fs::exists(run / f));
  CHECK(fs::exists(run / live));
  fs::remove_all(d);
}

TEST_CASE("with OMP_PROC_BIND set, the re-executed program keeps every CPU it was started with") {
  // libgomp binds the initial thread to one place before main when OMP_PROC_BIND is set; the
  // start-up exec (core/runtime.cpp) must hand the new image the CPUs the process started with,
  // not that one, or every thread shares one CPU. OMP_DISPLAY_ENV prints each image's places:
  // the last (the re-executed image's) must list as many as this process may use.
  cpu_set_t mine;
  REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
  const int cpus = CPU_COUNT(&mine);
  // As started from a shell: this test process is itself a re-executed image, whose settings
  // would stop attnlab from starting again.
  const Result r = attnlab("--version", "env -u ATTNLAB_RUNTIME_SET -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_CORETYPE "
                                        "OMP_PROC_BIND=true OMP_DISPLAY_ENV=true");
  REQUIRE(r.code == 0);
  size_t images = 0;
  for (size_t i = r.out.find("OMP_PLACES = '"); i != std::string::npos; i = r.out.find("OMP_PLACES = '", i + 1)) images++;
  REQUIRE(images == 2);  // the program as started, and as re-executed
  const size_t at = r.out.rfind("OMP_PLACES = '");
  const std::string places = r.out.substr(at, r.out.find('\n', at) - at);
  INFO(places << " with " << cpus << " CPUs here");
  REQUIRE(std::count(places.begin(), places.end(), '{') == cpus);
}

TEST_CASE("the re-executed program's OpenMP sleeps after a short spin, unless the user chose") {
  // What libgomp itself read (OMP_DISPLAY_ENV=verbose prints each image's settings; the last
  // block is the image that runs): passive, with core/runtime.h's spin count, or the user's own.
  auto last = [](const std::string& out, const std::string& var) {
    const size_t at = out.rfind(var + " = '");
    if (at == std::string::npos) return std::string("(not printed)");
    const size_t from = at + var.size() + 4;
    return out.substr(from, out.find('\'', from) - from);
  };
  const std::string clean = "env -u ATTNLAB_RUNTIME_SET -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_CORETYPE ";
  const Result ours = attnlab("--version", clean + "OMP_DISPLAY_ENV=verbose");
  REQUIRE(ours.code == 0);
  CHECK(last(ours.out, "OMP_WAIT_POLICY") == "PASSIVE");
  CHECK(last(ours.out, "GOMP_SPINCOUNT") == attn::kSpinCount);
  // libgomp prints PASSIVE for an unset policy too: the spin count is what tells them apart
  // (300000 when neither is set, 0 for passive alone).
  const Result theirs = attnlab("--version", clean + "GOMP_SPINCOUNT=123 OMP_DISPLAY_ENV=verbose");
  REQUIRE(theirs.code == 0);
  CHECK(last(theirs.out, "GOMP_SPINCOUNT") == "123");
  const Result active = attnlab("--version", clean + "OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose");
  REQUIRE(active.code == 0);
  CHECK(last(active.out, "OMP_WAIT_POLICY") == "ACTIVE");
  CHECK(last(active.out, "GOMP_SPINCOUNT") == "30000000000");  // libgomp's own for active: none set here
}

TEST_CASE("a standard output or error that cannot be written fails the command with one line") {
  const fs::path d = temp_dir("cli-full");
  const std::string D = d.string();
  attn::write_file_atomic(D + "/ref.txt", "a b c d\ne f g h\n");
  attn::write_file_atomic(D + "/hyp.txt", "a b c d\ne f g x\n");
  const std::string tr = D + "/tr", lm = D + "/lm";
  const std::string small = "--task reverse --task-train 400 --d-model 16 --heads 2 --d-ff 32 --threads 1 --quiet --steps 20 "
                            "--eval-every 10";
  REQUIRE(attnlab("train --enc-layers 1 --dec-layers 1 " + small + " --eval-sentences 5 --test-sentences 5 --beam 1 --out " + tr).code == 0);
  REQUIRE(attnlab("train --arch lm --dec-layers 2 " + small + " --out " + lm).code == 0);
  attn::write_file_atomic(D + "/src.txt", "s3 s1 s2\ns2 s2\n");
  const auto before = snapshot(d);
  for (const std::string& cmd : {"score --ref " + D + "/ref.txt --hyp " + D + "/hyp.txt",
                                "translate --run " + tr + " --input " + D + "/src.txt --greedy",
                                "generate --run " + lm + " --prompt 's3 s1' --max-tokens 4"}) {
    INFO(cmd);
    REQUIRE(attnlab(cmd).code == 0);  // it writes something
    Result full = shell("{ " + std::string(ATTNLAB_BINARY) + " " + cmd + " >/dev/full; }");
    INFO(full.out);
    CHECK(full.code == 1);
    CHECK(full.out == "attnlab: error: standard output: No space left on device\n");
  }
  // standard error full: an error still ends in a non-zero exit, never an abort
  Result err_full = shell("{ " + std::string(ATTNLAB_BINARY) + " score --ref " + D + "/missing --hyp " + D + "/hyp.txt 2>/dev/full; }");
  CHECK(err_full.code == 1);
  Result usage_full = shell("{ " + std::string(ATTNLAB_BINARY) + " train --no-such-flag 2>/dev/full; }");
  CHECK(usage_full.code == 2);
  CHECK(snapshot(d) == before);
  fs::remove_all(d);
}

TEST_CASE("a corpus with no usable character is refused before a tokenizer is trained, naming the split") {
  const fs::path d = temp_dir("cli-blank");
  const std::string D = d.string();
  const std::vector<std::pair<std::string, std::string>> blanks = {
      {"zero-width space", "\xE2\x80\x8B"}, {"no-break space", "\xC2\xA0"}, {"byte-order mark", "\xEF\xBB\xBF"},
      {"ideographic space and word joiner", "\xE3\x80\x80\xE2\x81\xA0"}};
  for (auto& [what, text] : blanks) {
    INFO(what);
    const fs::path corp = d / "corpus";
    fs::remove_all(corp);
    fs::create_directories(corp);
    for (const char* split : {"train", "valid", "test"})
      for (const char* lang : {"en", "de"})
        attn::write_file_atomic((corp / (std::string(split) + "." + lang)).string(), text + "\n" + text + "\n" + text + "\n");
    const auto before = snapshot(d);
    Result r = attnlab("train --corpus " + corp.string() + " --vocab 50 --steps 5 --out " + D + "/run");
    INFO(r.out);
    CHECK(r.code == 1);
    CHECK(last_line(r.out) == "attnlab: error: " + corp.string() + ": the train split has no usable pair (3 lines blank: "
                                                                    "empty, or only spaces, zero-width characters or byte-order marks)");
    CHECK(snapshot(d) == before);  // no --out left behind
    Result g = attnlab("compare --corpus " + corp.string() + " --variants qk --out " + D + "/grid");
    INFO(g.out);
    CHECK(g.code == 1);
    CHECK(last_line(g.out) == last_line(r.out));
    CHECK(snapshot(d) == before);
  }
  // the train split usable, the valid split not: named as the valid split
  const fs::path corp = d / "corpus";
  for (const char* lang : {"en", "de"}) attn::write_file_atomic((corp / (std::string("train.") + lang)).string(), "a b c\nd e f\n");
  Result v = attnlab("train --corpus " + corp.string() + " --vocab 50 --steps 5 --out " + D + "/run");
  CHECK(last_line(v.out) == "attnlab: error: " + corp.string() + ": the valid split has no usable pair (3 lines blank: "
                                                                  "empty, or only spaces, zero-width characters or byte-order marks)");
  CHECK_FALSE(fs::exists(d / "run"));
  fs::remove_all(d);
}

TEST_CASE("--resume refuses a setting that differs from the run's, and takes --steps even at its default") {
  const fs::path d = temp_dir("cli-resume");
  const std::string run = (d / "r").string();
  const std::string made = std::string(kTiny) + " --steps 20 --eval-every 10 --lr 3e-3";
  REQUIRE(attnlab("train " + made + " --out " + run).code == 0);
  const auto before = snapshot(d);
  const std::string keeps = ", and a resumed run keeps its settings (only --steps, --threads, --quiet may change); train it "
                            "under another --out to change it";
  auto refused = [&](const std::string& flags, const std::string& line) {
    Result r = attnlab("train --resume --out " + run + " " + flags);
    INFO(flags << "\n" << r.out);
    CHECK(r.code == 2);
    CHECK(last_line(r.out) == "attnlab: error: " + line);
    CHECK(snapshot(d) == before);
  };
  refused("--d-model 64", "--d-model 64: the run in " + run + " has d_model 16" + keeps);
  refused("--variant qq", "--variant qq: the run in " + run + " has variant qk" + keeps);
  refused("--arch mlm", "--arch mlm: the run in " + run + " has arch seq2seq" + keeps);
  refused("--lr 0.5", "--lr 0.5: the run in " + run + " has lr 0.003" + keeps);
  refused("--task copy", "--task copy: the run in " + run + " has task reverse" + keeps);
  refused("--gelu", "--gelu: the run in " + run + " has gelu false" + keeps);
  refused("--dump-tape", "--dump-tape: does not apply to --resume (it acts on a run's first step); resume without it");
  refused("--tokenizer " + run + "/../nowhere", "--tokenizer " + run + "/../nowhere: not the tokenizer the run in " + run +
                                                    " was trained with (" + run + "/tokenizer.symbols differs); resume without --tokenizer");
  // the command that made it, again (as job files do): accepted; --threads may change
  Result same = attnlab("train " + made + " --threads 1 --resume --out " + run);
  INFO(same.out);
  CHECK(same.code == 0);
  // --steps 8000 is the default, and still a new budget when typed: the run trains on past 20
  const fs::path log = d / "more.log";
  const pid_t p = start("train --resume --out " + run + " --steps 8000 --quiet", log);
  REQUIRE(wait_until([&] {
    const std::vector<long> s = metric_steps(run);
    return !s.empty() && s.back() >= 40;
  }));
  ::kill(p, SIGINT);
  CHECK(finish(p) == 130);
  fs::remove_all(d);
}

TEST_CASE("inspect grad's own matrices: empty, overflowing, out of range, @ without a file, and flags that do not apply") {
  const fs::path d = temp_dir("cli-inspect");
  const std::string D = d.string();
  auto refused = [](const std::string& args, int code, const std::string& message) {
    Result r = attnlab("inspect grad " + args);
    INFO(args << "\n" << r.out);
    CHECK(r.code == code);
    CHECK(last_line(r.out) == "attnlab: error: " + message);
  };
  for (const char* f : {"--q", "--k", "--v", "--o", "--dout"})
    refused(std::string(f == std::string("--q") ? "" : "--q '1 2; 3 4' ") + f + " ''", 2,
            std::string(f) + ": empty; give a matrix (" + f + " \"1 2; 3 4\": one row per token) or @FILE");
  refused("--q '1e20 1; 2 3'", 2,
          "--q: the scores Q Qᵀ/√d reach 7.07e+39, beyond float32's largest, 3.403e+38; scale the matrices down");
  refused("--q '1e19 1; 2 3' --k '1e20 1; 2 3' --variant qk", 2,
          "--q, --k: the scores Q Kᵀ/√d reach 7.07e+38, beyond float32's largest, 3.403e+38; scale the matrices down");
  refused("--q '1e39 1; 2 3'", 2, "--q: '1e39' in row 1 is out of float range (a float32 holds magnitudes up to 3.403e+38)");
  refused("--q @", 2, "--q @: no file named after the @ (give @FILE)");
  refused("--q '1;;2'", 2, "--q: row 2 is empty (rows are split by ';': \"1 2; 3 4\")");
  refused("--q '1 2; 3 4' --tokens 3", 2, "--tokens: does not apply with --q (the tokens and d are --q's rows and columns)");
  refused("--q '1 2; 3 4' --dim 3", 2, "--dim: does not apply with --q (the tokens and d are --q's rows and columns)");
  refused("--q '1 2; 3 4' --k '1 2; 3 4' --variant qq", 2, "--k: qq has no K (Q stands in for it); drop --k, or give --variant qk, both or all");
  refused("--q @/dev/zero", 1, "--q @/dev/zero: larger than 1 MiB (the limit for this input; is it the right file?)");
  // accepted, and documented (docs/tutorial.md): commas separate values as spaces do, a last ';'
  // ends the matrix, and @FILE may start with a byte-order mark and hold blank lines
  const Result spaces = attnlab("inspect grad --q '1 2; 3 4'");
  REQUIRE(spaces.code == 0);
  CHECK(attnlab("inspect grad --q '1,2; 3,4'").out == spaces.out);
  CHECK(attnlab("inspect grad --q '1 2; 3 4;'").out == spaces.out);
  attn::write_file_atomic(D + "/q.txt", "\xEF\xBB\xBF" "1 2\n\n3 4\n");
  const Result file = attnlab("inspect grad --q @" + D + "/q.txt");
  INFO(file.out);
  CHECK(file.code == 0);
  CHECK(file.out == spaces.out);
  fs::remove_all(d);
}

TEST_CASE("generate and inspect attention refuse invalid UTF-8 as the stdin path does; out-of-range temperature; a capped --max-tokens says so") {
  const fs::path d = temp_dir("cli-generate");
  const std::string lm = (d / "lm").string(), tr = (d / "tr").string();
  const std::string small = "--task reverse --task-train 400 --d-model 16 --heads 2 --d-ff 32 --threads 1 --quiet --steps 20 "
                            "--eval-every 10";
  REQUIRE(attnlab("train --arch lm --dec-layers 2 " + small + " --out " + lm).code == 0);
  REQUIRE(attnlab("train --enc-layers 1 --dec-layers 1 " + small + " --eval-sentences 5 --test-sentences 5 --beam 1 --out " + tr).code == 0);
  auto refused = [](const std::string& args, const std::string& message) {
    Result r = attnlab(args);
    INFO(args << "\n" << r.out);
    CHECK(r.code == 2);
    CHECK(last_line(r.out) == "attnlab: error: " + message);
  };
  refused("generate --run " + lm + " --prompt \"$(printf 's3 \\303')\"", "--prompt: invalid UTF-8 (give the prompt as UTF-8 text)");
  refused("inspect attention --run " + tr + " --text \"$(printf 's3 \\303')\"", "--text: invalid UTF-8 (give the sentence as UTF-8 text)");
  refused("generate --run " + lm + " --prompt 's3' --temperature 1e39",
          "--temperature: out of float range (a float32 holds up to 3.403e+38)");
  const nlohmann::json cfg = nlohmann::json::parse(read_file(lm + "/config.json"));
  const int max_len = cfg.at("model").at("max_len").get<int>();
  Result capped = attnlab("generate --run " + lm + " --prompt 's3 s1' --max-tokens 4096");
  INFO(capped.out);
  CHECK(capped.code == 0);
  // "s3 s1" is two tokens of the symbols tokenizer, after bos
  CHECK_THAT(capped.out, Catch::Contains(fmt::format("attnlab: warning: --max-tokens 4096: this model reads {} tokens in all, "
                                                     "so the prompt ends after at most {} new tokens", max_len, max_len - 3)));
  fs::remove_all(d);
}

TEST_CASE("suggestions: a mistyped subcommand or flag names the nearest; help takes a subcommand's path; inspect attention takes --threads") {
  auto refused = [](const std::string& args, const std::string& message) {
    Result r = attnlab(args);
    INFO(args << "\n" << r.out);
    CHECK(r.code == 2);
    CHECK(last_line(r.out) == "attnlab: error: " + message);
  };
  refused("inspect gard", "unknown command 'inspect gard'; did you mean 'inspect grad'? (see attnlab inspect --help)");
  refused("inspect xyzzy", "unknown command 'inspect xyzzy' (commands: grad, attention) (see attnlab inspect --help)");
  refused("train --step 10", "unexpected argument(s): --step 10; did you mean '--steps'? (see attnlab train --help)");
  refused("translate --run x --beem 3", "unexpected argument(s): --beem 3; did you mean '--beam'? (see attnlab translate --help)");
  Result help = attnlab("help inspect grad");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("--q") && Catch::Contains("--dout"));
  CHECK(help.out == attnlab("inspect grad --help").out);
  Result threads = attnlab("inspect attention --run /nonexistent --text 'a b' --threads 1");
  CHECK(threads.code == 1);  // --threads accepted; the run is what is missing
  CHECK(last_line(threads.out) == "attnlab: error: --run /nonexistent: not a run directory (no config.json)");
}

TEST_CASE("a warm-up longer than a quarter of the run is warned about, and mostly empty test translations are said") {
  const fs::path d = temp_dir("cli-warmup");
  const std::string run = (d / "r").string();
  // the default --warmup 800 in a 20-step run: the rate never passes 2.5% of --lr
  Result r = attnlab("train " + std::string(kTiny) + " --steps 20 --eval-every 10 --out " + run);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("attnlab: warning: --warmup 800 is more than a quarter of --steps 20: the learning rate "
                                    "reaches 0.0007 only at step 800, after the run ends; give --warmup 5 or fewer for a "
                                    "run this short"));
  Result loud = attnlab("train --resume --out " + run + " --steps 20 --threads 1");  // not --quiet: the end is printed
  INFO(loud.out);
  const std::string hyps = read_file(run + "/test.hyp");
  size_t empty = 0, lines = 0;
  std::istringstream in(hyps);
  for (std::string l; std::getline(in, l); lines++) empty += l.find_first_not_of(" \t") == std::string::npos;
  if (2 * empty > lines)
    CHECK_THAT(loud.out, Catch::Contains(fmt::format("warning: {} of {} test translations are empty: the model has not learned "
                                                     "to translate yet (train longer, or with a --warmup shorter than a "
                                                     "quarter of the 20 steps)", empty, lines)));
  else
    CHECK_THAT(loud.out, !Catch::Contains("test translations are empty"));
  // a warm-up within a quarter: no warning
  Result fine = attnlab("train " + std::string(kTiny) + " --steps 40 --warmup 10 --eval-every 20 --out " + (d / "f").string());
  CHECK(fine.code == 0);
  CHECK_THAT(fine.out, !Catch::Contains("warning: --warmup"));
  fs::remove_all(d);
}

TEST_CASE("the final test decoding says what it does and how far it got, at each quarter, and not when --quiet") {
  const fs::path d = temp_dir("cli-decode-progress");
  // 100 test sentences are decoded 32 at a time: after 32, 64 and 96 of them a quarter is passed
  const std::string flags = "--task reverse --task-train 400 --d-model 16 --heads 2 --enc-layers 1 --dec-layers 1 --d-ff 32 "
                            "--threads 1 --eval-sentences 10 --test-sentences 100 --beam 2 --steps 4 --warmup 1 --eval-every 4";
  Result r = attnlab("train " + flags + " --out " + (d / "loud").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  const std::string expected = "test: translating 100 sentences with beam 2\ntest: 32 of 100 translated\n"
                               "test: 64 of 100 translated\ntest: 96 of 100 translated\ndone: 4 steps in ";
  CHECK_THAT(r.out, Catch::Contains(expected));
  Result q = attnlab("train " + flags + " --quiet --out " + (d / "quiet").string());
  CHECK(q.code == 0);
  CHECK_THAT(q.out, !Catch::Contains("test:"));
  // the same decoding, so the same translations: progress changes nothing that is decoded
  CHECK(read_file((d / "loud" / "test.hyp").string()) == read_file((d / "quiet" / "test.hyp").string()));
  fs::remove_all(d);
}

TEST_CASE("every shipped config file is read whole: its keys are train's flags and its values pass their checks") {
  const fs::path d = temp_dir("cli-configs");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(ATTNLAB_TEST_DIR).parent_path() / "configs")) {
    if (e.path().extension() != ".toml") continue;
    files++;
    // A --d-model no head count divides is refused after the file is read and checked and
    // before any data is: the line names the file's own --heads, so the file was taken whole.
    const std::string text = read_file(e.path().string());
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex(R"((?:^|\n)heads\s*=\s*(\d+))")));
    Result r = attnlab("train --config " + e.path().string() + " --d-model 1001 --out " + (d / "run").string());
    INFO(e.path() << "\n" << r.out);
    CHECK(r.code == 2);
    CHECK(last_line(r.out) == "attnlab: error: --d-model 1001 is not divisible by --heads " + m[1].str());
    CHECK_FALSE(fs::exists(d / "run"));
  }
  CHECK(files >= 3);  // base, laptop, tiny-reverse
  fs::remove_all(d);
}

TEST_CASE("bash completion offers commands, flags and the values the parser checks against") {
  const fs::path d = temp_dir("cli-shell-docs");
  Result comp = shell(std::string(ATTNLAB_BINARY) + " --bash-completion > " + (d / "attnlab.bash").string());
  REQUIRE(comp.code == 0);
  // each line: the words typed (the last is being completed) and what bash offers
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"attnlab tr", "train translate"},
      {"attnlab inspect g", "grad"},
      {"attnlab train --var", "--variant"},
      {"attnlab train --variant qq-", "qq-noself qq-normk qq-enc qq-dec qq-all qq-noV-noO"},
      {"attnlab compare --preset f", "full frontier"},
      {"attnlab compare --variants qk,qq-n", "qk,qq-noself qk,qq-normk qk,qq-noV-noO"},
      {"attnlab inspect grad --variant ''", "qk qq qq-noself both all"},
      {"attnlab train --arch ''", "seq2seq lm mlm"},
      {"attnlab help in", "inspect"},
      {"attnlab corpus s", "split synthetic"},
  };
  std::string script = "source " + (d / "attnlab.bash").string() + "\n" +
                       "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); _attnlab; echo \"${COMPREPLY[*]}\"; }\n";
  for (auto& [typed, offered] : cases) script += "c " + typed + "\n";
  attn::write_file_atomic((d / "cases.sh").string(), script);
  Result r = shell("bash " + (d / "cases.sh").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  std::istringstream lines(r.out);
  for (auto& [typed, offered] : cases) {
    std::string got;
    std::getline(lines, got);
    INFO(typed);
    CHECK(got == offered);
  }
  fs::remove_all(d);
}

TEST_CASE("the man page renders without a warning and names every command and subcommand", "[man]") {
  const fs::path d = temp_dir("cli-man");
  Result page = shell(std::string(ATTNLAB_BINARY) + " --man-page > " + (d / "attnlab.1").string());
  REQUIRE(page.code == 0);
  skip_unless(shell("command -v man").code == 0, "man is not installed (Debian: man-db)");
  Result warnings = shell("MANWIDTH=100 man --warnings=all -l " + (d / "attnlab.1").string() + " 2>&1 >/dev/null");
  CHECK(warnings.out.empty());
  const std::string text = shell("MANWIDTH=200 man -l " + (d / "attnlab.1").string() + " 2>/dev/null").out;
  for (const char* c : {"compare", "train", "translate", "generate", "score", "inspect", "inspect grad",
                        "inspect attention", "gradcheck", "bench", "corpus", "corpus extract", "corpus split", "corpus synthetic",
                        "export"})
    CHECK_THAT(text, Catch::Contains(std::string("attnlab ") + c + "\n"));
  CHECK_THAT(text, Catch::Contains("EXIT STATUS") && Catch::Contains("--variant"));
  fs::remove_all(d);
}

TEST_CASE("flags that do not apply to the architecture: refused typed, warned about from a config file, and compare passes each only its own") {
  const fs::path d = temp_dir("cli-apply");
  const std::string D = d.string();
  const std::string small = "--task reverse --task-train 400 --d-model 16 --heads 2 --d-ff 32 --threads 1 --quiet --steps 4 "
                            "--eval-every 2";
  auto refused = [&](const std::string& args, const std::string& message) {
    const auto before = snapshot(d);
    Result r = attnlab(args);
    INFO(args << "\n" << r.out);
    CHECK(r.code == 2);
    CHECK(last_line(r.out) == "attnlab: error: " + message);
    CHECK(snapshot(d) == before);
  };
  refused("train --arch lm --enc-layers 2 " + small + " --out " + D + "/a",
          "--enc-layers: does not apply to --arch lm (a decoder-only model: its layers are --dec-layers)");
  refused("train --arch mlm --dec-layers 2 " + small + " --out " + D + "/a",
          "--dec-layers: does not apply to --arch mlm (an encoder-only model: its layers are --enc-layers)");
  refused("train --arch lm --beam 4 " + small + " --out " + D + "/a", "--beam: does not apply to --arch lm (it decodes no translation)");
  refused("train --lm-text src " + small + " --out " + D + "/a",
          "--lm-text: applies to --arch lm and mlm (a translation model reads both sides)");
  refused("compare --arch lm --task reverse --variants qk --out " + D + "/g --train-args=--beam,3",
          "--train-args: --beam: does not apply to --arch lm (it decodes no translation)");
  // the same setting from a config file: a warning, and the run trains
  attn::write_file_atomic(D + "/lm.toml", "arch = \"lm\"\nenc_layers = 3\n");
  Result warned = attnlab("train --config " + D + "/lm.toml " + small + " --out " + D + "/lm");
  INFO(warned.out);
  CHECK(warned.code == 0);
  CHECK_THAT(warned.out, Catch::Contains("attnlab: warning: --config " + D + "/lm.toml: --enc-layers: does not apply to --arch "
                                         "lm (a decoder-only model: its layers are --dec-layers); ignored"));
  // compare --arch lm: no run is given --enc-layers or --beam (plan.sh holds the commands)
  Result plan = attnlab("compare --arch lm --preset quick --task reverse --variants qk --out " + D + "/plan --plan");
  INFO(plan.out);
  REQUIRE(plan.code == 0);
  const std::string lines = read_file(D + "/plan/plan.sh");
  CHECK_THAT(lines, Catch::Contains(" train ") && !Catch::Contains("--enc-layers") && !Catch::Contains("--beam"));
  fs::remove_all(d);
}

TEST_CASE("corpus split: a TSV or two line-aligned files into train/valid/test that train reads, no source sentence in two splits") {
  fs::path d = temp_dir("corpus-split");
  // 60 pairs: 5 exact duplicates, one source with three translations, two blank lines
  std::string tsv, en, de;
  for (int i = 0; i < 52; i++) {
    const std::string s = fmt::format("open file number {}", i), t = fmt::format("Datei Nummer {} öffnen", i);
    tsv += s + "\t" + t + "\n", en += s + "\n", de += t + "\n";
  }
  for (int i = 0; i < 5; i++) tsv += fmt::format("open file number {}\tDatei Nummer {} öffnen\n", i, i);
  for (const char* t : {"Speichern", "Sichern", "Abspeichern"}) tsv += std::string("save\t") + t + "\n";
  tsv += "\n \n";
  attn::write_file_atomic((d / "all.tsv").string(), tsv);
  Result r = attnlab("corpus split --tsv " + (d / "all.tsv").string() + " --valid 8 --test 6 --seed 3 --out " + (d / "c").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("read 60 pairs (2 blank lines skipped); 5 exact duplicates kept once; 1 source sentences "
                                    "with several translations, each kept in one split"));
  CHECK_THAT(r.out, Catch::Contains("wrote " + (d / "c").string() + "/{train,valid,test}.{en,de}: train 41, valid 8, test 6"));
  std::map<std::string, std::set<std::string>> sources;
  size_t pairs = 0;
  for (const char* split : {"train", "valid", "test"}) {
    const std::string e = read_file((d / "c" / (std::string(split) + ".en")).string());
    const std::string g = read_file((d / "c" / (std::string(split) + ".de")).string());
    CHECK(std::count(e.begin(), e.end(), '\n') == std::count(g.begin(), g.end(), '\n'));
    std::istringstream in(e);
    for (std::string line; std::getline(in, line); pairs++) sources[split].insert(line);
  }
  CHECK(pairs == 55);
  for (const auto& s : sources["valid"]) CHECK(sources["train"].count(s) + sources["test"].count(s) == 0);
  for (const auto& s : sources["test"]) CHECK(sources["train"].count(s) == 0);
  // the same seed gives the same split; another seed another one
  Result again = attnlab("corpus split --tsv " + (d / "all.tsv").string() + " --valid 8 --test 6 --seed 3 --out " + (d / "c2").string());
  REQUIRE(again.code == 0);
  CHECK(snapshot(d / "c") == snapshot(d / "c2"));
  REQUIRE(attnlab("corpus split --tsv " + (d / "all.tsv").string() + " --valid 8 --test 6 --seed 4 --out " + (d / "c3").string()).code == 0);
  CHECK(read_file((d / "c3" / "valid.en").string()) != read_file((d / "c" / "valid.en").string()));
  // two line-aligned files, other language suffixes: train reads the folder
  attn::write_file_atomic((d / "a.en").string(), en);
  attn::write_file_atomic((d / "a.de").string(), de);
  Result files = attnlab("corpus split --src-file " + (d / "a.en").string() + " --tgt-file " + (d / "a.de").string() +
                         " --src-lang eng --tgt-lang deu --valid 5 --test 5 --out " + (d / "f").string());
  INFO(files.out);
  REQUIRE(files.code == 0);
  CHECK_THAT(files.out, Catch::Contains("train 42, valid 5, test 5"));
  CHECK(fs::exists(d / "f" / "train.eng"));
  Result trained = attnlab("train --corpus " + (d / "f").string() + " --src-lang eng --tgt-lang deu --vocab 60 --d-model 16 --heads 2 "
                           "--enc-layers 1 --dec-layers 1 --d-ff 32 --steps 4 --warmup 1 --eval-every 4 --threads 1 --quiet --beam 1 --out " +
                           (d / "run").string());
  INFO(trained.out);
  CHECK(trained.code == 0);
  // refused, with nothing written: an --out holding a corpus, sizes that leave train nothing,
  // a TSV line without its tab, files of different lengths, no input or both inputs
  const auto before = snapshot(d);
  auto bad = [&](const std::string& args, int code, const std::string& line) {
    Result b = attnlab("corpus split " + args);
    INFO(b.out);
    CHECK(b.code == code);
    CHECK(last_line(b.out) == "attnlab: error: " + line);
    CHECK(snapshot(d) == before);
  };
  const std::string D = d.string();
  bad("--tsv " + D + "/all.tsv --out " + D + "/c", 1, "--out " + D + "/c: holds train.en already; give a new folder (nothing was written)");
  bad("--tsv " + D + "/all.tsv --valid 30 --test 25 --out " + D + "/n", 1,
      "--valid 30 and --test 25 leave train no pair: the corpus has 55 distinct pairs");
  attn::write_file_atomic((d / "notab.tsv").string(), "one\tein\ntwo zwei\n");
  const auto with_notab = snapshot(d);
  Result notab = attnlab("corpus split --tsv " + D + "/notab.tsv --out " + D + "/n");
  CHECK(notab.code == 1);
  CHECK(last_line(notab.out) == "attnlab: error: " + D + "/notab.tsv:2: expected exactly one tab between source and target");
  CHECK(snapshot(d) == with_notab);
  fs::remove(d / "notab.tsv");
  attn::write_file_atomic((d / "short.de").string(), "eins\n");
  const auto with_short = snapshot(d);
  Result mismatch = attnlab("corpus split --src-file " + D + "/a.en --tgt-file " + D + "/short.de --out " + D + "/n");
  CHECK(mismatch.code == 1);
  CHECK_THAT(last_line(mismatch.out), Catch::StartsWith("attnlab: error: ") && Catch::Contains("short.de"));
  CHECK(snapshot(d) == with_short);
  fs::remove(d / "short.de");
  bad("--out " + D + "/n", 2, "corpus split: give --tsv FILE, or --src-file and --tgt-file (one of the two)");
  bad("--tsv " + D + "/all.tsv --src-file " + D + "/a.en --tgt-file " + D + "/a.de --out " + D + "/n", 2,
      "corpus split: give --tsv FILE, or --src-file and --tgt-file (one of the two)");
  bad("--src-file " + D + "/a.en --out " + D + "/n", 2, "--src-file needs --tgt-file");
  bad("--tsv " + D + "/all.tsv --src-lang de --out " + D + "/n", 2, "--src-lang and --tgt-lang are both 'de': the files would be one");
  bad("--tsv " + D + "/all.tsv --tgt-lang ../x --out " + D + "/n", 2, "--tgt-lang '../x': expected a file suffix such as en or de");
  fs::remove_all(d);
}
