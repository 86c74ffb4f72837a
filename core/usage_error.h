// core/usage_error.h — the error of a choice the user made: a flag's value, a combination of
// flags, an unknown command, variant or preset, a model shape that does not fit.
//
//   if (d_model % heads != 0) throw UsageError(fmt::format("--d-model {} is not divisible by --heads {}", d_model, heads));
//
// The command line ends with exit code 2 for it (apps/main.cpp). Three kinds of error, three types:
//   UsageError                          the user's choice: fix the command (exit 2)
//   std::runtime_error                  a file, the data, I/O: fix the input (exit 1)
//   std::logic_error (invalid_argument, a shape that does not fit an op deep in autograd, ...)
//                                       attnlab's own bug (exit 70, "please report it")
// It derives from std::exception alone, so that no `catch (const std::runtime_error&)` of file
// errors and no `catch (const std::logic_error&)` of bugs takes it for one of theirs. A value read
// from a file (a hand-edited config.json) that a check refuses is a file error: with_json_file
// (core/json_file.h) turns the UsageError into a runtime_error naming the file.
#pragma once
#include <exception>
#include <string>
#include <utility>

namespace attn {

class UsageError : public std::exception {
 public:
  explicit UsageError(std::string what) : what_(std::move(what)) {}
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

}  // namespace attn
