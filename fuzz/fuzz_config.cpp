// fuzz/fuzz_config.cpp — libFuzzer target: `attnlab train --config FILE` expansion and parsing.
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "apps/commands.h"
#include <attnlab/core/fileio.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/attnlab-fuzz-config-" + std::to_string(getpid()) + ".toml";
  attn::write_file_atomic(path, std::string(reinterpret_cast<const char*>(data), size));
  CLI::App app;
  attn::TrainConfig cfg;
  CLI::App* train = app.add_subcommand("train");
  attn::add_train_options(train, cfg);
  train->add_option("--out", cfg.out);
  try {
    auto args = attn::expand_config_files(app, {"train", "--config", path});
    std::reverse(args.begin(), args.end());
    app.parse(args);
    cfg.validate();
    cfg.model.apply_preset(cfg.variant);
    cfg.model.validate();
  } catch (const std::exception&) {  // CLI::Error, UsageError, runtime_error: all rejections
  }
  return 0;
}
