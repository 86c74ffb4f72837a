#include "apps/commands.h"
namespace attn {
void add_inspect_command(CLI::App& app) { app.add_subcommand("inspect", "(being built)"); }
}
