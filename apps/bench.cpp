#include "apps/commands.h"
namespace attn {
void add_bench_command(CLI::App& app) { app.add_subcommand("bench", "(being built)"); }
}
