#include "apps/commands.h"
namespace attn {
void add_compare_command(CLI::App& app) { app.add_subcommand("compare", "(being built)"); }
}
